using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Clustering;

/// <summary>A host copy of a clustering module's state (for checkpoints and tests).</summary>
public sealed record ClusteringState(float[] Centers, bool[] Seen, long Step);

/// <summary>
/// The DICC clustering module on a backend: state (EMA centres, seen flags, step) lives where the features
/// do, and <see cref="Assign"/> turns a batch of features and true labels into pseudo-labels without a host
/// round trip. Every backend's result equals <see cref="IntraClassClustering"/> (the reference): pseudo-labels
/// exactly, centres to the bit where the arithmetic allows (docs/method.md). Create it with
/// <see cref="Backend.CreateClustering"/>.
/// </summary>
public abstract class ClusteringModule : IDisposable
{
    protected ClusteringModule(SubclassPlan plan, int featureDim, PartitionMode partition, double emaDecay)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (featureDim < 1) throw new ArgumentOutOfRangeException(nameof(featureDim), featureDim, "The feature width must be at least 1.");
        if (!(emaDecay >= 0 && emaDecay <= 1)) throw new ArgumentOutOfRangeException(nameof(emaDecay), emaDecay, "The EMA decay must lie in [0, 1].");
        Plan = plan;
        FeatureDim = featureDim;
        Partition = partition;
        EmaDecay = emaDecay;
    }

    public SubclassPlan Plan { get; }
    public int FeatureDim { get; }
    public PartitionMode Partition { get; }
    public double EmaDecay { get; }
    public int ClassCount => Plan.ClassCount;
    public int SubclassCount => Plan.TotalSubclasses;

    /// <summary>
    /// One DICC step: features [N, M] (float32), labels [N] (int32, in [0, C)) -> pseudo-labels [N] (int32, in
    /// [0, K)); updates the centres. All three tensors belong to the module's backend.
    /// </summary>
    public void Assign(Tensor features, Tensor labels, Tensor pseudoLabels)
    {
        labels.RequireDType(DType.Int32);
        pseudoLabels.RequireDType(DType.Int32);
        features.RequireDType(DType.Float32);
        int n = checked((int)labels.ElementCount);
        if (features.Shape.Rank != 2 || features.Shape[0] != n || features.Shape[1] != FeatureDim)
            throw new ShapeMismatchException($"Clustering: features {features.Shape} for {n} labels of width {FeatureDim}.");
        if (pseudoLabels.ElementCount != n)
            throw new ShapeMismatchException($"Clustering: {pseudoLabels.ElementCount} pseudo-label slots for {n} labels.");
        AssignCore(features, labels, pseudoLabels, n);
    }

    protected abstract void AssignCore(Tensor features, Tensor labels, Tensor pseudoLabels, int n);

    /// <summary>Copies the state to the host (a sync point).</summary>
    public abstract ClusteringState ReadState();

    /// <summary>Replaces the state (from a checkpoint, or given centres with every class seen).</summary>
    public abstract void WriteState(ClusteringState state);

    public virtual void Dispose() => GC.SuppressFinalize(this);

    protected void RequireState(ClusteringState s)
    {
        if (s.Centers.Length != (long)ClassCount * FeatureDim || s.Seen.Length != ClassCount || s.Step < 0)
            throw new ShapeMismatchException(
                $"Clustering state with {s.Centers.Length} centre values and {s.Seen.Length} flags does not fit {ClassCount} classes x {FeatureDim}.");
    }
}
