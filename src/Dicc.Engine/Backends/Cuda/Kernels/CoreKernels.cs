using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>
/// Typed launchers for the kernels of <c>kernels/elementwise.cu</c>, <c>dropout.cu</c>, <c>optimizer.cu</c> and
/// <c>softmax.cu</c>: each checks its sizes, picks the launch shape and queues the kernel on a stream (null:
/// the context's stream) without synchronising. Pointers are device addresses of float32 data unless stated,
/// so tensor views at any offset can be passed. Each op computes exactly what the CPU backend's op of the same
/// name computes (bit for bit for the elementwise ops, dropout and SGD; to float rounding for softmax).
/// </summary>
public sealed class CoreKernels
{
    /// <summary>Threads per block of the row kernels (one block per row).</summary>
    public const uint RowThreads = 128;

    private readonly CudaContext? _context;
    private readonly int _multiprocessors;
    private readonly CudaKernel _fill, _reluForward, _reluBackward, _multiply, _dropout, _sgd;
    private readonly CudaKernel _softmax, _crossEntropyRows, _crossEntropyLoss, _crossEntropyGrad;

    private CoreKernels(CudaContext context, IReadOnlyList<CudaModule> modules)
        : this(context, context.Device.MultiprocessorCount, (module, name) => modules.First(m => m.Name == module).GetKernel(name)) =>
        Modules = modules;

    /// <summary>Launchers over kernels found by <paramref name="kernel"/> (module file, kernel name); tests pass recording kernels.</summary>
    internal CoreKernels(CudaContext? context, int multiprocessors, Func<string, string, CudaKernel> kernel)
    {
        _context = context;
        _multiprocessors = multiprocessors;
        Modules = [];
        CudaKernel K(string module, string name) => kernel(module, name);
        _fill = K("elementwise.cu", "fill_f32");
        _reluForward = K("elementwise.cu", "relu_forward_f32");
        _reluBackward = K("elementwise.cu", "relu_backward_f32");
        _multiply = K("elementwise.cu", "multiply_f32");
        _dropout = K("dropout.cu", "dropout_forward_f32");
        _sgd = K("optimizer.cu", "sgd_step_f32");
        _softmax = K("softmax.cu", "softmax_rows_f32");
        _crossEntropyRows = K("softmax.cu", "softmax_cross_entropy_rows_f32");
        _crossEntropyLoss = K("softmax.cu", "softmax_cross_entropy_loss_f32");
        _crossEntropyGrad = K("softmax.cu", "softmax_cross_entropy_grad_f32");
    }

    /// <summary>The module files these launchers use.</summary>
    public static IReadOnlyList<string> ModuleNames { get; } = ["elementwise.cu", "dropout.cu", "optimizer.cu", "softmax.cu"];

    /// <summary>Loads (compiling where needed) the modules into <paramref name="context"/>; they are owned by the context.</summary>
    public static CoreKernels Load(CudaContext context, KernelModuleLoader? loader = null)
    {
        loader ??= KernelModuleLoader.Default;
        var modules = new List<CudaModule>();
        foreach (string name in ModuleNames) modules.Add(loader.Load(context, name));
        return new CoreKernels(context, modules);
    }

    public IReadOnlyList<CudaModule> Modules { get; private init; }

    // ---- elementwise --------------------------------------------------------------------------------

    /// <summary>x [n] = value.</summary>
    public void Fill(CudaStream? stream, DevicePointer x, float value, long n)
    {
        if (Empty(n)) return;
        _fill.Launch(Elements(n), stream, x, value, n);
    }

    /// <summary>y [n] = max(x, 0); in place allowed.</summary>
    public void ReluForward(CudaStream? stream, DevicePointer x, DevicePointer y, long n)
    {
        if (Empty(n)) return;
        _reluForward.Launch(Elements(n), stream, x, y, n);
    }

    /// <summary>dx [n] = y &gt; 0 ? dy : 0 (y is the forward output).</summary>
    public void ReluBackward(CudaStream? stream, DevicePointer y, DevicePointer dy, DevicePointer dx, long n)
    {
        if (Empty(n)) return;
        _reluBackward.Launch(Elements(n), stream, y, dy, dx, n);
    }

    /// <summary>c [n] = a * b.</summary>
    public void Multiply(CudaStream? stream, DevicePointer a, DevicePointer b, DevicePointer c, long n)
    {
        if (Empty(n)) return;
        _multiply.Launch(Elements(n), stream, a, b, c, n);
    }

    /// <summary>
    /// Inverted dropout on [n] values: mask = 1/(1-p) where the Philox uniform of (seed, offset + i) is &gt;= p,
    /// else 0; y = x * mask. The same mask as <c>CpuBackend.DropoutForward</c> for the same seed and offset.
    /// </summary>
    public void DropoutForward(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer mask, long n, float p,
        ulong seed, ulong offset)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        if (Empty(n)) return;
        float scale = 1f / (1f - p); // computed here as on the CPU, so both use the same float
        long blocks = (long)(((offset + (ulong)n - 1) >> 2) - (offset >> 2) + 1);
        _dropout.Launch(Elements(blocks), stream, x, y, mask, n, p, scale, seed, offset);
    }

    // ---- optimiser ----------------------------------------------------------------------------------

    /// <summary>SGD step over [n] weights, gradients and momentum buffers (PyTorch semantics, as <c>CpuBackend.SgdStep</c>).</summary>
    public void SgdStep(CudaStream? stream, DevicePointer weights, DevicePointer grads, DevicePointer momentum, long n,
        float learningRate, float momentumFactor, float weightDecay, bool nesterov)
    {
        if (Empty(n)) return;
        _sgd.Launch(Elements(n), stream, weights, grads, momentum, n, learningRate, momentumFactor, weightDecay, nesterov ? 1 : 0);
    }

    // ---- softmax and cross-entropy ------------------------------------------------------------------

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
    /// <see cref="CrossEntropyWorkspaceFloats"/> floats; <paramref name="status"/> is one int32 that reads
    /// 0 afterwards when every label was in [0, k), else rows - (first bad row) (the loss is then NaN). When
    /// <paramref name="record"/> (a device status record, common.cuh's DiccStatus) is given, a bad label is also
    /// recorded there.
    /// </summary>
    public void SoftmaxCrossEntropy(CudaStream? stream, DevicePointer logits, DevicePointer labels, DevicePointer classWeights,
        DevicePointer loss, DevicePointer dlogits, CudaDeviceVariable<float> workspace, DevicePointer status, int rows, int k,
        DevicePointer record = default)
    {
        if (workspace.Count < CrossEntropyWorkspaceFloats(rows))
            throw new ArgumentException($"The cross-entropy workspace holds {workspace.Count} floats; {CrossEntropyWorkspaceFloats(rows)} are needed for {rows} rows.", nameof(workspace));
        SoftmaxCrossEntropy(stream, logits, labels, classWeights, loss, dlogits, workspace.DevicePointer, status, rows, k, record);
    }

    /// <summary>As above, with the workspace given as the address of <see cref="CrossEntropyWorkspaceFloats"/> floats.</summary>
    public void SoftmaxCrossEntropy(CudaStream? stream, DevicePointer logits, DevicePointer labels, DevicePointer classWeights,
        DevicePointer loss, DevicePointer dlogits, DevicePointer workspace, DevicePointer status, int rows, int k, DevicePointer record)
    {
        RequireRows(rows, k);
        var ws = workspace;
        DevicePointer rowLoss = ws, rowWeight = ws.Element<float>(rows), rowLse = ws.Element<float>(2L * rows), invWeightSum = ws.Element<float>(3L * rows);
        nint s = stream?.Handle ?? _context?.Stream.Handle ?? 0;
        _context?.Bind();
        if (_context is not null) ThrowIfFailed(CudaDriver.cuMemsetD32Async(status.Address, 0, 1, s));
        _crossEntropyRows.Launch(new LaunchConfig(new Dim3((uint)rows), new Dim3(RowThreads)), stream,
            logits, labels, classWeights, rowLoss, rowWeight, rowLse, status, rows, k);
        _crossEntropyLoss.Launch(new LaunchConfig(new Dim3(1), new Dim3(256)), stream, rowLoss, rowWeight, loss, invWeightSum, rows,
            labels, status, record, k);
        if (!dlogits.IsNull)
            _crossEntropyGrad.Launch(Elements((long)rows * k), stream, logits, labels, classWeights, rowLse, invWeightSum, dlogits, rows, k);
    }

    private LaunchConfig Elements(long n) => CudaKernel.ForElements(n, _multiprocessors);

    private static bool Empty(long n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        return n == 0;
    }

    private static void RequireRows(int rows, int k)
    {
        if (rows <= 0 || k <= 0) throw new ArgumentException($"Row kernels need at least one row and one column, got [{rows}, {k}].");
    }
}
