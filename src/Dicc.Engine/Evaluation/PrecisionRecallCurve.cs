namespace Dicc.Engine.Evaluation;

/// <summary>
/// One class's one-vs-rest precision-recall curve over every distinct score, laid out as scikit-learn's
/// <c>precision_recall_curve</c> returns it: <see cref="Thresholds"/> ascending; <see cref="Precision"/>[k] and
/// <see cref="Recall"/>[k] are those of predicting "positive" for score &gt;= <see cref="Thresholds"/>[k]; both
/// arrays have one more point, (precision 1, recall 0), the empty prediction. Plot Recall (x) against
/// Precision (y) as a step curve.
/// </summary>
/// <param name="ClassName">The positive class's name.</param>
/// <param name="ClassIndex">The positive class's label.</param>
/// <param name="Positives">Samples of this class. With none, recall is undefined: the curve is empty and AP is null.</param>
/// <param name="Precision">Precision per threshold, then 1.</param>
/// <param name="Recall">Recall per threshold (non-increasing), then 0.</param>
/// <param name="Thresholds">The distinct scores, ascending.</param>
/// <param name="AveragePrecision">
/// sum_n (R_n - R_{n-1}) P_n over thresholds in decreasing order, R_0 = 0 (scikit-learn's
/// <c>average_precision_score</c>: no interpolation). Null when the class has no samples.
/// </param>
public sealed record PrecisionRecallCurve(
    string ClassName,
    int ClassIndex,
    long Positives,
    double[] Precision,
    double[] Recall,
    double[] Thresholds,
    double? AveragePrecision)
{
    /// <summary>
    /// The curve of class <paramref name="classIndex"/> from row-major scores [N, classCount] and true labels [N].
    /// Tied scores form one threshold, as they must: no ordering among equal scores is implied.
    /// </summary>
    public static PrecisionRecallCurve Compute(
        ReadOnlySpan<int> labels, ReadOnlySpan<float> scores, int classCount, int classIndex, string className)
    {
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount));
        if ((uint)classIndex >= (uint)classCount) throw new ArgumentOutOfRangeException(nameof(classIndex));
        if (scores.Length != (long)labels.Length * classCount)
            throw new ArgumentException($"{scores.Length} scores for {labels.Length} samples x {classCount} classes.", nameof(scores));
        int n = labels.Length;
        var keys = new double[n];
        var positive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            float s = scores[i * classCount + classIndex];
            if (!float.IsFinite(s))
                throw new ArgumentException($"The score of sample {i} for class {classIndex} is {s}, not a finite number.", nameof(scores));
            keys[i] = s;
            positive[i] = labels[i] == classIndex;
        }
        return FromBinary(keys, positive, className, classIndex);
    }

    /// <summary>The curve from binary truth and scores (higher = more likely positive). Sorts <paramref name="scores"/> in place.</summary>
    internal static PrecisionRecallCurve FromBinary(double[] scores, bool[] positive, string className, int classIndex)
    {
        Array.Sort(scores, positive); // ascending; walked from the end, ties grouped, so stability does not matter
        int n = scores.Length;
        long totalPositives = 0;
        foreach (bool p in positive) if (p) totalPositives++;
        if (totalPositives == 0)
            return new PrecisionRecallCurve(className, classIndex, 0, [], [], [], null);

        // One point per distinct score, in decreasing score order.
        var precisionDesc = new List<double>();
        var recallDesc = new List<double>();
        var thresholdDesc = new List<double>();
        long tp = 0, fp = 0;
        double ap = 0, previousRecall = 0;
        int i = n - 1;
        while (i >= 0)
        {
            double threshold = scores[i];
            while (i >= 0 && scores[i] == threshold)
            {
                if (positive[i]) tp++; else fp++;
                i--;
            }
            double precision = (double)tp / (tp + fp);
            double recall = (double)tp / totalPositives;
            ap += (recall - previousRecall) * precision;
            previousRecall = recall;
            precisionDesc.Add(precision);
            recallDesc.Add(recall);
            thresholdDesc.Add(threshold);
        }

        int t = thresholdDesc.Count;
        var precisionOut = new double[t + 1];
        var recallOut = new double[t + 1];
        var thresholdsOut = new double[t];
        for (int k = 0; k < t; k++)
        {
            precisionOut[k] = precisionDesc[t - 1 - k];
            recallOut[k] = recallDesc[t - 1 - k];
            thresholdsOut[k] = thresholdDesc[t - 1 - k];
        }
        precisionOut[t] = 1;
        recallOut[t] = 0;
        return new PrecisionRecallCurve(className, classIndex, totalPositives, precisionOut, recallOut, thresholdsOut, ap);
    }
}
