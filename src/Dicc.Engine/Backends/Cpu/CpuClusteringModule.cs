using Dicc.Engine.Clustering;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>The CPU backend's clustering module: the reference algorithm working in place on host tensors.</summary>
internal sealed class CpuClusteringModule(SubclassPlan plan, int featureDim, PartitionMode partition, double emaDecay)
    : ClusteringModule(plan, featureDim, partition, emaDecay)
{
    private readonly IntraClassClustering _reference = new(plan, featureDim, partition, emaDecay);

    protected override void AssignCore(Tensor features, Tensor labels, Tensor pseudoLabels, int n) =>
        _reference.Assign(CpuBackend.Span<float>(features), CpuBackend.Span<int>(labels), CpuBackend.Span<int>(pseudoLabels));

    public override ClusteringState ReadState() =>
        new(_reference.Centers.ToArray(), _reference.Seen.ToArray(), _reference.Step);

    public override void WriteState(ClusteringState state)
    {
        RequireState(state);
        _reference.Restore(state.Centers, state.Seen, state.Step);
    }
}
