using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/softmax.cu: row softmax and softmax cross-entropy with optional class weights (PyTorch's weighted mean).</summary>
internal sealed class SoftmaxKernels(CudaContext? context, KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "softmax.cu";

    /// <summary>Threads per block of the row kernels (one block per row).</summary>
    public const uint RowThreads = 128;

    private readonly CudaKernel _softmax = resolve(ModuleFile, "softmax_rows_f32");
    private readonly CudaKernel _rows = resolve(ModuleFile, "softmax_cross_entropy_rows_f32");
    private readonly CudaKernel _loss = resolve(ModuleFile, "softmax_cross_entropy_loss_f32");
    private readonly CudaKernel _grad = resolve(ModuleFile, "softmax_cross_entropy_grad_f32");
    private readonly CudaKernel _adjustedRows = resolve(ModuleFile, "adjusted_cross_entropy_rows_f32");
    private readonly CudaKernel _adjustedGrad = resolve(ModuleFile, "adjusted_cross_entropy_grad_f32");

    public override IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["softmax_rows_f32"] = (int)RowThreads, ["softmax_cross_entropy_rows_f32"] = (int)RowThreads, ["softmax_cross_entropy_loss_f32"] = 256,
        ["adjusted_cross_entropy_rows_f32"] = (int)RowThreads,
    };

    /// <summary>Row softmax of [rows, k] logits into probabilities (may be the same buffer).</summary>
    public void Softmax(CudaStream? stream, DevicePointer logits, DevicePointer probabilities, int rows, int k)
    {
        RequireRows(rows, k);
        _softmax.Launch(new LaunchConfig(new Dim3((uint)rows), new Dim3(RowThreads)), stream, logits, probabilities, rows, k);
    }

    /// <summary>Floats of workspace the softmax cross-entropy needs for <paramref name="rows"/> rows.</summary>
    public static long CrossEntropyWorkspaceFloats(int rows) => 3L * rows + 1;

    /// <summary>
    /// Softmax cross-entropy of [rows, k] logits with int32 labels [rows], optional class weights [k]
    /// (<see cref="DevicePointer.Null"/> for none): loss [1] = PyTorch's weighted mean, and, unless
    /// <paramref name="dlogits"/> is null, its gradient [rows, k]. <paramref name="workspace"/> holds
    /// <see cref="CrossEntropyWorkspaceFloats"/> floats; <paramref name="status"/> is one int32 that reads 0
    /// afterwards when every label was in [0, k), else rows - (first bad row) (the loss is then NaN). When
    /// <paramref name="record"/> (a device status record, common.cuh's DiccStatus) is given, a bad label is also
    /// recorded there.
    /// </summary>
    public void CrossEntropy(CudaStream? stream, DevicePointer logits, DevicePointer labels, DevicePointer classWeights,
        DevicePointer loss, DevicePointer dlogits, DevicePointer workspace, DevicePointer status, int rows, int k, DevicePointer record)
    {
        RequireRows(rows, k);
        DevicePointer rowLoss = workspace, rowWeight = workspace.Element<float>(rows), rowLse = workspace.Element<float>(2L * rows),
            invWeightSum = workspace.Element<float>(3L * rows);
        if (context is not null)
        {
            context.Bind();
            ThrowIfFailed(CudaDriver.cuMemsetD32Async(status.Address, 0, 1, stream?.Handle ?? context.Stream.Handle));
        }
        _rows.Launch(new LaunchConfig(new Dim3((uint)rows), new Dim3(RowThreads)), stream,
            logits, labels, classWeights, rowLoss, rowWeight, rowLse, status, rows, k);
        _loss.Launch(new LaunchConfig(new Dim3(1), new Dim3(256)), stream, rowLoss, rowWeight, loss, invWeightSum, rows, labels, status, record, k);
        if (!dlogits.IsNull)
            _grad.Launch(Elements((long)rows * k), stream, logits, labels, classWeights, rowLse, invWeightSum, dlogits, rows, k);
    }

    /// <summary>Floats of workspace the adjusted cross-entropy needs for <paramref name="rows"/> rows.</summary>
    public static long AdjustedCrossEntropyWorkspaceFloats(int rows) => 4L * rows + 1;

    /// <summary>
    /// The long-tail losses' adjusted softmax cross-entropy (<see cref="Backend.AdjustedSoftmaxCrossEntropy"/>): logits
    /// [rows, k] adjusted by per-class <paramref name="offsets"/> [k], true-label <paramref name="margins"/> [k] (either
    /// <see cref="DevicePointer.Null"/>) and <paramref name="scale"/>, focal exponent <paramref name="gamma"/>, optional
    /// class weights [k]; loss [1] and, unless <paramref name="dlogits"/> is null, its gradient. Workspace, status and
    /// record as in <see cref="CrossEntropy"/> (<see cref="AdjustedCrossEntropyWorkspaceFloats"/> floats of workspace).
    /// </summary>
    public void AdjustedCrossEntropy(CudaStream? stream, DevicePointer logits, DevicePointer labels, DevicePointer classWeights,
        DevicePointer offsets, DevicePointer margins, float scale, float gamma, DevicePointer loss, DevicePointer dlogits,
        DevicePointer workspace, DevicePointer status, int rows, int k, DevicePointer record)
    {
        RequireRows(rows, k);
        DevicePointer rowLoss = workspace, rowWeight = workspace.Element<float>(rows), rowLse = workspace.Element<float>(2L * rows),
            rowCoef = workspace.Element<float>(3L * rows), invWeightSum = workspace.Element<float>(4L * rows);
        if (context is not null)
        {
            context.Bind();
            ThrowIfFailed(CudaDriver.cuMemsetD32Async(status.Address, 0, 1, stream?.Handle ?? context.Stream.Handle));
        }
        _adjustedRows.Launch(new LaunchConfig(new Dim3((uint)rows), new Dim3(RowThreads)), stream,
            logits, labels, classWeights, offsets, margins, scale, gamma, rowLoss, rowWeight, rowLse, rowCoef, status, rows, k);
        _loss.Launch(new LaunchConfig(new Dim3(1), new Dim3(256)), stream, rowLoss, rowWeight, loss, invWeightSum, rows, labels, status, record, k);
        if (!dlogits.IsNull)
            _adjustedGrad.Launch(Elements((long)rows * k), stream, logits, labels, offsets, margins, scale, rowLse, rowCoef, invWeightSum,
                dlogits, rows, k);
    }

    private static void RequireRows(int rows, int k)
    {
        if (rows <= 0 || k <= 0) throw new ArgumentException($"Row kernels need at least one row and one column, got [{rows}, {k}].");
    }
}
