using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>
/// kernels/clustering.cu: one DICC clustering step, either as the one-block kernel (small batches; one launch) or
/// as the five multi-block steps. Both give the reference's results bit for bit; which runs depends on the problem
/// size only (<see cref="LaunchShapes.UsesFusedClustering"/>).
/// </summary>
internal sealed class ClusteringKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "clustering.cu";

    private readonly CudaKernel _fused = resolve(ModuleFile, "cluster_fused_f32");
    private readonly CudaKernel _prepare = resolve(ModuleFile, "cluster_prepare_f32");
    private readonly CudaKernel _sums = resolve(ModuleFile, "cluster_sums_f32");
    private readonly CudaKernel _update = resolve(ModuleFile, "cluster_update_f32");
    private readonly CudaKernel _distances = resolve(ModuleFile, "cluster_distances_f32");
    private readonly CudaKernel _assign = resolve(ModuleFile, "cluster_assign_f32");

    public override IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["cluster_fused_f32"] = LaunchShapes.FusedClusteringThreads, ["cluster_prepare_f32"] = LaunchShapes.FusedClusteringThreads,
        ["cluster_sums_f32"] = LaunchShapes.ReductionThreads, ["cluster_update_f32"] = LaunchShapes.ReductionThreads,
        ["cluster_distances_f32"] = LaunchShapes.ReductionThreads, ["cluster_assign_f32"] = LaunchShapes.ReductionThreads,
    };

    /// <summary>Loads (compiling where needed) kernels/clustering.cu into <paramref name="context"/>.</summary>
    public static ClusteringKernels Load(CudaContext context, KernelModuleLoader? loader = null) =>
        new(Resolver(LoadModules(context, loader, ModuleFile)), context.Device.MultiprocessorCount);

    /// <summary>The one-block step: features [n, M], labels and pseudo-labels [n]; state and plan in <paramref name="state"/>.</summary>
    public void Fused(CudaStream? stream, DevicePointer features, DevicePointer labels, DevicePointer pseudo, in ClusterShape shape,
        in ClusterState state, DevicePointer status)
    {
        uint shared = (uint)LaunchShapes.FusedClusteringSharedBytes(shape.N, shape.Classes, shape.Dim);
        _fused.Launch(new LaunchConfig(1, LaunchShapes.FusedClusteringThreads, shared), stream, features, labels, pseudo, shape, state, status);
    }

    /// <summary>The five multi-block steps, with scratch <paramref name="work"/> sized for at least <c>shape.N</c> samples.</summary>
    public void MultiBlock(CudaStream? stream, DevicePointer features, DevicePointer labels, DevicePointer pseudo, in ClusterShape shape,
        in ClusterState state, in ClusterWork work, DevicePointer status)
    {
        const uint threads = LaunchShapes.ReductionThreads;
        _prepare.Launch(new LaunchConfig(1, LaunchShapes.FusedClusteringThreads), stream, labels, shape, work, status);
        _sums.Launch(new LaunchConfig(new Dim3((uint)((shape.Dim + threads - 1) / threads), (uint)shape.Classes), threads), stream, features, shape, work);
        _update.Launch(Elements((long)shape.Classes * shape.Dim), stream, features, labels, shape, state, work, status);
        _distances.Launch(new LaunchConfig(LaunchShapes.DistanceBlocks(shape.N), threads), stream, features, labels, shape, state, work);
        _assign.Launch(Elements(Math.Max(1, shape.N)), stream, labels, pseudo, shape, state, work);
    }
}
