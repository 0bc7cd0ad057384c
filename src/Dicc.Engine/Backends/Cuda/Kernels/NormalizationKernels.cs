using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>
/// kernels/normalization.cu: batch normalisation in training, inference and backward, over x [n, c, spatial],
/// with PyTorch's semantics and the CPU's arithmetic (statistics in double over a number of segments fixed by the
/// shape). Scratch (<c>workspace</c>) is the caller's device memory of <see cref="WorkspaceBytes"/> bytes.
/// </summary>
internal sealed class NormalizationKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "normalization.cu";

    private readonly CudaKernel _partial = resolve(ModuleFile, "batchnorm_partial_sums_f32");
    private readonly CudaKernel _finalize = resolve(ModuleFile, "batchnorm_finalize_f32");
    private readonly CudaKernel _inferenceParams = resolve(ModuleFile, "batchnorm_inference_params_f32");
    private readonly CudaKernel _apply = resolve(ModuleFile, "batchnorm_apply_f32");
    private readonly CudaKernel _backwardPartial = resolve(ModuleFile, "batchnorm_backward_partial_sums_f32");
    private readonly CudaKernel _backwardFinalize = resolve(ModuleFile, "batchnorm_backward_finalize_f32");
    private readonly CudaKernel _backwardApply = resolve(ModuleFile, "batchnorm_backward_apply_f32");
    private readonly CudaKernel _normalizeRows = resolve(ModuleFile, "l2_normalize_rows_f32");
    private readonly CudaKernel _normalizeRowsBackward = resolve(ModuleFile, "l2_normalize_rows_backward_f32");

    /// <summary>Threads per block of the row-normalisation kernels (one block per row).</summary>
    public const uint RowThreads = 128;

    public override IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["batchnorm_partial_sums_f32"] = LaunchShapes.ReductionThreads, ["batchnorm_finalize_f32"] = FinalizeThreads,
        ["batchnorm_inference_params_f32"] = FinalizeThreads, ["batchnorm_apply_f32"] = 256,
        ["batchnorm_backward_partial_sums_f32"] = LaunchShapes.ReductionThreads, ["batchnorm_backward_finalize_f32"] = FinalizeThreads,
        ["batchnorm_backward_apply_f32"] = 256, ["l2_normalize_rows_f32"] = (int)RowThreads,
        ["l2_normalize_rows_backward_f32"] = (int)RowThreads,
    };

    /// <summary>Scratch bytes for x [n, c, spatial] (per-segment partial sums, per-channel coefficients).</summary>
    public static long WorkspaceBytes(int n, int c, int spatial) =>
        PartialsBytes(c, LaunchShapes.Segments((long)n * spatial), 2) + 3L * sizeof(float) * c;

    /// <summary>
    /// Training forward over x [n, c, spatial] (y may be x): batch statistics, running statistics updated with the
    /// unbiased variance, saved mean and inverse standard deviation [c].
    /// </summary>
    public void TrainingForward(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer gamma, DevicePointer beta,
        DevicePointer runningMean, DevicePointer runningVar, DevicePointer saveMean, DevicePointer saveInvStd,
        int n, int c, int spatial, float momentum, float epsilon, DevicePointer workspace)
    {
        var s = Shape(n, c, spatial, momentum, epsilon, out int total);
        DevicePointer partials = workspace, coefficients = workspace.Offset(PartialsBytes(c, s.Segments, 2));
        _partial.Launch(new LaunchConfig(new Dim3((uint)s.Segments, (uint)c), LaunchShapes.ReductionThreads), stream, x, partials, s);
        _finalize.Launch(PerChannel(c), stream, partials, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, coefficients, s);
        _apply.Launch(Elements(total), stream, x, y, coefficients, c, spatial, total);
    }

    /// <summary>Evaluation forward with the running statistics: y = gamma (x - mean) / sqrt(var + eps) + beta over [n, c, spatial].</summary>
    public void InferenceForward(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer gamma, DevicePointer beta,
        DevicePointer runningMean, DevicePointer runningVar, int n, int c, int spatial, float epsilon, DevicePointer workspace)
    {
        Shape(n, c, spatial, 0f, epsilon, out int total);
        _inferenceParams.Launch(PerChannel(c), stream, gamma, beta, runningMean, runningVar, workspace, c, epsilon);
        _apply.Launch(Elements(total), stream, x, y, workspace, c, spatial, total);
    }

    /// <summary>Backward of the training forward: dx [n, c, spatial] (may alias dy), dgamma and dbeta [c] overwritten.</summary>
    public void Backward(CudaStream? stream, DevicePointer x, DevicePointer dy, DevicePointer gamma, DevicePointer saveMean,
        DevicePointer saveInvStd, DevicePointer dx, DevicePointer dgamma, DevicePointer dbeta, int n, int c, int spatial, DevicePointer workspace)
    {
        var s = Shape(n, c, spatial, 0f, 0f, out int total);
        DevicePointer partials = workspace, coefficients = workspace.Offset(PartialsBytes(c, s.Segments, 2));
        _backwardPartial.Launch(new LaunchConfig(new Dim3((uint)s.Segments, (uint)c), LaunchShapes.ReductionThreads), stream,
            x, dy, saveMean, saveInvStd, partials, s);
        _backwardFinalize.Launch(PerChannel(c), stream, partials, gamma, saveInvStd, dgamma, dbeta, coefficients, s);
        _backwardApply.Launch(Elements(total), stream, x, dy, saveMean, saveInvStd, coefficients, dx, c, spatial, total);
    }

    /// <summary>Row L2 normalisation of x [rows, f] into y, each row's norm into norms [rows] (the CPU's <c>NormalizeRows</c>).</summary>
    public void NormalizeRows(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer norms, int rows, int f, float epsilon)
    {
        RequireRowShape(rows, f);
        _normalizeRows.Launch(new LaunchConfig(new Dim3((uint)rows), new Dim3(RowThreads)), stream, x, y, norms, rows, f, epsilon);
    }

    /// <summary>The gradient of <see cref="NormalizeRows"/>: dx [rows, f] from its output y, the norms and dy.</summary>
    public void NormalizeRowsBackward(CudaStream? stream, DevicePointer y, DevicePointer norms, DevicePointer dy, DevicePointer dx,
        int rows, int f, float epsilon)
    {
        RequireRowShape(rows, f);
        _normalizeRowsBackward.Launch(new LaunchConfig(new Dim3((uint)rows), new Dim3(RowThreads)), stream, y, norms, dy, dx, rows, f, epsilon);
    }

    private static void RequireRowShape(int rows, int f)
    {
        if (rows <= 0 || f <= 0) throw new ArgumentException($"Row normalisation of [{rows}, {f}]: sizes must be positive.");
        LaunchShapes.RequireInt32Elements((long)rows * f, "The row-normalisation input");
    }

    private static NormShape Shape(int n, int c, int spatial, float momentum, float epsilon, out int total)
    {
        if (n <= 0 || c <= 0 || spatial <= 0) throw new ArgumentException($"Batch normalisation of [{n}, {c}, {spatial}]: sizes must be positive.");
        if (c > ushort.MaxValue) throw new NotSupportedException($"Batch normalisation over {c} channels: at most {ushort.MaxValue} (a grid dimension).");
        total = LaunchShapes.RequireInt32Elements((long)n * c * spatial, "The batch-norm input");
        return new NormShape { N = n, C = c, Spatial = spatial, Segments = LaunchShapes.Segments((long)n * spatial), Momentum = momentum, Epsilon = epsilon };
    }

    internal static long PartialsBytes(int channels, int segments, int values) => Align256((long)channels * segments * values * sizeof(double));
}
