using Dicc.Engine.Evaluation;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Evaluation;

public class PrecisionRecallCurveTests
{
    private const double Tolerance = 1e-12;

    /// <summary>Two-class scores whose class-1 column is <paramref name="positiveScores"/>.</summary>
    private static float[] TwoClassScores(float[] positiveScores) =>
        positiveScores.SelectMany(s => new[] { 1 - s, s }).ToArray();

    [Test]
    public void Curve_WithTiedScores_MatchesTheHandComputedSteps()
    {
        // sample:  0    1    2    3    4    5    6    7
        // score:  0.9  0.8  0.8  0.8  0.6  0.4  0.4  0.2
        // truth:   +    +    -    +    -    +    -    -      (4 positives)
        //
        // threshold  TP FP  precision  recall
        //   0.9       1  0    1          0.25
        //   0.8       3  1    0.75       0.75   <- the three tied samples enter together
        //   0.6       3  2    0.6        0.75
        //   0.4       4  3    4/7        1
        //   0.2       4  4    0.5        1
        // AP = 0.25*1 + 0.5*0.75 + 0*0.6 + 0.25*(4/7) + 0*0.5 = 43/56
        // (had the ties been ordered + + -, AP would be 0.25*1 + 0.5*1 + 0.25*4/7 = 0.892857: ties matter).
        float[] s = [0.9f, 0.8f, 0.8f, 0.8f, 0.6f, 0.4f, 0.4f, 0.2f];
        int[] labels = [1, 1, 0, 1, 0, 1, 0, 0];
        var curve = PrecisionRecallCurve.Compute(labels, TwoClassScores(s), 2, 1, "positive");

        // scikit-learn's layout: thresholds ascending, then the (precision 1, recall 0) end point.
        Assert.That(curve.Thresholds, Is.EqualTo(new double[] { 0.2f, 0.4f, 0.6f, 0.8f, 0.9f }));
        double[] precision = [0.5, 4.0 / 7, 0.6, 0.75, 1, 1];
        double[] recall = [1, 1, 0.75, 0.75, 0.25, 0];
        Assert.That(curve.Precision, Is.EqualTo(precision).Within(Tolerance));
        Assert.That(curve.Recall, Is.EqualTo(recall).Within(Tolerance));
        Assert.That(curve.Positives, Is.EqualTo(4));
        Assert.That(curve.AveragePrecision, Is.EqualTo(43.0 / 56).Within(Tolerance));
    }

    [Test]
    public void MeanAveragePrecision_MatchesScikitLearnsDocumentedExample()
    {
        // average_precision_score's docstring: y_true = [0,0,1,1,2,2] with these scores gives 0.77... (macro).
        // By hand, one-vs-rest:
        //   class 0: 0.7(+) P1 R.5; 0.4 (+,- tied) P2/3 R1            -> AP = .5 + .5*(2/3) = 5/6
        //   class 1: 0.8(+) P1 R.5; 0.4(-) P.5; 0.3 (-,+ tied) P.5 R1 -> AP = .5 + .5*.5   = 3/4
        //   class 2: 0.7(+) P1 R.5; .5(-), .3(-); 0.2(+) P.5 R1        -> AP = .5 + .5*.5   = 3/4
        float[] scores =
        [
            0.7f, 0.2f, 0.1f,
            0.4f, 0.3f, 0.3f,
            0.1f, 0.8f, 0.1f,
            0.2f, 0.3f, 0.5f,
            0.4f, 0.4f, 0.2f,
            0.1f, 0.2f, 0.7f,
        ];
        int[] labels = [0, 0, 1, 1, 2, 2];
        int[] predictions = Enumerable.Range(0, 6).Select(i => EvaluationAccumulator.ArgMax(scores.AsSpan(i * 3, 3))).ToArray();
        var report = EvaluationReport.Compute(["a", "b", "c"], labels, predictions, scores);

        Assert.That(report.Classes.Select(c => c.AveragePrecision!.Value), Is.EqualTo(new[] { 5.0 / 6, 0.75, 0.75 }).Within(Tolerance));
        Assert.That(report.MeanAveragePrecision, Is.EqualTo((5.0 / 6 + 0.75 + 0.75) / 3).Within(Tolerance));
        Assert.That(report.MeanAveragePrecision, Is.EqualTo(0.7778).Within(1e-4));
    }

    [Test]
    public void ClassWithoutSamples_HasNoCurveAndIsLeftOutOfTheMean()
    {
        float[] scores = [0.6f, 0.3f, 0.1f, 0.2f, 0.7f, 0.1f, 0.5f, 0.4f, 0.1f];
        int[] labels = [0, 1, 1]; // class 2 never occurs
        var report = EvaluationReport.Compute(["a", "b", "c"], labels, [0, 1, 0], scores);
        var none = report.PrecisionRecallCurves![2];
        Assert.That(none.Positives, Is.EqualTo(0));
        Assert.That(none.AveragePrecision, Is.Null);
        Assert.That(none.Precision, Is.Empty);
        Assert.That(report.Classes[2].AveragePrecision, Is.Null);
        // class a: 0.6(+) P1 R1 -> AP 1.  class b: 0.7(+) P1 R.5; 0.4(+) P1 R1; -> AP 1.
        Assert.That(report.MeanAveragePrecision, Is.EqualTo(1.0));
    }

    [Test]
    public void AllScoresEqual_GiveOnePointAtThePrevalence()
    {
        var curve = PrecisionRecallCurve.Compute([1, 0, 0, 1, 0], TwoClassScores([0.5f, 0.5f, 0.5f, 0.5f, 0.5f]), 2, 1, "p");
        Assert.That(curve.Thresholds, Has.Length.EqualTo(1));
        Assert.That(curve.Precision, Is.EqualTo(new[] { 0.4, 1 }).Within(Tolerance));
        Assert.That(curve.Recall, Is.EqualTo(new[] { 1.0, 0 }));
        Assert.That(curve.AveragePrecision, Is.EqualTo(0.4).Within(Tolerance));
    }

    [Test]
    public void PerfectRanking_HasAveragePrecisionOne_AndReversedRankingMatchesHand()
    {
        var perfect = PrecisionRecallCurve.Compute([1, 1, 0, 0], TwoClassScores([0.9f, 0.8f, 0.2f, 0.1f]), 2, 1, "p");
        Assert.That(perfect.AveragePrecision, Is.EqualTo(1.0));
        // Worst ranking: negatives first. Positives enter at ranks 3 and 4: AP = .5*(1/3) + .5*(2/4) = 5/12.
        var worst = PrecisionRecallCurve.Compute([1, 1, 0, 0], TwoClassScores([0.2f, 0.1f, 0.9f, 0.8f]), 2, 1, "p");
        Assert.That(worst.AveragePrecision, Is.EqualTo(5.0 / 12).Within(Tolerance));
    }
}
