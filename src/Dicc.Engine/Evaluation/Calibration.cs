namespace Dicc.Engine.Evaluation;

/// <summary>One confidence bin of a <see cref="CalibrationReport"/>: the samples whose confidence lies in (Lower, Upper].</summary>
/// <param name="Lower">The bin's lower edge (excluded; the first bin also holds confidence 0).</param>
/// <param name="Upper">The bin's upper edge (included).</param>
/// <param name="Count">Samples in the bin.</param>
/// <param name="Confidence">Their mean confidence (the highest score); null for an empty bin.</param>
/// <param name="Accuracy">The fraction of them predicted correctly; null for an empty bin.</param>
public sealed record CalibrationBin(double Lower, double Upper, long Count, double? Confidence, double? Accuracy);

/// <summary>
/// Calibration of the scores (docs/evaluation.md, "Calibration"; Guo et al., "On Calibration of Modern Neural Networks",
/// ICML 2017): each sample's confidence is its highest score, its prediction the first class with that score; the
/// samples fall into equal-width confidence bins, and the expected calibration error is
/// <c>ECE = sum_b (n_b / N) |accuracy_b - confidence_b|</c> (the reliability diagram draws the bins).
/// </summary>
/// <param name="ExpectedCalibrationError">ECE, a fraction in [0, 1] (lower is better).</param>
/// <param name="MaximumCalibrationError">The largest <c>|accuracy_b - confidence_b|</c> over non-empty bins.</param>
/// <param name="Bins">The bins, from low to high confidence.</param>
public sealed record CalibrationReport(double ExpectedCalibrationError, double MaximumCalibrationError, CalibrationBin[] Bins)
{
    /// <summary>15 bins, the usual choice since Guo et al.</summary>
    public const int DefaultBins = 15;

    /// <summary>
    /// The calibration of <paramref name="scores"/> (row-major [N, C], probabilities) against <paramref name="labels"/> [N]
    /// over <paramref name="bins"/> equal-width bins of (0, 1]: bin b holds confidences in (b / B, (b + 1) / B].
    /// </summary>
    public static CalibrationReport Compute(ReadOnlySpan<int> labels, ReadOnlySpan<float> scores, int classCount, int bins = DefaultBins)
    {
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "Need at least one class.");
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "Need at least one bin.");
        if (scores.Length != (long)labels.Length * classCount)
            throw new ArgumentException($"{scores.Length} scores for {labels.Length} samples x {classCount} classes.", nameof(scores));
        if (labels.Length == 0) throw new ArgumentException("Calibration needs at least one sample.", nameof(labels));
        var count = new long[bins];
        var confidence = new double[bins];
        var correct = new long[bins];
        for (int i = 0; i < labels.Length; i++)
        {
            var row = scores.Slice(i * classCount, classCount);
            int predicted = EvaluationAccumulator.ArgMax(row);
            double c = row[predicted];
            int b = Bin(c, bins);
            count[b]++;
            confidence[b] += c;
            if (predicted == labels[i]) correct[b]++;
        }
        double ece = 0, mce = 0;
        var result = new CalibrationBin[bins];
        for (int b = 0; b < bins; b++)
        {
            double lower = (double)b / bins, upper = (double)(b + 1) / bins;
            if (count[b] == 0)
            {
                result[b] = new CalibrationBin(lower, upper, 0, null, null);
                continue;
            }
            double meanConfidence = confidence[b] / count[b], accuracy = (double)correct[b] / count[b], gap = Math.Abs(accuracy - meanConfidence);
            ece += (double)count[b] / labels.Length * gap;
            mce = Math.Max(mce, gap);
            result[b] = new CalibrationBin(lower, upper, count[b], meanConfidence, accuracy);
        }
        return new CalibrationReport(ece, mce, result);
    }

    /// <summary>The bin of confidence <paramref name="c"/>: b with b / B &lt; c &lt;= (b + 1) / B, edges compared as doubles; c &lt;= 0 goes to bin 0, c &gt; 1 to the last.</summary>
    internal static int Bin(double c, int bins)
    {
        int b = Math.Clamp((int)Math.Ceiling(c * bins) - 1, 0, bins - 1);
        while (b > 0 && c <= (double)b / bins) b--;
        while (b < bins - 1 && c > (double)(b + 1) / bins) b++;
        return b;
    }
}
