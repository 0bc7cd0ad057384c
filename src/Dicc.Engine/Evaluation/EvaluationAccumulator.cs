namespace Dicc.Engine.Evaluation;

/// <summary>
/// Collects an evaluation batch by batch, so a trainer hands over each batch's labels and outputs and keeps
/// nothing itself. Predictions go straight into a <see cref="ConfusionMatrix"/>; labels and scores are kept
/// only when <c>keepScores</c> is set (PR curves need every score). Given the sample count up front, adding
/// never allocates.
/// </summary>
public sealed class EvaluationAccumulator
{
    private readonly string[] _classNames;
    private int[] _labels;
    private float[] _scores;

    /// <param name="classNames">Class names in label order.</param>
    /// <param name="keepScores">Keep labels and scores for PR curves and AP (N x C floats).</param>
    /// <param name="expectedSamples">Capacity to reserve (e.g. the evaluation set's size); it grows if exceeded.</param>
    public EvaluationAccumulator(IReadOnlyList<string> classNames, bool keepScores = true, int expectedSamples = 0)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count < 1) throw new ArgumentException("Need at least one class name.", nameof(classNames));
        if (expectedSamples < 0) throw new ArgumentOutOfRangeException(nameof(expectedSamples));
        _classNames = classNames.ToArray();
        KeepsScores = keepScores;
        Confusion = new ConfusionMatrix(_classNames.Length);
        _labels = keepScores ? new int[expectedSamples] : [];
        _scores = keepScores ? new float[(long)expectedSamples * ClassCount] : [];
    }

    /// <summary>The number of classes.</summary>
    public int ClassCount => _classNames.Length;
    /// <summary>Whether every sample's scores are kept (for PR curves).</summary>
    public bool KeepsScores { get; }
    /// <summary>The confusion matrix so far.</summary>
    public ConfusionMatrix Confusion { get; }
    /// <summary>Samples added so far.</summary>
    public long SampleCount => Confusion.Total;

    /// <summary>Adds a batch of labels and predicted classes. Not allowed when scores are kept (curves would miss them).</summary>
    public void AddPredictions(ReadOnlySpan<int> labels, ReadOnlySpan<int> predictions)
    {
        if (KeepsScores)
            throw new InvalidOperationException("This accumulator keeps scores for PR curves: add batches with their scores.");
        Confusion.Add(labels, predictions);
    }

    /// <summary>Adds a batch of labels and scores [batch, C]; the prediction is the first class of highest score.</summary>
    public void AddScores(ReadOnlySpan<int> labels, ReadOnlySpan<float> scores)
    {
        CheckScores(labels, scores);
        for (int i = 0; i < labels.Length; i++) RequireLabel(labels[i], i); // all checked before anything is counted
        for (int i = 0; i < labels.Length; i++)
            Confusion.Add(labels[i], ArgMax(scores.Slice(i * ClassCount, ClassCount)));
        Keep(labels, scores);
    }

    /// <summary>Adds a batch with its own predictions (e.g. averaged over ten crops) and the scores for the curves.</summary>
    public void Add(ReadOnlySpan<int> labels, ReadOnlySpan<int> predictions, ReadOnlySpan<float> scores)
    {
        CheckScores(labels, scores);
        Confusion.Add(labels, predictions);
        Keep(labels, scores);
    }

    /// <summary>Forgets everything added, keeping the reserved capacity.</summary>
    public void Clear() => Confusion.Clear();

    /// <summary>Index of the first maximum (numpy's argmax convention).</summary>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        int best = 0;
        for (int c = 1; c < scores.Length; c++) if (scores[c] > scores[best]) best = c;
        return best;
    }

    /// <summary>The report over everything added so far.</summary>
    /// <param name="trainCounts">Training samples per class, for the shot groups; optional.</param>
    /// <param name="shotRule">How to form the groups; <see cref="ShotGroupRule.RankThirds"/> by default.</param>
    public EvaluationReport ToReport(IReadOnlyList<long>? trainCounts = null, ShotGroupRule? shotRule = null)
    {
        var m = Confusion;
        int c = ClassCount;
        if (m.Total == 0) throw new InvalidOperationException("Nothing to evaluate: no samples were added.");
        if (trainCounts is not null && trainCounts.Count != c)
            throw new ArgumentException($"{trainCounts.Count} training counts for {c} classes.", nameof(trainCounts));

        PrecisionRecallCurve[]? curves = null;
        if (KeepsScores)
        {
            int n = (int)m.Total;
            curves = new PrecisionRecallCurve[c];
            for (int k = 0; k < c; k++)
                curves[k] = PrecisionRecallCurve.Compute(_labels.AsSpan(0, n), _scores.AsSpan(0, n * c), c, k, _classNames[k]);
        }

        ShotGroup[]? groups = trainCounts is null ? null : (shotRule ?? ShotGroupRule.RankThirds).Assign(trainCounts);
        var classes = new ClassReport[c];
        double macroP = 0, macroR = 0, macroF = 0, recallSum = 0;
        int macroClasses = 0, supportedClasses = 0;
        for (int k = 0; k < c; k++)
        {
            long tp = m.TruePositives(k), support = m.Support(k), predicted = m.PredictedCount(k);
            double precision = predicted > 0 ? (double)tp / predicted : 0;
            double recall = support > 0 ? (double)tp / support : 0;
            long f1Denominator = support + predicted; // 2 TP + FP + FN
            double f1 = f1Denominator > 0 ? 2.0 * tp / f1Denominator : 0;
            classes[k] = new ClassReport(_classNames[k], support, predicted, tp, precision, recall, f1,
                curves?[k].AveragePrecision, trainCounts?[k], groups?[k]);
            if (support > 0 || predicted > 0)
            {
                macroP += precision;
                macroR += recall;
                macroF += f1;
                macroClasses++;
            }
            if (support > 0)
            {
                recallSum += recall;
                supportedClasses++;
            }
        }

        double? meanAp = null;
        if (curves is not null)
        {
            var aps = curves.Where(x => x.AveragePrecision.HasValue).Select(x => x.AveragePrecision!.Value).ToArray();
            meanAp = aps.Length > 0 ? aps.Average() : null;
        }

        ShotGroupReport? shots = null;
        if (groups is not null)
        {
            var results = new List<ShotGroupResult>();
            foreach (ShotGroup g in Enum.GetValues<ShotGroup>())
            {
                var members = Enumerable.Range(0, c).Where(k => groups[k] == g).ToArray();
                long samples = members.Sum(k => classes[k].Support);
                long correct = members.Sum(k => classes[k].TruePositives);
                var withSupport = members.Where(k => classes[k].Support > 0).ToArray();
                results.Add(new ShotGroupResult(g, members.Select(k => _classNames[k]).ToArray(), samples,
                    withSupport.Length > 0 ? withSupport.Average(k => classes[k].Recall) : null,
                    samples > 0 ? (double)correct / samples : null));
            }
            shots = new ShotGroupReport((shotRule ?? ShotGroupRule.RankThirds).Describe(c), results.ToArray());
        }

        return new EvaluationReport(
            (string[])_classNames.Clone(),
            m.Total,
            (double)m.Correct / m.Total,
            recallSum / supportedClasses,
            macroP / macroClasses,
            macroR / macroClasses,
            macroF / macroClasses,
            meanAp,
            classes,
            m.ToJagged(),
            curves,
            shots,
            KeepsScores ? CalibrationReport.Compute(_labels.AsSpan(0, (int)m.Total), _scores.AsSpan(0, (int)m.Total * c), c) : null);
    }

    private void CheckScores(ReadOnlySpan<int> labels, ReadOnlySpan<float> scores)
    {
        if (scores.Length != (long)labels.Length * ClassCount)
            throw new ArgumentException(
                $"{scores.Length} scores for a batch of {labels.Length} samples x {ClassCount} classes (expected {(long)labels.Length * ClassCount}).",
                nameof(scores));
        for (int i = 0; i < scores.Length; i++)
            if (!float.IsFinite(scores[i]))
                throw new ArgumentException($"Score {i % ClassCount} of sample {i / ClassCount} in the batch is {scores[i]}, not a finite number.", nameof(scores));
    }

    private void RequireLabel(int label, int position)
    {
        if ((uint)label >= (uint)ClassCount)
            throw new ArgumentOutOfRangeException("labels", label,
                $"The label at position {position} is {label}, outside the class range [0, {ClassCount}).");
    }

    private void Keep(ReadOnlySpan<int> labels, ReadOnlySpan<float> scores)
    {
        if (!KeepsScores) return;
        // Confusion.Total already includes this batch.
        int start = (int)(Confusion.Total - labels.Length);
        int needed = start + labels.Length;
        if (needed > _labels.Length)
        {
            int capacity = Math.Max(needed, Math.Max(16, _labels.Length * 2));
            Array.Resize(ref _labels, capacity);
            Array.Resize(ref _scores, capacity * ClassCount);
        }
        labels.CopyTo(_labels.AsSpan(start));
        scores.CopyTo(_scores.AsSpan(start * ClassCount));
    }
}
