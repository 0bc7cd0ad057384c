using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/bias.cu: bias terms of linear and convolution layers and their gradients (sums in double, fixed order).</summary>
internal sealed class BiasKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "bias.cu";

    private readonly CudaKernel _addRowBias = resolve(ModuleFile, "add_row_bias_f32");
    private readonly CudaKernel _addChannelBias = resolve(ModuleFile, "add_channel_bias_f32");
    private readonly CudaKernel _columnSums = resolve(ModuleFile, "column_sums_f32");
    private readonly CudaKernel _channelPartialSums = resolve(ModuleFile, "channel_partial_sums_f32");
    private readonly CudaKernel _channelSumsFinalize = resolve(ModuleFile, "channel_sums_finalize_f32");

    public override IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["add_row_bias_f32"] = 256, ["add_channel_bias_f32"] = 256, ["column_sums_f32"] = FinalizeThreads,
        ["channel_partial_sums_f32"] = LaunchShapes.ReductionThreads, ["channel_sums_finalize_f32"] = FinalizeThreads,
    };

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
        NormalizationKernels.PartialsBytes(channels, LaunchShapes.Segments((long)n * spatial), 1);

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
}
