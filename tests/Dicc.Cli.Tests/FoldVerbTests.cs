using System.Text.Json;
using Dicc.Engine.Data;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Tests.Support;
using Dicc.Engine.Training;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>
/// dicc train --folds on files named as CK+ names its files (synthetic faces), then compare and eval on the folds.
/// One three-fold cross-validation of a narrow VGG11, one epoch per fold, trained once for the fixture.
/// </summary>
public class FoldVerbTests
{
    private TempDirectory _temp = null!;
    private Dictionary<string, string> _subjectOf = null!;
    private CliRun _train = null!;

    [OneTimeSetUp]
    public void TrainFolds()
    {
        _temp = new TempDirectory();
        _subjectOf = DataTestSupport.WriteCkPlusStyle(_temp["ck"], subjects: 12, seed: 4);
        _train = Run("train", "--data", _temp["ck"], "--folds", "3", "--group-by", "ck+", "--seed", "2", "--arch", "vgg11", "--width", "0.125",
            "--epochs", "1", "--batch", "16", "--device", "cpu", "--out", _temp["cv"], "--quiet", "--dataset-name", "CK+");
    }

    [OneTimeTearDown]
    public void CleanUp() => _temp.Dispose();

    [Test]
    public void Train_Folds_WritesARunPerFold_TheAssignment_AndTheFoldTable()
    {
        Assert.That(_train.ExitCode, Is.EqualTo(0), _train.ToString());
        using var folds = JsonDocument.Parse(File.ReadAllText(_temp["cv/folds.json"]));
        var root = folds.RootElement;
        Assert.That(root.GetProperty("folds").GetInt32(), Is.EqualTo(3));
        Assert.That(root.GetProperty("group_by").GetString(), Is.EqualTo(@"^(S\d+)_"));
        var subjects = root.GetProperty("subjects").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        Assert.That(subjects.Keys, Is.EquivalentTo(_subjectOf.Values.Distinct()), "every subject is in folds.json");

        var tested = new List<string>();
        var accuracies = new List<double>();
        for (int f = 1; f <= 3; f++)
        {
            var run = new RunDirectory(_temp[$"cv/fold-{f}"]);
            var fold = run.ReadConfig().Dataset.Fold!;
            Assert.That((fold.Fold, fold.Folds, fold.Seed), Is.EqualTo((f, 3, 2UL)));
            Assert.That(fold.TestSubjects, Is.EquivalentTo(subjects.Where(kv => kv.Value == f).Select(kv => kv.Key)), $"fold {f}'s config.json agrees with folds.json");
            var result = EvaluationJson.DeserializeRunResult(File.ReadAllText(run.ResultFile), run.ResultFile);
            Assert.That((result.Fold, result.Folds, result.Dataset), Is.EqualTo(((int?)f, (int?)3, "CK+")));
            var report = EvaluationJson.DeserializeReport(File.ReadAllText(run.ReportFile), run.ReportFile);
            accuracies.Add(report.Accuracy);
            tested.Add($"{report.SampleCount}");
        }
        Assert.That(tested.Select(int.Parse).Sum(), Is.EqualTo(_subjectOf.Count), "the folds' test splits hold every image once");
        Assert.That(_train.Output, Does.Contain("mean ± std").And.Contain("CK+ · baseline · none · seed 2"));
        double mean = accuracies.Average();
        Assert.That(_train.Output, Does.Contain((100 * mean).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + " ± "));
    }

    [Test]
    public void Compare_OnTheFolder_PrintsEachFold_AndTheMeanAndStd_AndWritesCsv()
    {
        var run = Run("compare", _temp["cv"], "--csv", _temp["cv.csv"], "--markdown", _temp["cv.md"]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var results = Enumerable.Range(1, 3).Select(f => EvaluationJson.DeserializeRunResult(File.ReadAllText(_temp[$"cv/fold-{f}/result.json"]), "r")).ToArray();
        var accuracies = results.Select(r => r.Metrics[MetricNames.Accuracy]).ToArray();
        double mean = accuracies.Average();
        double std = Math.Sqrt(accuracies.Sum(a => (a - mean) * (a - mean)) / 2);
        string P(double v) => (100 * v).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
        for (int f = 0; f < 3; f++)
            Assert.That(run.Lines.Any(l => l.TrimStart(' ', '│', '|').StartsWith($"{f + 1} ", StringComparison.Ordinal) && l.Contains(P(accuracies[f]))), run.Output);
        Assert.That(run.Output, Does.Contain($"{P(mean)} ± {P(std)}"));
        Assert.That(run.Output, Does.Contain("3 fold run(s), 1 cross-validation(s)."));
        var csv = File.ReadAllLines(_temp["cv.csv"]);
        Assert.That(csv[0], Is.EqualTo("dataset,rule,method,seed,folds,metric,fold,value"));
        Assert.That(csv[^2], Is.EqualTo($"CK+,none,baseline,2,3,accuracy,mean,{mean.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}"));
        Assert.That(File.ReadAllText(_temp["cv.md"]), Does.Contain("| mean ± std |"));
    }

    [Test]
    public void Eval_OfAFold_EvaluatesThatFoldsTestSubjects()
    {
        var run = Run("eval", "--run", _temp["cv/fold-2"], "--device", "cpu", "--json");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var report = EvaluationJson.DeserializeReport(File.ReadAllText(_temp["cv/fold-2/report.json"]), "report");
        var again = EvaluationJson.DeserializeReport(File.ReadAllText(_temp["cv/fold-2/eval-test.json"]), "eval");
        Assert.That((again.SampleCount, again.Accuracy), Is.EqualTo((report.SampleCount, report.Accuracy)), "the same fold split, the same model");
    }

    [Test]
    public void Resume_OfTheFolder_FinishesEveryFold_WithTheRecordedAssignment()
    {
        // An interrupted cross-validation: fold 2 trained but without its reports, fold 3 never started.
        CopyFolder(_temp["cv"], _temp["cv-cut"]);
        var original = new RunDirectory(_temp["cv/fold-3"]).ReadConfig().Dataset;
        Directory.Delete(_temp["cv-cut/fold-3"], recursive: true);
        File.Delete(_temp["cv-cut/fold-2/result.json"]);
        File.Delete(_temp["cv-cut/fold-2/report.json"]);

        var run = Run("train", "--resume", _temp["cv-cut"], "--device", "cpu", "--quiet");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(File.Exists(_temp["cv-cut/fold-2/result.json"]) && File.Exists(_temp["cv-cut/fold-3/result.json"]), run.ToString());
        var again = new RunDirectory(_temp["cv-cut/fold-3"]).ReadConfig().Dataset;
        Assert.Multiple(() =>
        {
            Assert.That(again.Fold!.TestSubjects, Is.EqualTo(original.Fold!.TestSubjects));
            Assert.That(again.Fold.ValidationSubjects, Is.EqualTo(original.Fold.ValidationSubjects));
            Assert.That(again.Fingerprint, Is.EqualTo(original.Fingerprint));
            Assert.That(again.TrainCounts, Is.EqualTo(original.TrainCounts));
        });
        Assert.That(run.Output, Does.Contain("mean ± std"));
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Test]
    public void Folds_BadUsage_IsOneLineNamingTheFlag()
    {
        string[] common = ["--epochs", "1", "--device", "cpu", "--out", _temp["bad"]];
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "3", .. common]), "--folds needs --group-by");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--group-by", "ck+", .. common]), "--group-by goes with --folds.");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "1", "--group-by", "ck+", .. common]), "--folds must be at least 2, got 1.");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "3", "--group-by", "ck+", "--test-fraction", "0.1", .. common]), "leave out --val, --test and --test-fraction");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "3", "--group-by", "ck+", "--seeds", "2", .. common]), "--folds and --seeds cannot be combined");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "20", "--group-by", "ck+", .. common]), "--folds: 20 folds need at least 20 subjects; the data has 12");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "3", "--group-by", "^S[0-9]+_", .. common]), "--group-by: '^S[0-9]+_' has no group");
        AssertBadUsage(Run(["train", "--data", _temp["ck"], "--folds", "3", "--group-by", "jaffe", .. common]), "--group-by: ");
    }
}
