using Dicc.Engine.Evaluation;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Evaluation;

/// <summary>Expected calibration error and its bins (docs/evaluation.md, "Calibration"), against values computed by hand.</summary>
public class CalibrationTests
{
    // Scores that are exact in float (dyadic), so each confidence's bin is certain.
    private static readonly float[] Scores = [0.875f, 0.125f, 0.03125f, 0.96875f, 0.375f, 0.625f, 0.625f, 0.375f, 0.5625f, 0.4375f];
    private static readonly int[] Labels = [0, 0, 1, 1, 0];

    [Test]
    public void Ece_ByHand()
    {
        // confidence, correct, bin (of 15, (b/15, (b+1)/15]):
        //   0.875 yes 13 | 0.96875 no 14 | 0.625 yes 9 | 0.625 no 9 | 0.5625 yes 8
        // gaps |acc - conf|: bin 13: 0.125 (n 1), bin 14: 0.96875 (n 1), bin 9: |0.5 - 0.625| = 0.125 (n 2), bin 8: 0.4375 (n 1)
        // ECE = (0.125 + 0.96875 + 2 * 0.125 + 0.4375) / 5 = 0.35625; MCE = 0.96875.
        var c = CalibrationReport.Compute(Labels, Scores, 2);
        Assert.That(c.ExpectedCalibrationError, Is.EqualTo(0.35625).Within(1e-12));
        Assert.That(c.MaximumCalibrationError, Is.EqualTo(0.96875).Within(1e-12));
        Assert.That(c.Bins, Has.Length.EqualTo(15));
        Assert.That(c.Bins.Select(b => b.Count), Is.EqualTo(new long[] { 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1 }));
        Assert.That(c.Bins[9].Confidence, Is.EqualTo(0.625).Within(1e-12));
        Assert.That(c.Bins[9].Accuracy, Is.EqualTo(0.5));
        Assert.That(c.Bins[0].Confidence, Is.Null, "an empty bin has no mean");
        Assert.That((c.Bins[9].Lower, c.Bins[9].Upper), Is.EqualTo((9.0 / 15, 10.0 / 15)));
    }

    [Test]
    public void PerfectlyCalibratedScores_HaveNoError()
    {
        // Four samples at confidence 0.75, three of them right.
        float[] scores = [0.75f, 0.25f, 0.75f, 0.25f, 0.75f, 0.25f, 0.75f, 0.25f];
        Assert.That(CalibrationReport.Compute([0, 0, 0, 1], scores, 2).ExpectedCalibrationError, Is.EqualTo(0).Within(1e-12));
    }

    [Test]
    public void BinEdges_BelongToTheLowerBin()
    {
        Assert.That(CalibrationReport.Bin(0.2, 15), Is.EqualTo(2), "0.2 = 3/15 closes bin 2");
        Assert.That(CalibrationReport.Bin(0.2000001, 15), Is.EqualTo(3));
        Assert.That(CalibrationReport.Bin(1.0, 15), Is.EqualTo(14));
        Assert.That(CalibrationReport.Bin(0.0, 15), Is.EqualTo(0));
        Assert.That(CalibrationReport.Bin(1.0 / 15, 15), Is.EqualTo(0));
    }

    [Test]
    public void Reports_CarryTheCalibrationWhenTheyHaveScores()
    {
        string[] names = ["a", "b"];
        var withScores = EvaluationReport.Compute(names, Labels, [0, 1, 1, 0, 0], Scores);
        Assert.That(withScores.Calibration!.ExpectedCalibrationError, Is.EqualTo(0.35625).Within(1e-12));
        var again = EvaluationReport.FromJson(withScores.ToJson());
        Assert.That(again.Calibration!.ExpectedCalibrationError, Is.EqualTo(0.35625).Within(1e-12), "report.json keeps it");
        Assert.That(again.Calibration.Bins[9].Count, Is.EqualTo(2));
        Assert.That(EvaluationReport.Compute(names, Labels, [0, 1, 1, 0, 0]).Calibration, Is.Null, "no scores, no calibration");
    }
}
