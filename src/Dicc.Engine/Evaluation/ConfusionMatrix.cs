namespace Dicc.Engine.Evaluation;

/// <summary>
/// Counts of (true class, predicted class) pairs: rows are true classes, columns predicted classes.
/// Adding is allocation-free, so a trainer can feed it every batch.
/// </summary>
public sealed class ConfusionMatrix
{
    private readonly long[] _counts;

    /// <summary>An empty matrix for <paramref name="classCount"/> classes.</summary>
    public ConfusionMatrix(int classCount)
    {
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "Need at least one class.");
        ClassCount = classCount;
        _counts = new long[classCount * classCount];
    }

    /// <summary>The number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>Number of samples of class <paramref name="truth"/> predicted as <paramref name="predicted"/>.</summary>
    public long this[int truth, int predicted] => _counts[Index(truth, predicted)];

    /// <summary>Samples counted.</summary>
    public long Total { get; private set; }

    /// <summary>Samples on the diagonal.</summary>
    public long Correct
    {
        get
        {
            long c = 0;
            for (int i = 0; i < ClassCount; i++) c += _counts[i * ClassCount + i];
            return c;
        }
    }

    /// <summary>Counts one sample.</summary>
    public void Add(int truth, int predicted)
    {
        _counts[Index(truth, predicted)]++;
        Total++;
    }

    /// <summary>Adds a batch; labels and predictions must be in [0, <see cref="ClassCount"/>).</summary>
    public void Add(ReadOnlySpan<int> truths, ReadOnlySpan<int> predictions)
    {
        if (truths.Length != predictions.Length)
            throw new ArgumentException($"{truths.Length} labels but {predictions.Length} predictions.", nameof(predictions));
        for (int i = 0; i < truths.Length; i++)
        {
            RequireClass(truths[i], i, "label");
            RequireClass(predictions[i], i, "prediction");
        }
        for (int i = 0; i < truths.Length; i++) _counts[truths[i] * ClassCount + predictions[i]]++;
        Total += truths.Length;
    }

    /// <summary>Row sum: samples whose true class is <paramref name="c"/>.</summary>
    public long Support(int c)
    {
        long s = 0;
        for (int p = 0; p < ClassCount; p++) s += _counts[Index(c, p)];
        return s;
    }

    /// <summary>Column sum: samples predicted as <paramref name="c"/>.</summary>
    public long PredictedCount(int c)
    {
        long s = 0;
        for (int t = 0; t < ClassCount; t++) s += _counts[Index(t, c)];
        return s;
    }

    /// <summary>Samples of class <paramref name="c"/> predicted as <paramref name="c"/>.</summary>
    public long TruePositives(int c) => _counts[Index(c, c)];

    /// <summary>Resets every count to zero.</summary>
    public void Clear()
    {
        Array.Clear(_counts);
        Total = 0;
    }

    /// <summary>Counts as a jagged array (rows = true classes), the form report.json stores.</summary>
    public long[][] ToJagged()
    {
        var rows = new long[ClassCount][];
        for (int t = 0; t < ClassCount; t++) rows[t] = _counts.AsSpan(t * ClassCount, ClassCount).ToArray();
        return rows;
    }

    /// <summary>Counts as a [true, predicted] grid of doubles, ready for a heatmap.</summary>
    public double[,] ToArray()
    {
        var grid = new double[ClassCount, ClassCount];
        for (int t = 0; t < ClassCount; t++)
            for (int p = 0; p < ClassCount; p++) grid[t, p] = _counts[t * ClassCount + p];
        return grid;
    }

    /// <summary>Each row divided by its support (a row of zeros where a class has no samples): per-class recall on the diagonal.</summary>
    public double[,] ToRowNormalized()
    {
        var grid = new double[ClassCount, ClassCount];
        for (int t = 0; t < ClassCount; t++)
        {
            long support = Support(t);
            if (support == 0) continue;
            for (int p = 0; p < ClassCount; p++) grid[t, p] = (double)_counts[t * ClassCount + p] / support;
        }
        return grid;
    }

    /// <summary>Rebuilds a matrix from stored rows (e.g. from report.json).</summary>
    public static ConfusionMatrix FromJagged(long[][] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var m = new ConfusionMatrix(rows.Length);
        for (int t = 0; t < rows.Length; t++)
        {
            if (rows[t] is null || rows[t].Length != rows.Length)
                throw new ArgumentException($"Row {t} of the confusion matrix has {rows[t]?.Length ?? 0} entries; expected {rows.Length}.", nameof(rows));
            for (int p = 0; p < rows.Length; p++)
            {
                if (rows[t][p] < 0) throw new ArgumentException($"Confusion count [{t}, {p}] is negative ({rows[t][p]}).", nameof(rows));
                m._counts[t * rows.Length + p] = rows[t][p];
                m.Total += rows[t][p];
            }
        }
        return m;
    }

    private int Index(int truth, int predicted)
    {
        if ((uint)truth >= (uint)ClassCount)
            throw new ArgumentOutOfRangeException(nameof(truth), truth, $"Class index outside [0, {ClassCount}).");
        if ((uint)predicted >= (uint)ClassCount)
            throw new ArgumentOutOfRangeException(nameof(predicted), predicted, $"Class index outside [0, {ClassCount}).");
        return truth * ClassCount + predicted;
    }

    private void RequireClass(int value, int position, string what)
    {
        if ((uint)value >= (uint)ClassCount)
            throw new ArgumentOutOfRangeException(what + "s", value,
                $"The {what} at position {position} is {value}, outside the class range [0, {ClassCount}).");
    }
}
