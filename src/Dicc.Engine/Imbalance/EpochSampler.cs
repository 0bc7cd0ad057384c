using Dicc.Engine.Randomness;

namespace Dicc.Engine.Imbalance;

/// <summary>
/// Produces the order in which a training epoch visits the dataset: <see cref="EpochLength"/> sample
/// indices that a trainer cuts into batches. Epoch e is a pure function of (seed, stream, e): its draws
/// start at word <see cref="EpochStartPosition"/> of the Philox stream, so resuming a run needs only
/// the epoch index (regenerate the epoch and skip the batches already done), and epochs can be
/// generated in any order. Not thread-safe; give each consumer its own sampler.
/// </summary>
public abstract class EpochSampler
{
    /// <summary>Each epoch owns 2^40 words of the stream: far more than N draws ever consume.</summary>
    public const int EpochPositionShift = 40;

    private readonly RandomStream _random;

    /// <summary>A sampler over <paramref name="datasetSize"/> samples drawing from the Philox stream (<paramref name="seed"/>, <paramref name="stream"/>).</summary>
    protected EpochSampler(int datasetSize, ulong seed, ulong stream)
    {
        if (datasetSize < 0) throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "Cannot be negative.");
        DatasetSize = datasetSize;
        _random = new RandomStream(seed, stream);
    }

    /// <summary>N, the number of samples in the dataset.</summary>
    public int DatasetSize { get; }

    /// <summary>Indices per epoch (N for both samplers here).</summary>
    public int EpochLength => DatasetSize;

    /// <summary>The seed of the sampler's random stream.</summary>
    public ulong Seed => _random.Seed;

    /// <summary>The stream number of the sampler's random stream.</summary>
    public ulong Stream => _random.Stream;

    /// <summary>The stream position after the last epoch was generated (for logs; resuming needs only the epoch).</summary>
    public ulong Position => _random.Position;

    /// <summary>The stream word where epoch <paramref name="epoch"/>'s draws begin: <c>epoch * 2^40</c>.</summary>
    public static ulong EpochStartPosition(long epoch) =>
        epoch is >= 0 and < 1L << (64 - EpochPositionShift)
            ? (ulong)epoch << EpochPositionShift
            : throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "Epochs count from 0 and stay below 2^24.");

    /// <summary>Writes epoch <paramref name="epoch"/>'s sample indices into <paramref name="indices"/> (length <see cref="EpochLength"/>).</summary>
    public void FillEpoch(long epoch, Span<int> indices)
    {
        if (indices.Length != EpochLength)
            throw new ArgumentException($"An epoch has {EpochLength} indices; the span holds {indices.Length}.", nameof(indices));
        _random.Position = EpochStartPosition(epoch);
        Fill(_random, indices);
    }

    /// <summary>Epoch <paramref name="epoch"/>'s sample indices in a new array.</summary>
    public int[] Epoch(long epoch)
    {
        var indices = new int[EpochLength];
        FillEpoch(epoch, indices);
        return indices;
    }

    /// <summary>Draws one epoch from <paramref name="random"/>, already positioned at the epoch's start.</summary>
    protected abstract void Fill(RandomStream random, Span<int> indices);
}

/// <summary>The <c>none</c> rule's order: a fresh uniform permutation of the dataset each epoch (Fisher-Yates).</summary>
public sealed class ShuffleSampler(int datasetSize, ulong seed, ulong stream = 0) : EpochSampler(datasetSize, seed, stream)
{
    /// <inheritdoc/>
    protected override void Fill(RandomStream random, Span<int> indices)
    {
        for (int i = 0; i < indices.Length; i++) indices[i] = i;
        random.Shuffle(indices);
    }
}

/// <summary>
/// The <c>resample</c> rule (docs/method.md, "Imbalance baselines"): N draws with replacement, sample i with probability proportional to
/// <c>1 / E(n_{y_i})</c>. Drawn in two exact stages: a class c with probability
/// <c>n_c / E(n_c)</c> (normalised; <see cref="EffectiveNumber.ResampledClassShares"/>), by inverting the
/// cumulative distribution at a 53-bit uniform, then a uniform member of c. Each draw uses three or more
/// stream words.
/// </summary>
public sealed class ClassBalancedSampler : EpochSampler
{
    private readonly int[] _members;     // sample indices grouped by class, ascending inside a class
    private readonly int[] _classStart;  // [C + 1]
    private readonly double[] _cumulative; // [C] cumulative class probabilities, the last present class at exactly 1

    /// <param name="labels">The training set's labels, in [0, classCount).</param>
    /// <param name="classCount">C.</param>
    /// <param name="seed">Run seed.</param>
    /// <param name="stream">Philox stream id of this sampler.</param>
    /// <param name="beta">The effective-number b (0.9999).</param>
    public ClassBalancedSampler(ReadOnlySpan<int> labels, int classCount, ulong seed, ulong stream = 0, double beta = EffectiveNumber.DefaultBeta)
        : base(labels.Length, seed, stream)
    {
        int[] counts = ClassStatistics.Count(labels, classCount);
        ClassCounts = counts;
        ClassShares = labels.Length == 0 ? new double[classCount] : EffectiveNumber.ResampledClassShares(counts, beta);

        _classStart = new int[classCount + 1];
        for (int c = 0; c < classCount; c++) _classStart[c + 1] = _classStart[c] + counts[c];
        _members = new int[labels.Length];
        var cursor = _classStart[..^1];
        for (int i = 0; i < labels.Length; i++) _members[cursor[labels[i]]++] = i;

        _cumulative = new double[classCount];
        double running = 0;
        int lastPresent = -1;
        for (int c = 0; c < classCount; c++)
        {
            running += ClassShares[c];
            _cumulative[c] = running;
            if (counts[c] > 0) lastPresent = c;
        }
        // Rounding must not leave a gap below 1 that no class covers.
        for (int c = Math.Max(0, lastPresent); c < classCount; c++) _cumulative[c] = 1.0;
    }

    /// <summary>Training samples per class.</summary>
    public IReadOnlyList<int> ClassCounts { get; }

    /// <summary>The expected share of each class in an epoch's draws.</summary>
    public IReadOnlyList<double> ClassShares { get; }

    /// <inheritdoc/>
    protected override void Fill(RandomStream random, Span<int> indices)
    {
        for (int k = 0; k < indices.Length; k++)
        {
            double u = random.NextDouble();
            // The first class whose cumulative probability exceeds u (classes without samples never are).
            int lo = 0, hi = _cumulative.Length - 1;
            while (lo < hi)
            {
                int mid = (lo + hi) >> 1;
                if (_cumulative[mid] > u) hi = mid;
                else lo = mid + 1;
            }
            int start = _classStart[lo], size = _classStart[lo + 1] - start;
            indices[k] = _members[start + random.NextInt(size)];
        }
    }
}
