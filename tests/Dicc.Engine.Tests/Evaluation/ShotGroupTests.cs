using Dicc.Engine.Evaluation;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Evaluation;

public class ShotGroupTests
{
    private static readonly string[] Fer = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

    // The paper's FER2013 beta = 10 training counts in label order (docs/data-formats.md, "Long-tailed subsets").
    private static readonly long[] Fer2013Beta10 = [1308, 430, 1744, 4300, 2612, 872, 3488];

    [Test]
    public void RankThirds_OnFer2013Beta10_SplitsTwoThreeTwo()
    {
        // Ranked: happy 4300, neutral 3488 | sad 2612, fear 1744, angry 1308 | surprise 872, disgust 430.
        var g = ShotGroupRule.RankThirds.Assign(Fer2013Beta10);
        Assert.That(g, Is.EqualTo(new[]
        {
            ShotGroup.Medium, ShotGroup.Few, ShotGroup.Medium, ShotGroup.Many, ShotGroup.Medium, ShotGroup.Few, ShotGroup.Many,
        }));
        Assert.That(ShotGroupRule.RankThirds.Describe(7), Does.Contain("many = top 2, few = bottom 2, medium = the other 3 of 7"));
    }

    [Test]
    public void RankThirds_OtherClassCounts_AndTiesByClassIndex()
    {
        Assert.That(ShotGroupRule.RankThirds.Assign([10, 30, 20]), Is.EqualTo(new[] { ShotGroup.Few, ShotGroup.Many, ShotGroup.Medium }));
        Assert.That(ShotGroupRule.RankThirds.Assign([5, 5, 5, 5]),
            Is.EqualTo(new[] { ShotGroup.Many, ShotGroup.Medium, ShotGroup.Medium, ShotGroup.Few }));
        Assert.That(ShotGroupRule.RankThirds.Assign([9, 1]), Is.EqualTo(new[] { ShotGroup.Many, ShotGroup.Few }));
    }

    [Test]
    public void AbsoluteThresholds_PutEveryFer2013Beta10ClassInMany()
    {
        // Why the ImageNet-LT rule is not the default for 7-class FER.
        Assert.That(ShotGroupRule.Absolute().Assign(Fer2013Beta10), Is.All.EqualTo(ShotGroup.Many));
        Assert.That(ShotGroupRule.Absolute(100, 20).Assign([101, 100, 20, 19]),
            Is.EqualTo(new[] { ShotGroup.Many, ShotGroup.Medium, ShotGroup.Medium, ShotGroup.Few }));
    }

    [Test]
    public void RelativeThresholds_UseFractionsOfTheLargestClass()
    {
        // n_max = 4300: many >= 2150, few < 430 (disgust, exactly 430, is medium).
        var g = ShotGroupRule.RelativeToLargest(0.5, 0.1).Assign(Fer2013Beta10);
        Assert.That(g, Is.EqualTo(new[]
        {
            ShotGroup.Medium, ShotGroup.Medium, ShotGroup.Medium, ShotGroup.Many, ShotGroup.Many, ShotGroup.Medium, ShotGroup.Many,
        }));
    }

    [Test]
    public void Parse_AcceptsTheThreeRulesAndNamesBadText()
    {
        Assert.That(ShotGroupRule.Parse("rank"), Is.SameAs(ShotGroupRule.RankThirds));
        Assert.That(ShotGroupRule.Parse("absolute:50:10").Assign([51, 50, 9]),
            Is.EqualTo(new[] { ShotGroup.Many, ShotGroup.Medium, ShotGroup.Few }));
        Assert.That(ShotGroupRule.Parse("relative:0.5:0.1").Describe(7), Does.Contain("many >= 0.5 n_max"));
        Assert.That(() => ShotGroupRule.Parse("median"), Throws.InstanceOf<FormatException>().With.Message.Contains("'median'"));
        Assert.That(() => ShotGroupRule.Parse("absolute:x:10"), Throws.InstanceOf<FormatException>().With.Message.Contains("'x'"));
        Assert.That(() => ShotGroupRule.Parse("relative:2:0.1"), Throws.InstanceOf<FormatException>().With.Message.Contains("fraction"));
    }

    [Test]
    public void Report_GroupAccuracy_IsTheMeanRecallOfTheGroupsClasses()
    {
        // Three classes, ranks: b (many), c (medium), a (few).
        // a: 1 of 2 right; b: 3 of 4 right; c: 0 of 0 samples (predicted once).
        int[] labels = [0, 0, 1, 1, 1, 1];
        int[] predictions = [0, 1, 1, 1, 1, 2];
        var report = EvaluationReport.Compute(["a", "b", "c"], labels, predictions, trainCounts: [5, 50, 20]);

        var groups = report.ShotGroups!.Groups.ToDictionary(g => g.Group);
        Assert.That(groups[ShotGroup.Many].Classes, Is.EqualTo(new[] { "b" }));
        Assert.That(groups[ShotGroup.Many].Accuracy, Is.EqualTo(0.75));
        Assert.That(groups[ShotGroup.Few].Classes, Is.EqualTo(new[] { "a" }));
        Assert.That(groups[ShotGroup.Few].Accuracy, Is.EqualTo(0.5));
        Assert.That(groups[ShotGroup.Medium].TestSamples, Is.EqualTo(0));
        Assert.That(groups[ShotGroup.Medium].Accuracy, Is.Null, "no test samples: undefined, not 0");
        Assert.That(report.Classes.Select(c => c.Group), Is.EqualTo(new ShotGroup?[] { ShotGroup.Few, ShotGroup.Many, ShotGroup.Medium }));
        Assert.That(report.Classes.Select(c => c.TrainCount), Is.EqualTo(new long?[] { 5, 50, 20 }));
    }

    [Test]
    public void Report_GroupAccuracy_DiffersFromSampleAccuracyOnAnImbalancedTestSet()
    {
        // Rank thirds of 7 classes by these counts: many = {0, 1}.
        // Class 0: 90 of 100 right; class 1: 1 of 10 right.
        var labels = new List<int>();
        var predictions = new List<int>();
        for (int i = 0; i < 100; i++) { labels.Add(0); predictions.Add(i < 90 ? 0 : 1); }
        for (int i = 0; i < 10; i++) { labels.Add(1); predictions.Add(i < 1 ? 1 : 0); }
        var report = EvaluationReport.Compute(Fer, labels.ToArray(), predictions.ToArray(),
            trainCounts: [700, 600, 500, 400, 300, 200, 100]);
        var many = report.ShotGroups!.Groups.Single(g => g.Group == ShotGroup.Many);
        Assert.That(many.Accuracy, Is.EqualTo((0.9 + 0.1) / 2).Within(1e-12), "mean of class recalls");
        Assert.That(many.SampleAccuracy, Is.EqualTo(91.0 / 110).Within(1e-12), "pooled over samples");
        Assert.That(report.ShotGroups.Rule, Does.StartWith("rank by training count"));
    }
}
