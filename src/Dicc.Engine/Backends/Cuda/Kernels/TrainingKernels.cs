using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>
/// Typed launchers for kernels/normalization.cu, pooling.cu, bias.cu and data.cu: batch normalisation, max
/// pooling, bias terms and their gradients, and batches cut from a device-resident dataset. Each launcher
/// picks its launch shape from the problem alone (<see cref="LaunchShapes"/>) and queues the kernels on a
/// stream (null: the context's stream) without synchronising. Pointers are device addresses of float32 data
/// unless stated; scratch (<c>workspace</c>) is the caller's device memory of the size the matching
/// <c>...WorkspaceBytes</c> method gives.
/// </summary>
public sealed class TrainingKernels
{
    private const int FinalizeThreads = 128;
    private readonly int _multiprocessors;
    private readonly CudaKernel _bnPartial, _bnFinalize, _bnInferenceParams, _bnApply, _bnBackwardPartial, _bnBackwardFinalize, _bnBackwardApply;
    private readonly CudaKernel _poolForward, _poolBackward;
    private readonly CudaKernel _addRowBias, _addChannelBias, _columnSums, _channelPartialSums, _channelSumsFinalize;
    private readonly CudaKernel _checkIndices, _gather, _crop;

    /// <summary>The module files these launchers use.</summary>
    public static IReadOnlyList<string> ModuleNames { get; } = ["normalization.cu", "pooling.cu", "bias.cu", "data.cu"];

    /// <summary>Threads per block of each kernel (checked against the kernels' register use by a test).</summary>
    internal static IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["batchnorm_partial_sums_f32"] = LaunchShapes.ReductionThreads, ["batchnorm_finalize_f32"] = FinalizeThreads,
        ["batchnorm_inference_params_f32"] = FinalizeThreads, ["batchnorm_apply_f32"] = 256,
        ["batchnorm_backward_partial_sums_f32"] = LaunchShapes.ReductionThreads, ["batchnorm_backward_finalize_f32"] = FinalizeThreads,
        ["batchnorm_backward_apply_f32"] = 256, ["maxpool_forward_f32"] = 256, ["maxpool_backward_f32"] = 256,
        ["add_row_bias_f32"] = 256, ["add_channel_bias_f32"] = 256, ["column_sums_f32"] = FinalizeThreads,
        ["channel_partial_sums_f32"] = LaunchShapes.ReductionThreads, ["channel_sums_finalize_f32"] = FinalizeThreads,
        ["check_indices_i32"] = LaunchShapes.ReductionThreads, ["gather_i32"] = LaunchShapes.ReductionThreads, ["crop_images_u8"] = 256,
    };

    private TrainingKernels(CudaContext context, IReadOnlyList<CudaModule> modules)
        : this(context.Device.MultiprocessorCount, (module, name) => modules.First(m => m.Name == module).GetKernel(name)) =>
        Modules = modules;

    /// <summary>Launchers over kernels found by <paramref name="kernel"/> (module file, kernel name); tests pass recording kernels.</summary>
    internal TrainingKernels(int multiprocessors, Func<string, string, CudaKernel> kernel)
    {
        _multiprocessors = multiprocessors;
        Modules = [];
        _bnPartial = kernel("normalization.cu", "batchnorm_partial_sums_f32");
        _bnFinalize = kernel("normalization.cu", "batchnorm_finalize_f32");
        _bnInferenceParams = kernel("normalization.cu", "batchnorm_inference_params_f32");
        _bnApply = kernel("normalization.cu", "batchnorm_apply_f32");
        _bnBackwardPartial = kernel("normalization.cu", "batchnorm_backward_partial_sums_f32");
        _bnBackwardFinalize = kernel("normalization.cu", "batchnorm_backward_finalize_f32");
        _bnBackwardApply = kernel("normalization.cu", "batchnorm_backward_apply_f32");
        _poolForward = kernel("pooling.cu", "maxpool_forward_f32");
        _poolBackward = kernel("pooling.cu", "maxpool_backward_f32");
        _addRowBias = kernel("bias.cu", "add_row_bias_f32");
        _addChannelBias = kernel("bias.cu", "add_channel_bias_f32");
        _columnSums = kernel("bias.cu", "column_sums_f32");
        _channelPartialSums = kernel("bias.cu", "channel_partial_sums_f32");
        _channelSumsFinalize = kernel("bias.cu", "channel_sums_finalize_f32");
        _checkIndices = kernel("data.cu", "check_indices_i32");
        _gather = kernel("data.cu", "gather_i32");
        _crop = kernel("data.cu", "crop_images_u8");
    }

    /// <summary>Loads (compiling where needed) the modules into <paramref name="context"/>; they are owned by the context.</summary>
    public static TrainingKernels Load(CudaContext context, KernelModuleLoader? loader = null)
    {
        loader ??= KernelModuleLoader.Default;
        var modules = new List<CudaModule>();
        foreach (string name in ModuleNames) modules.Add(loader.Load(context, name));
        return new TrainingKernels(context, modules);
    }

    public IReadOnlyList<CudaModule> Modules { get; private init; }

    // ---- batch normalisation ------------------------------------------------------------------------

    /// <summary>Scratch bytes the batch-norm launchers need for x [n, c, spatial] (per-segment partial sums, per-channel coefficients).</summary>
    public static long BatchNormWorkspaceBytes(int n, int c, int spatial) =>
        PartialsBytes(c, LaunchShapes.Segments((long)n * spatial), 2) + 3L * sizeof(float) * c;

    /// <summary>
    /// Training forward over x [n, c, spatial] (y may be x): batch statistics, running statistics updated with the
    /// unbiased variance, saved mean and inverse standard deviation [c] (PyTorch semantics, CPU arithmetic).
    /// </summary>
    public void BatchNormTrainingForward(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer gamma, DevicePointer beta,
        DevicePointer runningMean, DevicePointer runningVar, DevicePointer saveMean, DevicePointer saveInvStd,
        int n, int c, int spatial, float momentum, float epsilon, DevicePointer workspace)
    {
        var s = Norm(n, c, spatial, momentum, epsilon, out int total);
        DevicePointer partials = workspace, coefficients = workspace.Offset(PartialsBytes(c, s.Segments, 2));
        _bnPartial.Launch(new LaunchConfig(new Dim3((uint)s.Segments, (uint)c), LaunchShapes.ReductionThreads), stream, x, partials, s);
        _bnFinalize.Launch(PerChannel(c), stream, partials, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, coefficients, s);
        _bnApply.Launch(Elements(total), stream, x, y, coefficients, c, spatial, total);
    }

    /// <summary>Evaluation forward with the running statistics: y = gamma (x - mean) / sqrt(var + eps) + beta over [n, c, spatial].</summary>
    public void BatchNormInferenceForward(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer gamma, DevicePointer beta,
        DevicePointer runningMean, DevicePointer runningVar, int n, int c, int spatial, float epsilon, DevicePointer workspace)
    {
        Norm(n, c, spatial, 0f, epsilon, out int total);
        _bnInferenceParams.Launch(PerChannel(c), stream, gamma, beta, runningMean, runningVar, workspace, c, epsilon);
        _bnApply.Launch(Elements(total), stream, x, y, workspace, c, spatial, total);
    }

    /// <summary>Backward of the training forward: dx [n, c, spatial] (may alias dy), dgamma and dbeta [c] overwritten.</summary>
    public void BatchNormBackward(CudaStream? stream, DevicePointer x, DevicePointer dy, DevicePointer gamma, DevicePointer saveMean,
        DevicePointer saveInvStd, DevicePointer dx, DevicePointer dgamma, DevicePointer dbeta, int n, int c, int spatial, DevicePointer workspace)
    {
        var s = Norm(n, c, spatial, 0f, 0f, out int total);
        DevicePointer partials = workspace, coefficients = workspace.Offset(PartialsBytes(c, s.Segments, 2));
        _bnBackwardPartial.Launch(new LaunchConfig(new Dim3((uint)s.Segments, (uint)c), LaunchShapes.ReductionThreads), stream,
            x, dy, saveMean, saveInvStd, partials, s);
        _bnBackwardFinalize.Launch(PerChannel(c), stream, partials, gamma, saveInvStd, dgamma, dbeta, coefficients, s);
        _bnBackwardApply.Launch(Elements(total), stream, x, dy, saveMean, saveInvStd, coefficients, dx, c, spatial, total);
    }

    private static NormShape Norm(int n, int c, int spatial, float momentum, float epsilon, out int total)
    {
        if (n <= 0 || c <= 0 || spatial <= 0) throw new ArgumentException($"Batch normalisation of [{n}, {c}, {spatial}]: sizes must be positive.");
        if (c > ushort.MaxValue) throw new NotSupportedException($"Batch normalisation over {c} channels: at most {ushort.MaxValue} (a grid dimension).");
        total = LaunchShapes.RequireInt32Elements((long)n * c * spatial, "The batch-norm input");
        return new NormShape { N = n, C = c, Spatial = spatial, Segments = LaunchShapes.Segments((long)n * spatial), Momentum = momentum, Epsilon = epsilon };
    }

    private static long PartialsBytes(int channels, int segments, int values) => Align256((long)channels * segments * values * sizeof(double));

    private static long Align256(long bytes) => (bytes + 255) & ~255L;

    // ---- max pooling --------------------------------------------------------------------------------

    /// <summary>y [N, C, P, Q] = max over each window of x [N, C, H, W] (first maximum, NaN wins, padding never).</summary>
    public void MaxPoolForward(CudaStream? stream, DevicePointer x, DevicePointer y, in PoolGeometry g)
    {
        var s = PoolShape.Of(g);
        _poolForward.Launch(Elements(g.OutputShape.ElementCount), stream, x, y, s);
    }

    /// <summary>dx [N, C, H, W] = the gradients dy [N, C, P, Q] routed to each window's first maximum in x (summed where windows overlap).</summary>
    public void MaxPoolBackward(CudaStream? stream, DevicePointer x, DevicePointer dy, DevicePointer dx, in PoolGeometry g)
    {
        var s = PoolShape.Of(g);
        _poolBackward.Launch(Elements(g.InputShape.ElementCount), stream, x, dy, dx, s);
    }

    // ---- bias terms ---------------------------------------------------------------------------------

    /// <summary>y [rows, cols] += bias [cols].</summary>
    public void AddRowBias(CudaStream? stream, DevicePointer y, DevicePointer bias, int rows, int cols) =>
        _addRowBias.Launch(Elements((long)rows * cols), stream, y, bias, rows, cols);

    /// <summary>y [n, channels, spatial] += bias [channels].</summary>
    public void AddChannelBias(CudaStream? stream, DevicePointer y, DevicePointer bias, int n, int channels, int spatial)
    {
        long total = (long)n * channels * spatial;
        _addChannelBias.Launch(Elements(total), stream, y, bias, channels, spatial, total);
    }

    /// <summary>sums [cols] = column sums of dy [rows, cols], rows in order in double (the CPU's result bit for bit).</summary>
    public void ColumnSums(CudaStream? stream, DevicePointer dy, DevicePointer sums, int rows, int cols) =>
        _columnSums.Launch(new LaunchConfig(new Dim3((uint)((cols + FinalizeThreads - 1) / FinalizeThreads)), FinalizeThreads), stream, dy, sums, rows, cols);

    /// <summary>Scratch bytes of <see cref="ChannelSums"/>.</summary>
    public static long ChannelSumsWorkspaceBytes(int n, int channels, int spatial) =>
        PartialsBytes(channels, LaunchShapes.Segments((long)n * spatial), 1);

    /// <summary>sums [channels] = sums of dy [n, channels, spatial] over n and spatial, in double.</summary>
    public void ChannelSums(CudaStream? stream, DevicePointer dy, DevicePointer sums, int n, int channels, int spatial, DevicePointer workspace)
    {
        if (channels > ushort.MaxValue) throw new NotSupportedException($"Channel sums over {channels} channels: at most {ushort.MaxValue}.");
        LaunchShapes.RequireInt32Elements((long)n * spatial, "A channel of the bias gradient");
        int segments = LaunchShapes.Segments((long)n * spatial);
        _channelPartialSums.Launch(new LaunchConfig(new Dim3((uint)segments, (uint)channels), LaunchShapes.ReductionThreads), stream,
            dy, workspace, n, channels, spatial, segments);
        _channelSumsFinalize.Launch(PerChannel(channels), stream, workspace, sums, channels, segments);
    }

    // ---- data ---------------------------------------------------------------------------------------

    /// <summary>Records in <paramref name="status"/> (a DiccStatus) the first of indices [n] outside [0, bound) as <paramref name="kind"/>.</summary>
    public void CheckIndices(CudaStream? stream, DevicePointer indices, int n, int bound, int kind, DevicePointer status)
    {
        if (n <= 0) return;
        _checkIndices.Launch(new LaunchConfig(1, LaunchShapes.ReductionThreads), stream, indices, n, bound, kind, status);
    }

    /// <summary>output [n] = values[indices[j]] (int32, values [count]); a bad index is recorded in <paramref name="status"/>.</summary>
    public void Gather(CudaStream? stream, DevicePointer values, int count, DevicePointer indices, DevicePointer output, int n, DevicePointer status)
    {
        if (n <= 0) return;
        _gather.Launch(new LaunchConfig(1, LaunchShapes.ReductionThreads), stream, values, count, indices, output, n, status);
    }

    /// <summary>
    /// output [n * views, 1, crop, crop] from uint8 images [count, height, width] at indices [n] (Backend.CropImages;
    /// the random draws are Data.Augmentation.DrawCrop's). Indices are not checked here (see <see cref="CheckIndices"/>);
    /// a bad one gives zeros.
    /// </summary>
    public void CropImages(CudaStream? stream, DevicePointer images, DevicePointer indices, DevicePointer output, int count, int height, int width,
        int n, CropMode mode, int crop, ulong seed, ulong firstSample)
    {
        if (n <= 0) return;
        int views = mode == CropMode.TenCrop ? Data.Augmentation.TenCropViews : 1;
        var s = new CropShape
        {
            Seed = seed, FirstSample = firstSample, Stream = Data.Augmentation.CropStream, Count = count, Height = height, Width = width,
            N = n, Mode = (int)mode, Crop = crop,
        };
        _crop.Launch(new LaunchConfig(new Dim3(checked((uint)(n * views))), 256), stream, images, indices, output, s,
            Data.Augmentation.CenterOffset(height, crop), Data.Augmentation.CenterOffset(width, crop));
    }

    // An empty range still gets one block (the grid-stride loops do nothing), so no launcher needs a special case.
    private LaunchConfig Elements(long n) => CudaKernel.ForElements(Math.Max(1, n), _multiprocessors);

    private static LaunchConfig PerChannel(int c) => new(new Dim3((uint)((c + FinalizeThreads - 1) / FinalizeThreads)), FinalizeThreads);
}
