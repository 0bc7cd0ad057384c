using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Clustering;

/// <summary>A host copy of a clustering module's state (for checkpoints and tests).</summary>
public sealed record ClusteringState(float[] Centers, bool[] Seen, long Step);

/// <summary>
/// The DICC clustering step as one op: its state (EMA centres, seen flags, step count) lives where the features
/// do, and <see cref="Assign"/> turns a batch of detached features and true labels into pseudo-labels without a
/// host round trip. Two implementations: <see cref="IntraClassClustering"/> (the CPU reference) and
/// <see cref="DeviceClustering"/> (CUDA), whose results equal the reference's bit for bit (docs/method.md,
/// "Precision"). <see cref="Create"/> picks the one for a backend.
/// </summary>
public interface IClustering : IDisposable
{
    /// <summary>The plan, feature width, partition and EMA decay the module was created with.</summary>
    ClusteringConfig Config { get; }

    /// <summary>
    /// One step: features [N, M] (float32), labels [N] (int32, in [0, C)) -> pseudo-labels [N] (int32, in [0, K));
    /// updates the centres. The tensors belong to the module's backend. Bad labels or non-finite features throw an
    /// <see cref="ArgumentException"/> naming the sample (on a GPU: at the backend's next sync point) and change nothing.
    /// </summary>
    void Assign(Tensor features, Tensor labels, Tensor pseudoLabels);

    /// <summary>Copies the state to the host (a sync point on a GPU).</summary>
    ClusteringState ReadState();

    /// <summary>Replaces the state (from a checkpoint, or given centres with every class seen).</summary>
    void WriteState(ClusteringState state);

    /// <summary>The clustering module for <paramref name="backend"/>, with scratch for batches of <paramref name="maxBatchSize"/>.</summary>
    static IClustering Create(Backend backend, ClusteringConfig config, int maxBatchSize = 0) => backend switch
    {
        CpuBackend => new IntraClassClustering(config, maxBatchSize),
        CudaBackend cuda => new DeviceClustering(cuda, config, maxBatchSize),
        _ => throw new NotSupportedException($"No clustering module for backend '{backend.Name}'."),
    };

    /// <summary>The shape checks every implementation makes; returns N.</summary>
    internal static int RequireBatch(ClusteringConfig config, Tensor features, Tensor labels, Tensor pseudoLabels)
    {
        labels.RequireDType(DType.Int32);
        pseudoLabels.RequireDType(DType.Int32);
        features.RequireDType(DType.Float32);
        int n = checked((int)labels.ElementCount);
        if (features.Shape.Rank != 2 || features.Shape[0] != n || features.Shape[1] != config.FeatureDim)
            throw new ShapeMismatchException($"Clustering: features {features.Shape} for {n} labels of width {config.FeatureDim}.");
        if (pseudoLabels.ElementCount != n)
            throw new ShapeMismatchException($"Clustering: {pseudoLabels.ElementCount} pseudo-label slots for {n} labels.");
        if (!ReferenceEquals(features.Backend, labels.Backend) || !ReferenceEquals(features.Backend, pseudoLabels.Backend))
            throw new ArgumentException("Clustering: features, labels and pseudo-labels must live on one backend.");
        return n;
    }

    /// <summary>The shape check of a state to write.</summary>
    internal static void RequireState(ClusteringConfig config, ClusteringState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        int c = config.ClassCount;
        if (state.Centers.Length != (long)c * config.FeatureDim || state.Seen.Length != c || state.Step < 0)
            throw new ShapeMismatchException(
                $"Clustering state with {state.Centers.Length} centre values and {state.Seen.Length} flags does not fit {c} classes x {config.FeatureDim}.");
        for (int k = 0; k < state.Centers.Length; k++)
            if (!float.IsFinite(state.Centers[k]))
                throw new ArgumentException($"Centre of class {k / config.FeatureDim}, feature {k % config.FeatureDim} is not finite ({state.Centers[k]}).", nameof(state));
    }
}
