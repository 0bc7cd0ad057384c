using Dicc.Engine.Evaluation;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Evaluation;

public class ClassificationMetricsTests
{
    private const double Tolerance = 1e-12;

    /// <summary>Labels and predictions that produce exactly the given confusion matrix (rows = truth).</summary>
    private static (int[] Labels, int[] Predictions) FromMatrix(long[][] matrix)
    {
        var labels = new List<int>();
        var predictions = new List<int>();
        for (int t = 0; t < matrix.Length; t++)
            for (int p = 0; p < matrix.Length; p++)
                for (long k = 0; k < matrix[t][p]; k++)
                {
                    labels.Add(t);
                    predictions.Add(p);
                }
        return (labels.ToArray(), predictions.ToArray());
    }

    [Test]
    public void Metrics_MatchAHandComputedConfusionMatrix()
    {
        // Rows = truth, columns = prediction.
        //            A  B  C    support
        //   A      [ 5, 2, 1 ]   8
        //   B      [ 1, 3, 0 ]   4
        //   C      [ 0, 2, 6 ]   8
        //   predicted 6  7  7    N = 20, correct = 14
        long[][] matrix = [[5, 2, 1], [1, 3, 0], [0, 2, 6]];
        var (labels, predictions) = FromMatrix(matrix);
        var report = EvaluationReport.Compute(["A", "B", "C"], labels, predictions);

        Assert.That(report.ConfusionMatrix, Is.EqualTo(matrix));
        Assert.That(report.SampleCount, Is.EqualTo(20));
        Assert.That(report.Accuracy, Is.EqualTo(14.0 / 20).Within(Tolerance));

        // precision = TP / predicted, recall = TP / support, F1 = 2 TP / (2 TP + FP + FN)
        double[] precision = [5.0 / 6, 3.0 / 7, 6.0 / 7];
        double[] recall = [5.0 / 8, 3.0 / 4, 6.0 / 8];
        double[] f1 = [10.0 / (10 + 1 + 3), 6.0 / (6 + 4 + 1), 12.0 / (12 + 1 + 2)];
        for (int c = 0; c < 3; c++)
        {
            var k = report.Classes[c];
            Assert.That(k.Precision, Is.EqualTo(precision[c]).Within(Tolerance), $"precision of {k.Name}");
            Assert.That(k.Recall, Is.EqualTo(recall[c]).Within(Tolerance), $"recall of {k.Name}");
            Assert.That(k.F1, Is.EqualTo(f1[c]).Within(Tolerance), $"F1 of {k.Name}");
            Assert.That(k.F1, Is.EqualTo(2 * precision[c] * recall[c] / (precision[c] + recall[c])).Within(Tolerance));
        }
        Assert.That(report.Classes.Select(k => k.Support), Is.EqualTo(new long[] { 8, 4, 8 }));
        Assert.That(report.Classes.Select(k => k.Predicted), Is.EqualTo(new long[] { 6, 7, 7 }));

        // balanced accuracy = (0.625 + 0.75 + 0.75) / 3 = 0.708333...
        Assert.That(report.BalancedAccuracy, Is.EqualTo(2.125 / 3).Within(Tolerance));
        // macro-F1 = (0.714286 + 0.545455 + 0.8) / 3 = 0.686580...
        Assert.That(report.MacroF1, Is.EqualTo((10.0 / 14 + 6.0 / 11 + 0.8) / 3).Within(Tolerance));
        Assert.That(report.MacroF1, Is.EqualTo(0.686580).Within(1e-6));
        Assert.That(report.MacroPrecision, Is.EqualTo((5.0 / 6 + 3.0 / 7 + 6.0 / 7) / 3).Within(Tolerance));
        Assert.That(report.MacroRecall, Is.EqualTo(report.BalancedAccuracy).Within(Tolerance), "every class has samples and is predicted");
        Assert.That(report.MeanAveragePrecision, Is.Null, "no scores, no AP");
        Assert.That(report.PrecisionRecallCurves, Is.Null);
        Assert.That(report.ShotGroups, Is.Null);
    }

    [Test]
    public void Metrics_ClassNeverPredicted_ClassAbsentFromTruth_AndClassInNeither()
    {
        // A: 3 right, 1 predicted as C.  B: 2 right.  D: 1 predicted as A, 1 as B.
        // C never occurs in the truth; D is never predicted; E occurs nowhere.
        int[] labels = [0, 0, 0, 0, 1, 1, 3, 3];
        int[] predictions = [0, 0, 0, 2, 1, 1, 0, 1];
        var report = EvaluationReport.Compute(["A", "B", "C", "D", "E"], labels, predictions);

        ClassReport a = report.Classes[0], b = report.Classes[1], c = report.Classes[2], d = report.Classes[3], e = report.Classes[4];
        Assert.That((a.Precision, a.Recall, a.F1), Is.EqualTo((0.75, 0.75, 0.75)));
        Assert.That(b.Precision, Is.EqualTo(2.0 / 3).Within(Tolerance));
        Assert.That(b.Recall, Is.EqualTo(1.0));
        Assert.That(b.F1, Is.EqualTo(0.8).Within(Tolerance)); // 2*2 / (2*2 + 1 + 0)
        // C: predicted once, wrongly: precision 0/1 = 0; recall undefined (no samples) -> 0; F1 0.
        Assert.That((c.Support, c.Predicted, c.Precision, c.Recall, c.F1), Is.EqualTo((0L, 1L, 0.0, 0.0, 0.0)));
        // D: never predicted: precision undefined -> 0; recall 0/2 = 0; F1 0.
        Assert.That((d.Support, d.Predicted, d.Precision, d.Recall, d.F1), Is.EqualTo((2L, 0L, 0.0, 0.0, 0.0)));
        Assert.That((e.Support, e.Predicted, e.Precision, e.Recall, e.F1), Is.EqualTo((0L, 0L, 0.0, 0.0, 0.0)));

        Assert.That(report.Accuracy, Is.EqualTo(5.0 / 8));
        // Macro averages over the classes in truth or predictions: A, B, C, D (E is left out, as scikit-learn does).
        Assert.That(report.MacroPrecision, Is.EqualTo((0.75 + 2.0 / 3 + 0 + 0) / 4).Within(Tolerance));
        Assert.That(report.MacroRecall, Is.EqualTo((0.75 + 1 + 0 + 0) / 4).Within(Tolerance));
        Assert.That(report.MacroF1, Is.EqualTo((0.75 + 0.8 + 0 + 0) / 4).Within(Tolerance));
        // Balanced accuracy over the classes with samples: A, B, D.
        Assert.That(report.BalancedAccuracy, Is.EqualTo((0.75 + 1 + 0) / 3).Within(Tolerance));
    }

    [Test]
    public void Accumulator_InBatches_EqualsOneShotEvaluation()
    {
        var rng = new Dicc.Engine.Randomness.RandomStream(11);
        const int n = 300, c = 4;
        var labels = new int[n];
        var scores = new float[n * c];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextInt(c);
            for (int k = 0; k < c; k++) scores[i * c + k] = (float)Math.Round(rng.NextFloat(), 2); // coarse: many ties
            scores[i * c + labels[i]] += 0.3f;
        }
        var predictions = Enumerable.Range(0, n).Select(i => EvaluationAccumulator.ArgMax(scores.AsSpan(i * c, c))).ToArray();
        string[] names = ["w", "x", "y", "z"];
        var oneShot = EvaluationReport.Compute(names, labels, predictions, scores, trainCounts: [400, 30, 120, 9]);

        var accumulator = new EvaluationAccumulator(names, keepScores: true, expectedSamples: 64); // must grow
        for (int start = 0; start < n; start += 37)
        {
            int len = Math.Min(37, n - start);
            accumulator.AddScores(labels.AsSpan(start, len), scores.AsSpan(start * c, len * c));
        }
        var batched = accumulator.ToReport(trainCounts: [400, 30, 120, 9]);
        Assert.That(batched.ToJson(), Is.EqualTo(oneShot.ToJson()));
        Assert.That(batched.MeanAveragePrecision, Is.Not.Null);
    }

    [Test]
    public void Accumulator_WithoutScores_CountsOnlyAndRefusesMixing()
    {
        var counting = new EvaluationAccumulator(["a", "b"], keepScores: false);
        counting.AddPredictions([0, 1, 1], [0, 0, 1]);
        counting.AddScores([1], [0.2f, 0.8f]); // scores only give the prediction here
        var report = counting.ToReport();
        Assert.That(report.SampleCount, Is.EqualTo(4));
        Assert.That(report.ConfusionMatrix, Is.EqualTo(new long[][] { [1, 0], [1, 2] }));
        Assert.That(report.PrecisionRecallCurves, Is.Null);

        var keeping = new EvaluationAccumulator(["a", "b"], keepScores: true);
        Assert.That(() => keeping.AddPredictions([0], [0]), Throws.InvalidOperationException.With.Message.Contains("with their scores"));
        Assert.That(() => keeping.ToReport(), Throws.InvalidOperationException.With.Message.Contains("no samples"));
    }

    [Test]
    public void Accumulator_Clear_StartsAgain()
    {
        var acc = new EvaluationAccumulator(["a", "b"], keepScores: true, expectedSamples: 4);
        acc.AddScores([0, 1], [0.9f, 0.1f, 0.4f, 0.6f]);
        acc.Clear();
        acc.AddScores([1], [0.7f, 0.3f]);
        var r = acc.ToReport();
        Assert.That(r.SampleCount, Is.EqualTo(1));
        Assert.That(r.Accuracy, Is.EqualTo(0));
        Assert.That(r.PrecisionRecallCurves![1].Thresholds, Is.EqualTo(new[] { (double)0.3f }));
    }

    [Test]
    public void ArgMax_TakesTheFirstOfEqualMaxima()
    {
        Assert.That(EvaluationAccumulator.ArgMax([0.1f, 0.5f, 0.5f, 0.2f]), Is.EqualTo(1));
        Assert.That(EvaluationAccumulator.ArgMax([3f]), Is.EqualTo(0));
    }

    [Test]
    public void BadInput_IsRefusedWithAMessageThatNamesIt()
    {
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0, 2], [0, 1]),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("label at position 1 is 2"));
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0, 1], [0, -1]),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("prediction at position 1 is -1"));
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0, 1], [0]),
            Throws.ArgumentException.With.Message.Contains("2 labels but 1 predictions"));
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0, 1], [0, 1], [0.5f, 0.5f, 0.5f]),
            Throws.ArgumentException.With.Message.Contains("3 scores for a batch of 2 samples x 2 classes"));
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0, 1], [0, 1], [0.5f, 0.5f, float.NaN, 0.5f]),
            Throws.ArgumentException.With.Message.Contains("Score 0 of sample 1 in the batch is NaN, not a finite number"));
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0, 1], [0, 1], [0.5f, float.PositiveInfinity, 0.5f, 0.5f]),
            Throws.ArgumentException.With.Message.Contains("Score 1 of sample 0 in the batch is").And.Message.Contains("not a finite number"));
        Assert.That(() => EvaluationReport.Compute(["a", "b"], [0], [0], trainCounts: [5]),
            Throws.ArgumentException.With.Message.Contains("1 training counts for 2 classes"));
    }

    [Test]
    public void ConfusionMatrix_NormalisesRowsAndRoundTripsThroughItsStoredForm()
    {
        var m = new ConfusionMatrix(3);
        m.Add([0, 0, 0, 0, 1, 1], [0, 0, 0, 2, 1, 0]);
        var normalized = m.ToRowNormalized();
        Assert.That(normalized[0, 0], Is.EqualTo(0.75));
        Assert.That(normalized[0, 2], Is.EqualTo(0.25));
        Assert.That(normalized[1, 0], Is.EqualTo(0.5));
        Assert.That(normalized[2, 2], Is.EqualTo(0), "a class without samples gives a row of zeros");
        Assert.That(m.ToArray()[0, 0], Is.EqualTo(3));
        var again = ConfusionMatrix.FromJagged(m.ToJagged());
        Assert.That(again.ToJagged(), Is.EqualTo(m.ToJagged()));
        Assert.That((again.Total, again.Correct), Is.EqualTo((6L, 4L)));
        Assert.That(() => ConfusionMatrix.FromJagged([[1, 2], [3]]), Throws.ArgumentException.With.Message.Contains("Row 1"));
    }
}

public class EvaluationAccumulatorAllocationTests
{
    [Test]
    public void AddingABatch_WithReservedCapacity_AllocatesNothing()
    {
        const int batch = 128, classes = 7, batches = 4;
        var labels = new int[batch];
        var predictions = new int[batch];
        var scores = new float[batch * classes];
        for (int i = 0; i < batch; i++)
        {
            labels[i] = i % classes;
            predictions[i] = (i * 3) % classes;
            scores[i * classes + i % classes] = 1;
        }
        var withScores = new EvaluationAccumulator(["0", "1", "2", "3", "4", "5", "6"], keepScores: true, expectedSamples: batch * batches);
        var countsOnly = new EvaluationAccumulator(["0", "1", "2", "3", "4", "5", "6"], keepScores: false);
        withScores.AddScores(labels, scores); // warm-up: JIT, first-call paths
        countsOnly.AddPredictions(labels, predictions);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int b = 1; b < batches; b++)
        {
            withScores.Add(labels, predictions, scores);
            countsOnly.AddPredictions(labels, predictions);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.EqualTo(0), "bytes allocated while adding batches");
        Assert.That(withScores.SampleCount, Is.EqualTo(batch * batches));
    }
}
