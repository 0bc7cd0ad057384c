using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>
/// Launchers for kernels/clustering.cu: one DICC clustering step, either as the one-block kernel (small
/// batches; one launch) or as the five multi-block steps. Both give the reference's results bit for bit; which
/// runs depends on the problem size only (<see cref="LaunchShapes.UsesFusedClustering"/>).
/// </summary>
public sealed class ClusteringKernels
{
    private readonly CudaKernel _fused, _prepare, _sums, _update, _distances, _assign;

    public const string ModuleName = "clustering.cu";

    /// <summary>Threads per block of each kernel (checked against the kernels' register use by a test).</summary>
    internal static IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["cluster_fused_f32"] = LaunchShapes.FusedClusteringThreads, ["cluster_prepare_f32"] = LaunchShapes.FusedClusteringThreads,
        ["cluster_sums_f32"] = LaunchShapes.ReductionThreads, ["cluster_update_f32"] = LaunchShapes.ReductionThreads,
        ["cluster_distances_f32"] = LaunchShapes.ReductionThreads, ["cluster_assign_f32"] = LaunchShapes.ReductionThreads,
    };

    /// <summary>Launchers over kernels found by <paramref name="kernel"/> (module file, kernel name); tests pass recording kernels.</summary>
    internal ClusteringKernels(int multiprocessors, Func<string, string, CudaKernel> kernel)
    {
        Multiprocessors = multiprocessors;
        _fused = kernel(ModuleName, "cluster_fused_f32");
        _prepare = kernel(ModuleName, "cluster_prepare_f32");
        _sums = kernel(ModuleName, "cluster_sums_f32");
        _update = kernel(ModuleName, "cluster_update_f32");
        _distances = kernel(ModuleName, "cluster_distances_f32");
        _assign = kernel(ModuleName, "cluster_assign_f32");
    }

    /// <summary>Loads (compiling where needed) kernels/clustering.cu into <paramref name="context"/>.</summary>
    public static ClusteringKernels Load(CudaContext context, KernelModuleLoader? loader = null)
    {
        var module = (loader ?? KernelModuleLoader.Default).Load(context, ModuleName);
        return new ClusteringKernels(context.Device.MultiprocessorCount, (_, name) => module.GetKernel(name)) { Module = module };
    }

    public CudaModule? Module { get; private init; }

    internal int Multiprocessors { get; }

    /// <summary>The one-block step: features [n, M], labels and pseudo-labels [n]; state and plan in <paramref name="state"/>.</summary>
    internal void Fused(CudaStream? stream, DevicePointer features, DevicePointer labels, DevicePointer pseudo, in ClusterShape shape,
        in ClusterState state, DevicePointer status)
    {
        uint shared = (uint)LaunchShapes.FusedClusteringSharedBytes(shape.N, shape.Classes, shape.Dim);
        _fused.Launch(new LaunchConfig(1, LaunchShapes.FusedClusteringThreads, shared), stream, features, labels, pseudo, shape, state, status);
    }

    /// <summary>The five multi-block steps, with scratch <paramref name="work"/> sized for at least <c>shape.N</c> samples.</summary>
    internal void MultiBlock(CudaStream? stream, DevicePointer features, DevicePointer labels, DevicePointer pseudo, in ClusterShape shape,
        in ClusterState state, in ClusterWork work, DevicePointer status)
    {
        const uint threads = LaunchShapes.ReductionThreads;
        _prepare.Launch(new LaunchConfig(1, LaunchShapes.FusedClusteringThreads), stream, labels, shape, work, status);
        _sums.Launch(new LaunchConfig(new Dim3((uint)((shape.Dim + threads - 1) / threads), (uint)shape.Classes), threads), stream, features, shape, work);
        _update.Launch(CudaKernel.ForElements((long)shape.Classes * shape.Dim, Multiprocessors), stream, features, labels, shape, state, work, status);
        _distances.Launch(new LaunchConfig(LaunchShapes.DistanceBlocks(shape.N), threads), stream, features, labels, shape, state, work);
        _assign.Launch(CudaKernel.ForElements(Math.Max(1, shape.N), Multiprocessors), stream, labels, pseudo, shape, state, work);
    }
}
