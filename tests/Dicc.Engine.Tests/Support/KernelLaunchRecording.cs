using Dicc.Engine.Backends.Cuda;
using System.Text.RegularExpressions;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Tests.Support;

/// <summary>One recorded kernel launch: which kernel, its launch shape, and each argument's size and kind.</summary>
internal sealed record RecordedLaunch(string Module, string Kernel, LaunchConfig Config, int[] Sizes, string Kinds);

/// <summary>
/// Runs every launcher of the engine (<see cref="DeviceKernels"/>, one class per kernels/*.cu) against recording kernels,
/// without a GPU, with the shapes the CUDA backend uses (VGG layers, a DICC batch): what each launch would pass
/// to cuLaunchKernel can then be checked against the kernels NVRTC compiles.
/// </summary>
internal static unsafe class KernelLaunchRecording
{
    private sealed class Recorder(string module, string kernel, List<RecordedLaunch> launches) : IKernelLauncher
    {
        public void Launch(nint function, in LaunchConfig config, nint stream, void** arguments, int* sizes, byte* kinds, int count)
        {
            var s = new int[count];
            for (int i = 0; i < count; i++) s[i] = sizes[i];
            launches.Add(new RecordedLaunch(module, kernel, config, s, count == 0 ? "" : System.Text.Encoding.ASCII.GetString(kinds, count)));
        }
    }

    private sealed class NoLaunch : IKernelLauncher
    {
        public static readonly NoLaunch Instance = new();
        public void Launch(nint function, in LaunchConfig config, nint stream, void** arguments, int* sizes, byte* kinds, int count) { }
    }

    /// <summary>Every launcher over kernels that launch nothing (to inspect the launchers themselves).</summary>
    public static DeviceKernels UnloadedLaunchers() => new(null, 1, (_, name) => new CudaKernel(null, null, 1, name, NoLaunch.Instance));

    public static IReadOnlyList<RecordedLaunch> RecordAll()
    {
        var launches = new List<RecordedLaunch>();
        CudaKernel Resolve(string module, string name) => new(null, null, 1, name, new Recorder(module, name, launches));
        var p = new DevicePointer(0x7000_0000);
        const int sms = 132;

        var k = new DeviceKernels(null, sms, Resolve);
        k.Elementwise.Fill(null, p, 1f, 1000);
        k.Elementwise.ReluForward(null, p, p, 1000);
        k.Elementwise.ReluBackward(null, p, p, p, 1000);
        k.Elementwise.Multiply(null, p, p, p, 1000);
        k.Dropout.Forward(null, p, p, p, 1000, 0.5f, 7, 1L << 32);
        k.Optimizer.SgdStep(null, p, p, p, 1000, 0.01f, 0.9f, 5e-4f, false);
        k.Softmax.Softmax(null, p, p, 32, 253);
        k.Softmax.CrossEntropy(null, p, p, p, p, p, p, p, 32, 253, p);
        k.Softmax.AdjustedCrossEntropy(null, p, p, p, p, p, 30f, 2f, p, p, p, p, 32, 253, p);

        foreach (var (n, c, spatial) in new[] { (256, 64, 44 * 44), (8, 512, 1), (2, 7, 1) })
        {
            k.Normalization.TrainingForward(null, p, p, p, p, p, p, p, p, n, c, spatial, 0.1f, 1e-5f, p);
            k.Normalization.InferenceForward(null, p, p, p, p, p, p, n, c, spatial, 1e-5f, p);
            k.Normalization.Backward(null, p, p, p, p, p, p, p, p, n, c, spatial, p);
            k.Normalization.NormalizeRows(null, p, p, p, n, c, 1e-12f);
            k.Normalization.NormalizeRowsBackward(null, p, p, p, p, n, c, 1e-12f);
            k.Bias.ChannelSums(null, p, p, n, c, spatial, p);
            k.Bias.AddChannelBias(null, p, p, n, c, spatial);
        }
        var pool = new PoolGeometry(32, 64, 44, 44, 2, 2, 2, 2, 0, 0);
        k.Pooling.MaxPoolForward(null, p, p, pool);
        k.Pooling.MaxPoolBackward(null, p, p, p, pool);
        k.Bias.AddRowBias(null, p, p, 32, 7);
        k.Bias.ColumnSums(null, p, p, 32, 7);
        k.Data.CheckIndices(null, p, 32, 100, DeviceStatusKind.CropIndex, p);
        k.Data.Gather(null, p, 100, p, p, 32, p);
        foreach (var mode in new[] { CropMode.Random, CropMode.Center, CropMode.TenCrop })
            k.Data.CropImages(null, p, p, p, 100, 48, 48, 32, mode, 44, 1, 0);

        var state = new ClusterState { Centers = p, Seen = p, Step = p, SubCounts = p, SubOffsets = p };
        var work = new ClusterWork { Sums = p, Distances = p, ClassMax = p, Counts = p, Starts = p, Order = p, NonFinite = p, Abort = p };
        // The largest fused batch for a 7-class, 512-wide problem: its dynamic shared memory is the most the fused kernel asks for.
        int fusedN = Enumerable.Range(1, LaunchShapes.FusedBatchLimit).Last(n => LaunchShapes.UsesFusedClustering(n, 7, 512));
        k.Clustering.Fused(null, p, p, p, new ClusterShape { Keep = 0.99, Blend = 0.01, N = fusedN, Classes = 7, Dim = 512 }, state, p);
        k.Clustering.MultiBlock(null, p, p, p, new ClusterShape { Keep = 0.99, Blend = 0.01, N = 4096, Classes = 7, Dim = 512, Partition = 1 }, state, work, p);
        return launches;
    }

    /// <summary>A kernel's PTX parameters: sizes in bytes and kinds ('f' .f32, 'd' .f64, 'i' integer or pointer, 'b' struct).</summary>
    public sealed record PtxParameters(int[] Sizes, string Kinds);

    /// <summary>Parses the .entry declarations of NVRTC's PTX.</summary>
    public static Dictionary<string, PtxParameters> ParseEntries(string ptx)
    {
        var result = new Dictionary<string, PtxParameters>();
        foreach (Match entry in Regex.Matches(ptx, @"\.entry\s+(\w+)\s*\(([^)]*)\)"))
        {
            var sizes = new List<int>();
            var kinds = new System.Text.StringBuilder();
            foreach (Match param in Regex.Matches(entry.Groups[2].Value, @"\.param\s+(?:\.align\s+\d+\s+)?\.(\w+)\s+\w+(?:\[(\d+)\])?"))
            {
                string type = param.Groups[1].Value;
                if (param.Groups[2].Success)
                {
                    sizes.Add(int.Parse(param.Groups[2].Value) * (type == "b8" ? 1 : throw new FormatException($"array of {type}")));
                    kinds.Append('b');
                    continue;
                }
                int bits = int.Parse(type[1..]);
                sizes.Add(bits / 8);
                kinds.Append(type[0] == 'f' ? (bits == 64 ? 'd' : 'f') : 'i');
            }
            result[entry.Groups[1].Value] = new PtxParameters([.. sizes], kinds.ToString());
        }
        return result;
    }

    public static string CompilePtx(string module, string architecture)
    {
        using var compiler = new CudaRuntimeCompiler(KernelSources.Get(module), module,
            [new KeyValuePair<string, string>(KernelSources.HeaderName, KernelSources.Header)]);
        compiler.Compile([$"--gpu-architecture={architecture}"]);
        return System.Text.Encoding.ASCII.GetString(compiler.GetPtx()).TrimEnd('\0');
    }

    /// <summary>Per kernel: registers, static shared memory, spills, from ptxas's verbose report of a cubin build.</summary>
    public static Dictionary<string, KernelResources> Resources(string module, string architecture)
    {
        using var compiler = new CudaRuntimeCompiler(KernelSources.Get(module), module,
            [new KeyValuePair<string, string>(KernelSources.HeaderName, KernelSources.Header)]);
        compiler.Compile([$"--gpu-architecture={architecture}", "-Xptxas=-v"]);
        return PtxasReport.Parse(compiler.Log);
    }
}
