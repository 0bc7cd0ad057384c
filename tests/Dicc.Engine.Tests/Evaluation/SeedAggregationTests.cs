using Dicc.Engine.Evaluation;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Evaluation;

public class SeedAggregationTests
{
    private static RunResult Run(string dataset, double? beta, string rule, string method, long seed, double accuracy) =>
        new(dataset, beta, rule, method, seed, new Dictionary<string, double> { [MetricNames.Accuracy] = accuracy });

    [Test]
    public void Statistics_MatchHandValues_WithTheSampleStandardDeviation()
    {
        // 0.50 .. 0.58: mean 0.54; squared deviations 0.0016, 0.0004, 0, 0.0004, 0.0016 sum to 0.004;
        // sample variance 0.004 / (5 - 1) = 0.001, std = sqrt(0.001) = 0.0316228 (the population std would be 0.0282843).
        var s = SeedStatistics.Of([(4, 0.56), (1, 0.50), (5, 0.58), (3, 0.54), (2, 0.52)]);
        Assert.That(s.Count, Is.EqualTo(5));
        Assert.That(s.Mean, Is.EqualTo(0.54).Within(1e-12));
        Assert.That(s.StandardDeviation, Is.EqualTo(Math.Sqrt(0.001)).Within(1e-12));
        Assert.That(s.StandardDeviation, Is.EqualTo(0.0316228).Within(1e-7));
        Assert.That((s.Min, s.Max, s.Best, s.BestSeed), Is.EqualTo((0.50, 0.58, 0.58, 5L)));
        Assert.That(s.Seeds, Is.EqualTo(new long[] { 1, 2, 3, 4, 5 }));
    }

    [Test]
    public void Statistics_SingleRunHasNoStd_TiesPickTheSmallestSeed_LowerIsBetterPicksTheMinimum()
    {
        var one = SeedStatistics.Of([(7, 0.6)]);
        Assert.That(one.StandardDeviation, Is.Null);
        Assert.That(one.Best, Is.EqualTo(0.6));

        var tie = SeedStatistics.Of([(9, 0.7), (2, 0.7), (5, 0.1)]);
        Assert.That(tie.BestSeed, Is.EqualTo(2));

        var loss = SeedStatistics.Of([(1, 0.9), (2, 0.3), (3, 0.6)], higherIsBetter: false);
        Assert.That((loss.Best, loss.BestSeed), Is.EqualTo((0.3, 2L)));

        Assert.That(() => SeedStatistics.Of([(1, 0.5), (1, 0.6)]), Throws.ArgumentException.With.Message.Contains("Seed 1 appears twice"));
        Assert.That(() => SeedStatistics.Of([(1, double.NaN)]), Throws.ArgumentException.With.Message.Contains("not a finite number"));
    }

    [Test]
    public void Aggregate_BuildsThePapersLayout()
    {
        var runs = new List<RunResult>();
        // Deliberately shuffled input, mixed case in rule/method names.
        runs.Add(Run("FER2013", 10, "reweight", "DICC", 1, 0.60));
        runs.Add(Run("FER2013", 100, "none", "baseline", 2, 0.52));
        runs.Add(Run("MMAFEDB", 100, "none", "baseline", 1, 0.55));
        runs.Add(Run("FER2013", 100, "none", "dicc", 1, 0.53));
        runs.Add(Run("FER2013", 100, "none", "baseline", 1, 0.50));
        runs.Add(Run("FER2013", 100, "Resample", "dicc", 1, 0.51));
        runs.Add(Run("FER2013", null, "none", "baseline", 1, 0.65));
        runs.Add(Run("FER2013", 100, "focal", "dicc", 1, 0.49));
        runs.Add(Run("FER2013", 100, "none", "ldam", 1, 0.40));

        var table = SeedAggregation.Aggregate(runs);
        Assert.That(table.Methods, Is.EqualTo(new[] { "baseline", "dicc", "ldam" }));
        Assert.That(table.Rows.Select(r => (r.Dataset, r.Beta, r.Rule)), Is.EqualTo(new (string, double?, string)[]
        {
            ("FER2013", 100, "none"), ("FER2013", 100, "resample"), ("FER2013", 100, "focal"),
            ("FER2013", 10, "reweight"), ("FER2013", null, "none"), ("MMAFEDB", 100, "none"),
        }));
        var first = table.Rows[0];
        Assert.That(table.Cell(first, "baseline")!.Mean, Is.EqualTo(0.51).Within(1e-12));
        Assert.That(table.Cell(first, "baseline")!.Count, Is.EqualTo(2));
        Assert.That(table.Cell(first, "DICC")!.Mean, Is.EqualTo(0.53));
        Assert.That(table.Cell(table.Rows[1], "baseline"), Is.Null);
        Assert.That(table.UniformSeedCount, Is.Null);

        using var json = System.Text.Json.JsonDocument.Parse(EvaluationJson.Serialize(table));
        var cell = json.RootElement.GetProperty("rows")[0].GetProperty("cells")[0];
        Assert.That(cell.GetProperty("bestSeed").GetInt64(), Is.EqualTo(2));
        Assert.That(cell.GetProperty("standardDeviation").GetDouble(), Is.EqualTo(Math.Sqrt(0.0002)).Within(1e-12));
        Assert.That(json.RootElement.GetProperty("rows")[1].GetProperty("cells")[0].ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
    }

    [Test]
    public void Aggregate_RefusesDuplicatesAndMissingMetrics()
    {
        Assert.That(() => SeedAggregation.Aggregate([Run("FER2013", 10, "none", "dicc", 1, 0.5), Run("FER2013", 10, "NONE", "dicc", 1, 0.6)]),
            Throws.ArgumentException.With.Message.Contains("(dataset FER2013, beta 10, rule none, method dicc, seed 1) appears twice"));
        Assert.That(() => SeedAggregation.Aggregate([Run("FER2013", 10, "none", "dicc", 1, 0.5)], MetricNames.MacroF1),
            Throws.ArgumentException.With.Message.Contains("has no metric 'macro_f1' (it has: accuracy)"));
        Assert.That(() => SeedAggregation.Aggregate([]), Throws.ArgumentException.With.Message.Contains("No runs"));
    }

    [Test]
    public void Markdown_ShowsMeanStdMinAndLabelledBestOfSeeds()
    {
        var runs = new[]
        {
            Run("FER2013", 100, "none", "baseline", 1, 0.25), Run("FER2013", 100, "none", "baseline", 2, 0.50),
            Run("FER2013", 100, "none", "baseline", 3, 0.75),
            Run("FER2013", 100, "none", "dicc", 1, 0.60), Run("FER2013", 100, "none", "dicc", 2, 0.60),
            Run("FER2013", 100, "none", "dicc", 3, 0.60),
            Run("FER2013", 10, "resample", "baseline", 1, 0.40), Run("FER2013", 10, "resample", "baseline", 2, 0.50),
            Run("FER2013", 10, "resample", "baseline", 3, 0.60),
        };
        string markdown = ResultTableFormat.ToMarkdown(SeedAggregation.Aggregate(runs));
        // baseline row 1: mean 0.5, std sqrt((0.0625 + 0 + 0.0625) / 2) = 0.25; DICC: 0.6 with std 0; delta +10 points.
        string expected =
            "| dataset | β | rule | baseline mean ± std | baseline min | baseline best of 3 seeds (= max) | DICC mean ± std | DICC min | DICC best of 3 seeds (= max) | Δ mean (DICC − baseline) |\n" +
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n" +
            "| FER2013 | 100 | none | 50.00 ± 25.00 | 25.00 | 75.00 | 60.00 ± 0.00 | 60.00 | 60.00 | +10.00 |\n" +
            "| FER2013 | 10 | resample | 50.00 ± 10.00 | 40.00 | 60.00 | — | — | — | — |\n" +
            "\n" +
            "Test top-1 accuracy (%) over seeds: mean ± sample standard deviation (n − 1 in the denominator), min, " +
            "and the best of the seeds (the maximum, what the paper's tables report), shown beside the mean, never instead of it.\n";
        Assert.That(markdown, Is.EqualTo(expected));
    }

    [Test]
    public void Layout_WithUnequalSeedCounts_PutsNInEachCell()
    {
        var runs = new[]
        {
            Run("RAF-DB", null, "none", "baseline", 1, 0.8), Run("RAF-DB", null, "none", "baseline", 2, 0.9),
            Run("RAF-DB", null, "none", "dicc", 1, 0.85),
        };
        var layout = ResultTableFormat.ToLayout(SeedAggregation.Aggregate(runs), decimals: 1);
        Assert.That(layout.Headers[3], Is.EqualTo("baseline mean ± std (n)"));
        Assert.That(layout.Headers[5], Is.EqualTo("baseline best of n seeds (= max)"));
        Assert.That(layout.Rows[0], Is.EqualTo(new[] { "RAF-DB", "full", "none", "85.0 ± 7.1 (n=2)", "80.0", "90.0", "85.0 ± — (n=1)", "85.0", "85.0", "0.0" }));
    }

    [Test]
    public void Csv_IsTidyUnroundedAndQuoted()
    {
        var runs = new[]
        {
            Run("FER2013", 100, "none", "baseline", 3, 0.5), Run("FER2013", 100, "none", "baseline", 1, 0.25),
            Run("FER2013", 100, "none", "baseline", 2, 0.75),
            Run("FER2013", 100, "none", "dicc", 2, 0.5), Run("FER2013", 100, "none", "dicc", 1, 0.5),
            Run("Emo, \"D\"", null, "none", "dicc", 8, 0.125),
        };
        string csv = ResultTableFormat.ToCsv(SeedAggregation.Aggregate(runs));
        Assert.That(csv, Is.EqualTo(
            "dataset,beta,rule,method,metric,n,mean,std,min,max,best,best_seed,seeds,settings\n" +
            "FER2013,100,none,baseline,accuracy,3,0.5,0.25,0.25,0.75,0.75,2,1 2 3,\n" +
            "FER2013,100,none,dicc,accuracy,2,0.5,0,0.5,0.5,0.5,1,1 2,\n" +
            "\"Emo, \"\"D\"\"\",,none,dicc,accuracy,1,0.125,,0.125,0.125,0.125,8,8,\n"), "settings is empty where no setting tells rows apart");
    }
}
