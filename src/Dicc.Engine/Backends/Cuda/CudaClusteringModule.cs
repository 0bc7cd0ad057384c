using Dicc.Engine.Clustering;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// The CUDA backend's clustering module: <see cref="DeviceClustering"/> on the backend's stream, pool and status
/// record, so a step queues its kernels behind the forward pass that produced the features and a failure is
/// thrown at the backend's next sync point, as the reference's exception.
/// </summary>
internal sealed class CudaClusteringModule : ClusteringModule
{
    private readonly CudaBackend _backend;
    private readonly DeviceClustering _device;

    public CudaClusteringModule(CudaBackend backend, SubclassPlan plan, int featureDim, PartitionMode partition, double emaDecay)
        : base(plan, featureDim, partition, emaDecay)
    {
        _backend = backend;
        _device = new DeviceClustering(backend.Context, backend.ClusteringKernels, backend.Pool, backend.Status, plan, featureDim, partition, emaDecay);
    }

    /// <summary>The device module (for tests and benchmarks).</summary>
    public DeviceClustering Device => _device;

    protected override void AssignCore(Tensor features, Tensor labels, Tensor pseudoLabels, int n)
    {
        RequireBackend(features, labels, pseudoLabels);
        _device.Assign(CudaBackend.Pointer(features), CudaBackend.Pointer(labels), CudaBackend.Pointer(pseudoLabels), n, _backend.Stream);
    }

    public override ClusteringState ReadState() => _device.ReadState(_backend.Stream);

    public override void WriteState(ClusteringState state)
    {
        RequireState(state);
        _device.WriteState(state, _backend.Stream);
    }

    public override void Dispose()
    {
        _device.Dispose();
        base.Dispose();
    }

    private void RequireBackend(params ReadOnlySpan<Tensor> tensors)
    {
        foreach (var t in tensors)
            if (!ReferenceEquals(t.Backend, _backend))
                throw new ArgumentException($"Tensor {t} belongs to backend '{t.Backend.Name}'; this clustering module lives on '{_backend.Name}'.");
    }
}
