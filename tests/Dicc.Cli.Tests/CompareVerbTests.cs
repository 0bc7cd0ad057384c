using System.Text.Json;
using Dicc.Engine.Evaluation;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Cli.Tests;

/// <summary>dicc compare on fabricated run directories with known numbers.</summary>
public class CompareVerbTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    /// <summary>Writes <c>dir/result.json</c> as the trainer does.</summary>
    private string WriteRun(string relative, string rule, string method, long seed, double accuracy, double balanced)
    {
        string dir = _temp[relative];
        Directory.CreateDirectory(dir);
        var metrics = new Dictionary<string, double> { [MetricNames.Accuracy] = accuracy, [MetricNames.BalancedAccuracy] = balanced };
        File.WriteAllText(Path.Combine(dir, "result.json"), EvaluationJson.Serialize(new RunResult("FER2013", 10, rule, method, seed, metrics)));
        File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
        return dir;
    }

    /// <summary>
    /// rule none: baseline 60, 62, 64 % (mean 62, sample std 2), DICC 65, 66, 67 % (66 ± 1);
    /// rule resample: baseline 50, 52, 54 %, DICC 53, 56, 59 % (56 ± 3). Laid out as multi-seed runs
    /// (&lt;out&gt;/seed-&lt;n&gt;/) under one folder, with an unfinished run and an empty folder beside them.
    /// </summary>
    private string FabricateRuns()
    {
        double[] noneBase = [0.60, 0.62, 0.64], noneDicc = [0.65, 0.66, 0.67], resBase = [0.50, 0.52, 0.54], resDicc = [0.53, 0.56, 0.59];
        for (int s = 0; s < 3; s++)
        {
            WriteRun($"runs/none-baseline/seed-{s + 1}", "none", "baseline", s + 1, noneBase[s], noneBase[s] - 0.1);
            WriteRun($"runs/none-dicc/seed-{s + 1}", "none", "dicc", s + 1, noneDicc[s], noneDicc[s] - 0.05);
            WriteRun($"runs/resample-baseline/seed-{s + 1}", "resample", "baseline", s + 1, resBase[s], resBase[s]);
            WriteRun($"runs/resample-dicc/seed-{s + 1}", "resample", "dicc", s + 1, resDicc[s], resDicc[s]);
        }
        Directory.CreateDirectory(_temp["runs/interrupted"]);
        File.WriteAllText(_temp["runs/interrupted/config.json"], "{}");
        Directory.CreateDirectory(_temp["notes"]);
        return _temp["runs"];
    }

    [Test]
    public void Compare_PrintsThePaperTableWithExactValues_AndWritesMarkdownAndCsv()
    {
        string runs = FabricateRuns();
        string md = _temp["table.md"], csv = _temp["table.csv"];
        var run = Run("compare", runs, _temp["notes"], "--markdown", md, "--csv", csv);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        string none = run.Lines.Single(l => l.Contains(" none "));
        string resample = run.Lines.Single(l => l.Contains(" resample "));
        var noneCells = none.Split(['│', '|'], StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var resampleCells = resample.Split(['│', '|'], StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.That(noneCells, Is.EqualTo(new[] { "FER2013", "10", "none", "62.00 ± 2.00", "60.00", "64.00", "66.00 ± 1.00", "65.00", "67.00", "+4.00" }));
        Assert.That(resampleCells, Is.EqualTo(new[] { "FER2013", "10", "resample", "52.00 ± 2.00", "50.00", "54.00", "56.00 ± 3.00", "53.00", "59.00", "+4.00" }));
        Assert.That(run.Output, Does.Contain("best of 3 seeds (= max)"), "best of seeds is labelled as such");
        Assert.That(run.Output, Does.Contain("12 run(s), 2 configuration(s)."));
        Assert.That(run.ErrorOutput, Does.Contain("not a run: " + Path.Combine(runs, "interrupted")));
        Assert.That(run.ErrorOutput, Does.Contain("not a run: " + _temp["notes"] + " (no result.json in it or in any folder below it)"));
        Assert.That(run.Output, Does.Not.Contain("not a run"), "warnings go to standard error");

        var markdown = File.ReadAllLines(md);
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | none | 62.00 ± 2.00 | 60.00 | 64.00 | 66.00 ± 1.00 | 65.00 | 67.00 | +4.00 |"));
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | resample | 52.00 ± 2.00 | 50.00 | 54.00 | 56.00 ± 3.00 | 53.00 | 59.00 | +4.00 |"));
        var lines = File.ReadAllLines(csv);
        Assert.That(lines, Has.Length.EqualTo(5));
        var dicc = lines.Single(l => l.StartsWith("FER2013,10,none,dicc,accuracy,3,", StringComparison.Ordinal)).Split(',');
        Assert.That(double.Parse(dicc[6], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.66).Within(1e-12), "mean");
        Assert.That(double.Parse(dicc[7], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.01).Within(1e-12), "std");
        Assert.That(dicc[12], Is.EqualTo("1 2 3"), "seeds");
    }

    [Test]
    public void Compare_OnANarrowConsole_PrintsALinePerMethodWithTheSameValues()
    {
        string runs = FabricateRuns();
        var run = RunWithWidth(80, "compare", runs);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Lines.Max(l => l.TrimEnd().Length), Is.LessThanOrEqualTo(80), run.Output);
        string[] Cells(string line) => line.Split("  ", StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        int at = Array.FindIndex(run.Lines, l => l.Contains(" none "));
        Assert.That(Cells(run.Lines[at]), Is.EqualTo(new[] { "FER2013", "10", "none", "baseline", "62.00 ± 2.00", "60.00", "64.00" }));
        Assert.That(Cells(run.Lines[at + 1]), Is.EqualTo(new[] { "DICC", "66.00 ± 1.00", "65.00", "67.00", "+4.00" }));
        Assert.That(run.Output, Does.Contain("best of 3"), "the header may wrap, but says what the column is");
    }

    [Test]
    public void Compare_OtherMetric_Json_AndTheRunList()
    {
        string runs = FabricateRuns();
        var json = Run("compare", runs, "--metric", "balanced_accuracy", "--json");
        Assert.That(json.ExitCode, Is.EqualTo(0), json.ToString());
        using var doc = JsonDocument.Parse(json.Output);
        Assert.That(doc.RootElement.GetProperty("metric").GetString(), Is.EqualTo("balanced_accuracy"));
        var first = doc.RootElement.GetProperty("rows")[0];
        Assert.That(first.GetProperty("rule").GetString(), Is.EqualTo("none"));
        Assert.That(first.GetProperty("cells")[0].GetProperty("mean").GetDouble(), Is.EqualTo(0.52).Within(1e-12), "baseline balanced accuracy");
        Assert.That(first.GetProperty("cells")[1].GetProperty("mean").GetDouble(), Is.EqualTo(0.61).Within(1e-12), "DICC balanced accuracy");

        var listed = Run("compare", Path.Combine(runs, "none-dicc"), "--runs", "--decimals", "1");
        Assert.That(listed.ExitCode, Is.EqualTo(0), listed.ToString());
        Assert.That(listed.Lines.Count(l => l.Contains(Path.Combine(runs, "none-dicc", "seed-"))), Is.EqualTo(3));
        Assert.That(listed.Lines.Single(l => l.Contains("seed-2")).TrimEnd(), Does.EndWith("66.0"));
        Assert.That(listed.Output, Does.Contain("66.0 ± 1.0"));
    }

    [Test]
    public void Compare_Ece_IsLowerIsBetter_AndRunsWithoutItAreNamed()
    {
        // ECE 0.10, 0.04, 0.07 for the baseline: mean 0.07, best of seeds the minimum 0.04, worst 0.10.
        double[] ece = [0.10, 0.04, 0.07];
        for (int s = 0; s < 3; s++)
        {
            string dir = WriteRun($"ece/seed-{s + 1}", "none", "baseline", s + 1, 0.6, 0.5);
            var metrics = new Dictionary<string, double> { [MetricNames.Accuracy] = 0.6, [MetricNames.ExpectedCalibrationError] = ece[s] };
            File.WriteAllText(Path.Combine(dir, "result.json"), EvaluationJson.Serialize(new RunResult("FER2013", 10, "none", "baseline", s + 1, metrics)));
        }
        string csv = _temp["ece.csv"];
        var run = Run("compare", _temp["ece"], "--metric", "ece", "--csv", csv);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Output, Does.Contain("best of 3 seeds (= min)").And.Contain("7.00 ± 3.00"));
        var line = File.ReadAllLines(csv).Single(l => l.StartsWith("FER2013,10,none,baseline,ece,3,", StringComparison.Ordinal)).Split(',');
        Assert.That(double.Parse(line[10], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.04).Within(1e-12), "best = min");
        Assert.That(line[11], Is.EqualTo("2"), "the best seed");

        WriteRun("ece-old/seed-1", "none", "baseline", 1, 0.6, 0.5);
        AssertBadUsage(Run("compare", _temp["ece-old"], "--metric", "ece"), "runs finished before calibration was reported have no ECE");
    }

    [Test]
    public void Compare_BadInput_IsOneLineNamingTheCulprit()
    {
        string runs = FabricateRuns();
        AssertBadUsage(Run("compare", _temp["notes"]), "no finished runs");
        AssertBadUsage(Run("compare", _temp["missing"]), "'" + _temp["missing"] + "' does not exist");
        AssertBadUsage(Run("compare", runs, "--metric", "top5"), "--metric: 'top5' is not one of accuracy,");
        AssertBadUsage(Run("compare", runs, "--metric", "macro_f1"), "--metric macro_f1: 12 run(s) do not have it");
        AssertBadUsage(Run("compare"), "RUN_DIRS");

        // The same configuration and seed in two folders would be counted twice.
        WriteRun("copy/seed-1", "none", "dicc", 1, 0.5, 0.5);
        AssertBadUsage(Run("compare", runs, _temp["copy"]), "and seed 1; pass one of them");

        File.WriteAllText(Path.Combine(runs, "none-dicc", "seed-2", "result.json"), "{ \"dataset\": ");
        var broken = Run("compare", runs);
        AssertBadUsage(broken, Path.Combine(runs, "none-dicc", "seed-2", "result.json"));
    }

    /// <summary>Writes a run as the trainer does: result.json and a config.json with real settings.</summary>
    private string WriteVariant(string relative, string method, long seed, double accuracy, Engine.Training.TrainingOptions options)
    {
        string dir = WriteRun(relative, "resample", method, seed, accuracy, accuracy);
        var description = new Engine.Training.DatasetDescription("FER2013", "fer.manifest", null, 10, ["a", "b", "c", "d", "e", "f", "g"],
            [10, 1, 2, 3, 4, 5, 6], 70, 70);
        new Engine.Training.RunDirectory(dir).WriteConfig(new Engine.Training.RunConfig("0", options with { Seed = (ulong)seed }, description,
            null, "CPU", DateTimeOffset.UnixEpoch));
        return dir;
    }

    /// <summary>
    /// Baseline 50, 52, 54 %; DICC with the MLP mapping 40, 41, 42 % and with the sum mapping 55, 56, 57 %, all selected on
    /// accuracy. Each DICC variant gets its own row named by the setting that differs (mapping), beside the same baseline.
    /// </summary>
    [Test]
    public void Compare_TellsVariantsApartByTheSettingsThatDiffer_AndAcceptsHyphenatedMetrics()
    {
        var baseline = new Engine.Training.TrainingOptions { Method = Engine.Training.TrainingMethod.Baseline, Rule = Engine.Imbalance.ImbalanceRule.Resample,
            SelectOn = Engine.Training.ModelSelection.Accuracy };
        var mlp = baseline with { Method = Engine.Training.TrainingMethod.Dicc };
        var sum = mlp with { Mapping = Engine.Models.MappingKind.Sum };
        for (int s = 1; s <= 3; s++)
        {
            WriteVariant($"v/baseline/seed-{s}", "baseline", s, 0.48 + 0.02 * s, baseline);
            WriteVariant($"v/mlp/seed-{s}", "dicc", s, 0.39 + 0.01 * s, mlp);
            WriteVariant($"v/sum/seed-{s}", "dicc", s, 0.54 + 0.01 * s, sum);
        }
        string md = _temp["v.md"];
        var run = Run("compare", _temp["v"], "--metric", "balanced-accuracy", "--markdown", md);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var markdown = File.ReadAllLines(md);
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | resample | mapping=mlp | 52.00 ± 2.00 | 50.00 | 54.00 | 41.00 ± 1.00 | 40.00 | 42.00 | −11.00 |"));
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | resample | mapping=sum | 52.00 ± 2.00 | 50.00 | 54.00 | 56.00 ± 1.00 | 55.00 | 57.00 | +4.00 |"));
        Assert.That(markdown[0], Does.StartWith("| dataset | β | rule | settings |"));
        Assert.That(run.Output, Does.Contain("Models selected on validation accuracy."));
        Assert.That(run.Output, Does.Contain("9 run(s), 2 configuration(s)."));

        // A setting shared by both methods that differs (the selection) is named on the baseline too.
        WriteVariant("v/baseline-bal/seed-1", "baseline", 1, 0.6, baseline with { SelectOn = Engine.Training.ModelSelection.BalancedAccuracy });
        WriteVariant("v/sum-bal/seed-1", "dicc", 1, 0.7, sum with { SelectOn = Engine.Training.ModelSelection.BalancedAccuracy });
        var mixed = Run("compare", _temp["v"], "--metric", "accuracy", "--runs");
        Assert.That(mixed.ExitCode, Is.EqualTo(0), mixed.ToString());
        Assert.That(mixed.Output, Does.Contain("select-on=balanced-accuracy, mapping=sum").And.Contain("select-on=accuracy, mapping=mlp"));
        Assert.That(mixed.Output, Does.Not.Contain("Models selected on"), "no single selection to state");

        // Equal settings and seed in two folders would be counted twice; differing settings are not a clash.
        WriteVariant("copy/sum/seed-2", "dicc", 2, 0.1, sum);
        AssertBadUsage(Run("compare", _temp["v"], _temp["copy"]), "every setting equal) and seed 2; pass one of them");
    }

    /// <summary>
    /// The long-tail baselines are baseline runs told apart by their loss settings: cross-entropy (50 %) beside DICC (41 %),
    /// focal (60 %) and LDAM-DRW (62 %) each in a row of their own; a loss's own settings (focal's gamma) name a run only
    /// where they differ among the runs that use them.
    /// </summary>
    [Test]
    public void Compare_TellsTheLongTailLossesApart()
    {
        var ce = new Engine.Training.TrainingOptions { Rule = Engine.Imbalance.ImbalanceRule.None, SelectOn = Engine.Training.ModelSelection.Accuracy };
        var dicc = ce with { Method = Engine.Training.TrainingMethod.Dicc };
        var focal = ce with { Loss = Engine.Training.LossKind.Focal };
        var ldamDrw = ce with { Loss = Engine.Training.LossKind.Ldam, DrwEpoch = 160 };
        WriteVariant("lt/ce/seed-1", "baseline", 1, 0.50, ce);
        WriteVariant("lt/dicc/seed-1", "dicc", 1, 0.41, dicc);
        WriteVariant("lt/focal/seed-1", "baseline", 1, 0.60, focal);
        WriteVariant("lt/ldam-drw/seed-1", "baseline", 1, 0.62, ldamDrw);
        string md = _temp["lt.md"];
        var run = Run("compare", _temp["lt"], "--metric", "accuracy", "--markdown", md);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var markdown = File.ReadAllText(md);
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | resample | loss=ce, drw-epoch=0 | 50.00"));
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | resample | loss=focal, drw-epoch=0 | 60.00"));
        Assert.That(markdown, Does.Contain("| FER2013 | 10 | resample | loss=ldam, drw-epoch=160 | 62.00"));
        Assert.That(markdown, Does.Not.Contain("focal-gamma"), "one gamma among the focal runs: nothing to tell apart");

        WriteVariant("lt/focal-1/seed-1", "baseline", 1, 0.58, focal with { FocalGamma = 1 });
        var again = Run("compare", _temp["lt"], "--metric", "accuracy", "--runs");
        Assert.That(again.ExitCode, Is.EqualTo(0), again.ToString());
        Assert.That(again.Output, Does.Contain("focal-gamma=1").And.Contain("focal-gamma=2"));

        // Runs of one long-tail method alone are still labelled as that method, not as the plain baseline; a cRT run
        // (a frozen backbone from another run) too; plain runs alone carry no label.
        var alone = Run("compare", _temp["lt/focal"], "--metric", "accuracy", "--markdown", _temp["alone.md"]);
        Assert.That(alone.ExitCode, Is.EqualTo(0), alone.ToString());
        Assert.That(File.ReadAllText(_temp["alone.md"]), Does.Contain("| FER2013 | 10 | resample | loss=focal | 60.00"));
        var crt = ce with { InitFrom = "/runs/base", Freeze = Engine.Training.FreezeKind.Backbone, ResetHead = true };
        WriteVariant("crt/seed-1", "baseline", 1, 0.55, crt);
        var crtAlone = Run("compare", _temp["crt"], "--metric", "accuracy", "--markdown", _temp["crt.md"]);
        Assert.That(crtAlone.ExitCode, Is.EqualTo(0), crtAlone.ToString());
        Assert.That(File.ReadAllText(_temp["crt.md"]), Does.Contain("| init-from=run, freeze=backbone, reset-head=yes | 55.00"));
        var plain = Run("compare", _temp["lt/ce"], "--metric", "accuracy", "--markdown", _temp["plain.md"]);
        Assert.That(plain.ExitCode, Is.EqualTo(0), plain.ToString());
        Assert.That(File.ReadAllText(_temp["plain.md"]), Does.Contain("| FER2013 | 10 | resample | 50.00").And.Not.Contain("loss="));
    }
}
