using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Clustering;

/// <summary>
/// The dynamic intra-class clustering module (the paper's section 3.1 and Algorithm 1; docs/method.md), host
/// reference implementation: works on host arrays, and on CPU-backend tensors as <see cref="IClustering"/>. Each call to <see cref="Assign(ReadOnlySpan{float}, ReadOnlySpan{int}, Span{int})"/> takes one batch of detached features and
/// true labels, moves every present class's centre by the EMA rule, and gives each sample a pseudo-label
/// <c>offset_c + n_i</c> from its distance to the updated centre.
///
/// State: centres [C, M] (float), a seen flag per class and a step counter; save them with the
/// checkpoint (<see cref="Centers"/>, <see cref="Seen"/>, <see cref="Step"/>, <see cref="Restore"/>).
/// Arithmetic is defined to the bit (docs/method.md, "Precision") so the CUDA kernels can reproduce the
/// pseudo-labels exactly. Scratch is allocated at construction for <c>maxBatchSize</c> samples and only
/// grows, so a training step allocates nothing. Not thread-safe.
/// </summary>
public sealed class IntraClassClustering : IClustering
{
    private readonly float[] _centers;     // [C, M], the EMA centres (state)
    private readonly bool[] _seen;         // [C] (state)
    private readonly double[] _sums;       // [C, M] per-class feature sums of the batch
    private readonly double[] _wideCenters; // [C, M] the updated centres widened to double
    private readonly int[] _classCounts;   // [C] samples per class in the batch
    private readonly int[] _classStart;    // [C + 1] where each class's samples start in _order
    private readonly int[] _cursor;        // [C]
    private readonly double[] _lanes = new double[ClusterMath.Lanes];
    private double[] _distances = [];      // [N] distance of each sample to its class centre
    private int[] _order = [];             // [N] batch positions grouped by class, ascending inside a class
    private UInt128[] _keys = [];          // [N] rank mode's sort keys: distance bits, then batch position
    private int _lastBatch;

    /// <param name="config">Plan, feature width, partition and EMA decay.</param>
    /// <param name="maxBatchSize">Scratch is sized for this many samples up front (it grows if a larger batch comes).</param>
    public IntraClassClustering(ClusteringConfig config, int maxBatchSize = 0)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (maxBatchSize < 0) throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize, "Cannot be negative.");
        Config = config;
        int c = config.ClassCount;
        long cm = checked((long)c * config.FeatureDim);
        _centers = new float[cm];
        _seen = new bool[c];
        _sums = new double[cm];
        _wideCenters = new double[cm];
        _classCounts = new int[c];
        _classStart = new int[c + 1];
        _cursor = new int[c];
        EnsureCapacity(maxBatchSize);
    }

    /// <inheritdoc/>
    public ClusteringConfig Config { get; }

    private SubclassPlan Plan => Config.Plan;
    private int ClassCount => Config.ClassCount;
    private int FeatureDim => Config.FeatureDim;

    /// <summary>Batches clustered so far (state).</summary>
    public long Step { get; private set; }

    /// <summary>The centres [C, M], row-major (state). A row is meaningful only where <see cref="Seen"/> is set.</summary>
    public ReadOnlySpan<float> Centers => _centers;

    /// <summary>Whether each class has a centre yet (state).</summary>
    public ReadOnlySpan<bool> Seen => _seen;

    /// <summary>The last batch's distance of each sample to its class's updated centre (diagnostics, GPU parity).</summary>
    public ReadOnlySpan<double> LastDistances => _distances.AsSpan(0, _lastBatch);

    /// <summary>The last batch's samples per class.</summary>
    public ReadOnlySpan<int> LastClassCounts => _classCounts;

    /// <summary>Grows the scratch to hold <paramref name="batchSize"/> samples (call while planning).</summary>
    public void EnsureCapacity(int batchSize)
    {
        if (batchSize <= _order.Length) return;
        _distances = new double[batchSize];
        _order = new int[batchSize];
        _keys = new UInt128[batchSize];
        _lastBatch = 0;
    }

    /// <summary>Forgets all centres: every class starts again from its next batch mean.</summary>
    public void Reset()
    {
        Array.Clear(_centers);
        Array.Clear(_seen);
        Step = 0;
    }

    /// <summary>
    /// Sets every centre (e.g. <c>dicc cluster --centers</c>); every class then counts as seen, so its next
    /// batch mean is blended in by the EMA rule instead of replacing it.
    /// </summary>
    public void SetCenters(ReadOnlySpan<float> centers)
    {
        RequireCenters(centers);
        centers.CopyTo(_centers);
        _seen.AsSpan().Fill(true);
    }

    /// <summary>Restores the whole state saved from <see cref="Centers"/>, <see cref="Seen"/> and <see cref="Step"/>.</summary>
    public void Restore(ReadOnlySpan<float> centers, ReadOnlySpan<bool> seen, long step)
    {
        RequireCenters(centers);
        if (seen.Length != ClassCount)
            throw new ShapeMismatchException($"{seen.Length} seen flags for {ClassCount} classes.");
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "The step counter cannot be negative.");
        centers.CopyTo(_centers);
        seen.CopyTo(_seen);
        Step = step;
    }

    /// <summary>
    /// One DICC step. Reads features [N, M] (row-major) and true labels [N] in [0, C); writes pseudo-labels
    /// [N] in [0, K) and updates the centres. Labels and features are checked before any state changes: a
    /// label out of range or a non-finite feature throws an <see cref="ArgumentException"/> naming the sample.
    /// </summary>
    public void Assign(ReadOnlySpan<float> features, ReadOnlySpan<int> labels, Span<int> pseudoLabels)
    {
        int n = labels.Length, m = FeatureDim, classes = ClassCount;
        if (features.Length != (long)n * m)
            throw new ShapeMismatchException($"Clustering: {features.Length} feature values for {n} labels of width {m} (expected {(long)n * m}).");
        if (pseudoLabels.Length != n)
            throw new ShapeMismatchException($"Clustering: {pseudoLabels.Length} pseudo-label slots for {n} labels.");
        EnsureCapacity(n);

        // 1. Count the classes (and check the labels).
        Array.Clear(_classCounts);
        for (int i = 0; i < n; i++)
        {
            int c = labels[i];
            if ((uint)c >= (uint)classes)
                throw new ArgumentException($"Label {c} of sample {i} is outside [0, {classes}).", nameof(labels));
            _classCounts[c]++;
        }

        // 2. Per-class sums in double, samples in batch order (the order a CUDA kernel can keep).
        for (int c = 0; c < classes; c++)
            if (_classCounts[c] > 0) _sums.AsSpan(c * m, m).Clear();
        for (int i = 0; i < n; i++)
            ClusterMath.AccumulateRow(features.Slice(i * m, m), _sums.AsSpan(labels[i] * m, m));

        // A sum is finite exactly when its features are (float inputs cannot overflow a double sum), so this
        // finds NaN and infinity before the centres are touched.
        for (int c = 0; c < classes; c++)
            if (_classCounts[c] > 0 && !ClusterMath.AllFinite(_sums.AsSpan(c * m, m)))
                ThrowNonFinite(features, labels, c);

        // 3. EMA: the first batch with class c sets mu_c = y_c; later ones blend; absent classes keep theirs.
        double keep = Config.EmaDecay, blend = 1.0 - Config.EmaDecay;
        for (int c = 0; c < classes; c++)
        {
            if (_classCounts[c] == 0) continue;
            ClusterMath.UpdateCentre(_sums.AsSpan(c * m, m), _classCounts[c], _seen[c], keep, blend,
                _centers.AsSpan(c * m, m), _wideCenters.AsSpan(c * m, m));
            _seen[c] = true;
        }

        // 4. Distances to the updated centres.
        for (int i = 0; i < n; i++)
            _distances[i] = ClusterMath.Distance(features.Slice(i * m, m), _wideCenters.AsSpan(labels[i] * m, m), _lanes);

        // 5. Group batch positions by class (a counting sort keeps batch order inside each class).
        _classStart[0] = 0;
        for (int c = 0; c < classes; c++)
        {
            _classStart[c + 1] = _classStart[c] + _classCounts[c];
            _cursor[c] = _classStart[c];
        }
        for (int i = 0; i < n; i++) _order[_cursor[labels[i]]++] = i;

        // 6. Sub-interval index and pseudo-label.
        for (int c = 0; c < classes; c++)
        {
            int start = _classStart[c], count = _classCounts[c];
            if (count == 0) continue;
            var members = _order.AsSpan(start, count);
            int subclasses = Plan.Count(c), offset = Plan.Offset(c);
            if (Config.Partition == PartitionMode.Interval)
                AssignIntervals(members, subclasses, offset, pseudoLabels);
            else
                AssignRanks(members, _keys.AsSpan(start, count), subclasses, offset, pseudoLabels);
        }

        _lastBatch = n;
        Step++;
    }

    /// <summary>As <see cref="Assign(ReadOnlySpan{float}, ReadOnlySpan{int}, Span{int})"/> on CPU-backend tensors.</summary>
    public void Assign(Tensor features, Tensor labels, Tensor pseudoLabels)
    {
        IClustering.RequireBatch(Config, features, labels, pseudoLabels);
        if (features.Backend is not CpuBackend)
            throw new ArgumentException($"The CPU clustering module works on CPU tensors; these live on '{features.Backend.Name}'.", nameof(features));
        Assign(CpuBackend.Span<float>(features), CpuBackend.Span<int>(labels), CpuBackend.Span<int>(pseudoLabels));
    }

    /// <inheritdoc/>
    public ClusteringState ReadState() => new(_centers.ToArray(), _seen.ToArray(), Step);

    /// <inheritdoc/>
    public void WriteState(ClusteringState state)
    {
        IClustering.RequireState(Config, state);
        Restore(state.Centers, state.Seen, state.Step);
    }

    void IDisposable.Dispose() { } // host arrays only

    private void AssignIntervals(ReadOnlySpan<int> members, int subclasses, int offset, Span<int> pseudoLabels)
    {
        double max = 0;
        foreach (int i in members) max = Math.Max(max, _distances[i]);
        double delta = max / subclasses;
        if (delta == 0)
        {
            foreach (int i in members) pseudoLabels[i] = offset;
            return;
        }
        double last = subclasses - 1;
        foreach (int i in members)
            pseudoLabels[i] = offset + (int)Math.Min(Math.Floor(_distances[i] / delta), last);
    }

    private void AssignRanks(ReadOnlySpan<int> members, Span<UInt128> keys, int subclasses, int offset, Span<int> pseudoLabels)
    {
        // A non-negative double's bits order like its value, so (distance bits, position) as one 128-bit
        // integer sorts by distance with ties by batch position: a total order, so any sort gives these ranks.
        for (int r = 0; r < members.Length; r++)
        {
            int i = members[r];
            ulong distanceBits = BitConverter.DoubleToUInt64Bits(_distances[i] + 0.0); // + 0.0 turns -0 into +0
            keys[r] = new UInt128(distanceBits, (uint)i);
        }
        keys.Sort();
        long count = members.Length;
        for (int r = 0; r < keys.Length; r++)
            pseudoLabels[(int)(uint)keys[r]] = offset + (int)(r * (long)subclasses / count);
    }

    private void RequireCenters(ReadOnlySpan<float> centers)
    {
        if (centers.Length != _centers.Length)
            throw new ShapeMismatchException($"Centres: {centers.Length} values given, expected [{ClassCount}, {FeatureDim}] = {_centers.Length}.");
        for (int k = 0; k < centers.Length; k++)
            if (!float.IsFinite(centers[k]))
                throw new ArgumentException($"Centre of class {k / FeatureDim}, feature {k % FeatureDim} is not finite ({centers[k]}).", nameof(centers));
    }

    private void ThrowNonFinite(ReadOnlySpan<float> features, ReadOnlySpan<int> labels, int classIndex)
    {
        int m = FeatureDim;
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] != classIndex) continue;
            var row = features.Slice(i * m, m);
            for (int j = 0; j < m; j++)
                if (!float.IsFinite(row[j]))
                    throw new ArgumentException($"Feature {j} of sample {i} is {row[j]}; clustering needs finite features.", nameof(features));
        }
        throw new ArgumentException($"The features of class {classIndex} are not finite.", nameof(features));
    }
}
