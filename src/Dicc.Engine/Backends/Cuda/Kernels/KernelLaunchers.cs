using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>Finds kernel <paramref name="kernel"/> of module file <paramref name="module"/>: a loaded module's, or a recording kernel in tests.</summary>
internal delegate CudaKernel KernelResolver(string module, string kernel);

/// <summary>
/// The launchers of one module of kernels/ (one subclass per <c>X.cu</c>, named after it): each launcher checks
/// its sizes, picks the launch shape from the problem alone (<see cref="LaunchShapes"/>) and queues the kernel on
/// a stream (null: the context's stream) without synchronising. Pointers are device addresses of float32 data
/// unless stated, so tensor views at any offset can be passed. Each computes what the CPU backend's op of the
/// same name computes (docs/gpu.md says where that is bit for bit).
/// </summary>
internal abstract class KernelLaunchers
{
    private readonly KernelResolver _resolve;
    private readonly int _multiprocessors;

    protected KernelLaunchers(string module, KernelResolver resolve, int multiprocessors)
    {
        Module = module;
        _resolve = resolve;
        _multiprocessors = multiprocessors;
    }

    /// <summary>The module file, e.g. "softmax.cu".</summary>
    public string Module { get; }

    /// <summary>Threads per block of the kernels whose block size is fixed (checked against their register use by a test).</summary>
    public virtual IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>();

    protected CudaKernel Kernel(string name) => _resolve(Module, name);

    /// <summary>A grid-stride launch over <paramref name="n"/> items; an empty range still gets one block (whose loop does nothing).</summary>
    protected LaunchConfig Elements(long n) => CudaKernel.ForElements(Math.Max(1, n), _multiprocessors);

    /// <summary>A launch of one thread per channel, in blocks of <see cref="FinalizeThreads"/>.</summary>
    protected static LaunchConfig PerChannel(int c) => new(new Dim3((uint)((c + FinalizeThreads - 1) / FinalizeThreads)), FinalizeThreads);

    /// <summary>Threads per block of the per-channel finishing kernels.</summary>
    protected const int FinalizeThreads = 128;

    protected static long Align256(long bytes) => (bytes + 255) & ~255L;

    /// <summary>Loads (compiling where needed) module files into <paramref name="context"/>, which owns them.</summary>
    public static IReadOnlyList<CudaModule> LoadModules(CudaContext context, KernelModuleLoader? loader, params IEnumerable<string> modules)
    {
        loader ??= KernelModuleLoader.Default;
        return [.. modules.Distinct().Select(m => loader.Load(context, m))];
    }

    /// <summary>Finds kernels in loaded modules.</summary>
    public static KernelResolver Resolver(IReadOnlyList<CudaModule> modules) =>
        (module, kernel) => modules.First(m => m.Name == module).GetKernel(kernel);
}

/// <summary>The launchers of every module of kernels/, as the CUDA backend uses them.</summary>
internal sealed class DeviceKernels
{
    /// <summary>Launchers over kernels found by <paramref name="resolve"/>; <paramref name="context"/> (null in tests) runs the driver-side memsets.</summary>
    public DeviceKernels(CudaContext? context, int multiprocessors, KernelResolver resolve)
    {
        Elementwise = new ElementwiseKernels(resolve, multiprocessors);
        Dropout = new DropoutKernels(resolve, multiprocessors);
        Optimizer = new OptimizerKernels(resolve, multiprocessors);
        Softmax = new SoftmaxKernels(context, resolve, multiprocessors);
        Normalization = new NormalizationKernels(resolve, multiprocessors);
        Pooling = new PoolingKernels(resolve, multiprocessors);
        Bias = new BiasKernels(resolve, multiprocessors);
        Data = new DataKernels(resolve, multiprocessors);
        Clustering = new ClusteringKernels(resolve, multiprocessors);
    }

    /// <summary>Loads (compiling where needed) every module into <paramref name="context"/>.</summary>
    public static DeviceKernels Load(CudaContext context, KernelModuleLoader? loader = null)
    {
        var modules = KernelLaunchers.LoadModules(context, loader, KernelSources.Modules);
        return new(context, context.Device.MultiprocessorCount, KernelLaunchers.Resolver(modules)) { Modules = modules };
    }

    /// <summary>The loaded modules (empty for launchers over recording kernels).</summary>
    public IReadOnlyList<CudaModule> Modules { get; private init; } = [];

    public ElementwiseKernels Elementwise { get; }
    public DropoutKernels Dropout { get; }
    public OptimizerKernels Optimizer { get; }
    public SoftmaxKernels Softmax { get; }
    public NormalizationKernels Normalization { get; }
    public PoolingKernels Pooling { get; }
    public BiasKernels Bias { get; }
    public DataKernels Data { get; }
    public ClusteringKernels Clustering { get; }

    /// <summary>Every module's launchers.</summary>
    public IEnumerable<KernelLaunchers> All => [Elementwise, Dropout, Optimizer, Softmax, Normalization, Pooling, Bias, Data, Clustering];
}
