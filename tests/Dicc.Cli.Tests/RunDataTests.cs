using Dicc.Cli.Commands;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Training;
using Dicc.Engine.Data;
using Dicc.Engine.Training;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>
/// What a new user meets with real image folders: class folders that are missing, numbered or named otherwise,
/// data without a test split, skipped images; and that a run's data settings are reused by eval and compare.
/// </summary>
public class RunDataTests
{
    private static readonly string[] Model = ["--arch", "vgg11", "--width", "0.125", "--crop", "32", "--lr", "0.01", "--batch", "16", "--device", "cpu"];
    private TempDirectory _temp = null!;
    private string? _cache;

    [SetUp]
    public void SetUp()
    {
        _temp = new TempDirectory();
        // Keep the loader's pack caches of these folders out of the user's cache folder.
        _cache = Environment.GetEnvironmentVariable("DICC_CACHE_DIR");
        Environment.SetEnvironmentVariable("DICC_CACHE_DIR", _temp["cache"]);
    }

    [TearDown]
    public void TearDown()
    {
        Environment.SetEnvironmentVariable("DICC_CACHE_DIR", _cache);
        _temp.Dispose();
    }

    /// <summary>A train/val/test image folder of small synthetic faces, class folders named by <paramref name="folder"/>.</summary>
    private string Faces(string name, Func<string, string>? folder = null, bool test = true)
    {
        string root = _temp[name];
        Assert.That(Run("synth", "--out", root, "--per-class", "12", "--val-per-class", "2", "--test-per-class", test ? "2" : "0", "--size", "36").ExitCode, Is.Zero);
        if (!test && Directory.Exists(Path.Combine(root, "test"))) Directory.Delete(Path.Combine(root, "test"), recursive: true);
        if (folder is not null)
            foreach (var split in Directory.GetDirectories(root))
                foreach (var classFolder in Directory.GetDirectories(split))
                    Directory.Move(classFolder, Path.Combine(split, folder(Path.GetFileName(classFolder))));
        return root;
    }

    [Test]
    public void AMissingClassFolder_IsAnErrorNamingTheClass_AndAllowedItIsRefusedByReweightNamingIt()
    {
        string data = Faces("faces");
        Directory.Delete(Path.Combine(data, "train", "disgust"), recursive: true);
        AssertBadUsage(Run(["train", "--data", data, "--epochs", "1", "--out", _temp["a"], .. Model]),
            $"{Path.Combine(data, "train")}: no folder for class 'disgust': every class needs training images");
        AssertBadUsage(Run(["train", "--data", data, "--allow-missing-classes", "--rule", "reweight", "--epochs", "1", "--out", _temp["b"], .. Model]),
            "--rule reweight: class 'disgust' has no training images");
        var none = Run(["train", "--data", data, "--allow-missing-classes", "--epochs", "1", "--out", _temp["c"], .. Model]);
        Assert.That(none.ExitCode, Is.EqualTo(ExitCodes.Success), none.ToString());
        Assert.That(new RunDirectory(_temp["c"]).ReadConfig().Dataset.Settings!.AllowMissingClasses, Is.True);
    }

    [Test]
    public void NumberedClassFolders_TrainWithAClassMap_AndEvalReusesItAndTheClassList()
    {
        // RAF-DB's numbering; then an eighth class, contempt, as in FER+ and AffectNet.
        string[] raf = ["surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"];
        string data = Faces("raf", name => (Array.IndexOf(raf, name) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        const string map = "1=surprise,2=fear,3=disgust,4=happy,5=sad,6=angry,7=neutral";
        AssertBadUsage(Run(["train", "--data", data, "--epochs", "1", "--out", _temp["x"], .. Model]), "unknown class folder '1'");
        AssertBadUsage(Run(["train", "--data", data, "--class-map", "1=glee", "--epochs", "1", "--out", _temp["x"], .. Model]),
            "--class-map: 1=glee: 'glee' is not a class");
        var run = Run(["train", "--data", data, "--class-map", map, "--epochs", "1", "--out", _temp["run"], .. Model]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        var eval = Run("eval", "--run", _temp["run"], "--device", "cpu");
        Assert.That(eval.ExitCode, Is.EqualTo(ExitCodes.Success), eval.ToString());

        // Eight classes with --classes: eval needs no --classes again (it once failed with "unknown class folder").
        string eight = Faces("eight");
        foreach (var split in new[] { "train", "val", "test" })
            Dicc.Engine.Tests.Support.DataTestSupport.WriteFace(Dicc.Engine.Tests.Support.DataTestSupport.Faces(1), 6,
                Path.Combine(eight, split, "contempt"));
        const string classes = "angry,disgust,fear,happy,sad,surprise,neutral,contempt";
        var trained = Run(["train", "--data", eight, "--classes", classes, "--epochs", "1", "--out", _temp["eight-run"], .. Model]);
        Assert.That(trained.ExitCode, Is.EqualTo(ExitCodes.Success), trained.ToString());
        var again = Run("eval", "--run", _temp["eight-run"], "--device", "cpu");
        Assert.That(again.ExitCode, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(again.Output, Does.Contain("contempt"));
    }

    [Test]
    public void NoTestSplit_WarnsAtTheStart_CompareSaysWhy_AndATestFractionHoldsOneOut()
    {
        string data = Faces("no-test", test: false);
        var run = Run(["train", "--data", data, "--epochs", "1", "--out", _temp["runs/plain"], .. Model]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        Assert.That(run.ErrorOutput, Does.Contain($"warning: {data} has no test split").And.Contain("--test-fraction"));
        Assert.That(File.Exists(_temp["runs/plain/result.json"]), Is.False);

        var held = Run(["train", "--data", data, "--test-fraction", "0.25", "--epochs", "1", "--out", _temp["runs/held"], .. Model]);
        Assert.That(held.ExitCode, Is.EqualTo(ExitCodes.Success), held.ToString());
        Assert.That(held.ErrorOutput, Does.Not.Contain("has no test split"));
        var config = new RunDirectory(_temp["runs/held"]).ReadConfig();
        Assert.That(config.Dataset.TestHeldOut, Is.True);
        Assert.That(config.Dataset.TestCount, Is.EqualTo(7 * 3), "round(12 * 0.25) of each class");
        Assert.That(File.Exists(_temp["runs/held/result.json"]));

        var compare = Run("compare", _temp["runs"]);
        Assert.That(compare.ExitCode, Is.EqualTo(ExitCodes.Success), compare.ToString());
        Assert.That(compare.ErrorOutput, Does.Contain($"not a run: {_temp["runs/plain"]} (finished, but trained on data without a test split"));
        Assert.That(compare.ErrorOutput, Does.Not.Contain("interrupted"));
        AssertBadUsage(Run(["train", "--data", data, "--test-fraction", "1.5", "--out", _temp["x"], .. Model]), "--test-fraction must be in (0, 1)");
    }

    [Test]
    public void Compare_NamesTheRealCauseOfAMissingResult()
    {
        var unfinished = new RunDirectory(_temp["runs/unfinished"]);
        // An interrupted run: one of three epochs (the report write failed after the last epoch, then metrics were cut).
        Engine.IO.AtomicFile.FaultInjection.Value = p => Path.GetFileName(p) == "report.json" ? new IOException("No space left on device") : null;
        try
        {
            Run(["train", "--data", "synthetic:per-class=12,size=36,val=2,test=2,seed=1", "--epochs", "2", "--out", unfinished.Path, .. Model]);
        }
        finally
        {
            Engine.IO.AtomicFile.FaultInjection.Value = null;
        }
        Assert.That(CompareCommand.WhyNoResult(unfinished), Does.StartWith("finished training, but its test report was not written"));
        unfinished.WriteMetrics(unfinished.ReadMetrics().Take(1));
        Assert.That(CompareCommand.WhyNoResult(unfinished), Is.EqualTo($"unfinished: 1 of 2 epochs done (continue it with dicc train --resume {unfinished.Path})"));
        using (unfinished.Lock())
            Assert.That(CompareCommand.WhyNoResult(unfinished), Does.StartWith($"still training (process {Environment.ProcessId})"));
    }

    [Test]
    public void SkippedImages_AreRecordedInConfig_AndAClassWithoutTestImagesShowsDashes()
    {
        string data = Faces("faces");
        File.WriteAllBytes(Path.Combine(data, "train", "happy", "broken.png"), [1, 2, 3]);
        Directory.Delete(Path.Combine(data, "test", "fear"), recursive: true);
        var run = Run(["train", "--data", data, "--on-bad-image", "skip", "--epochs", "1", "--out", _temp["run"], .. Model]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        Assert.That(run.ErrorOutput, Does.Contain("skipped 1 bad input(s)").And.Contain("broken.png"));
        var skipped = new RunDirectory(_temp["run"]).ReadConfig().Dataset.Skipped;
        Assert.That(skipped, Has.Length.EqualTo(1));
        Assert.That(skipped![0], Does.StartWith(Path.Combine(data, "train", "happy", "broken.png") + ": "));

        var fear = run.Lines.Single(l => l.Contains("│ fear", StringComparison.Ordinal)).Split('│', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.That(fear, Is.EqualTo(new[] { "fear", "0", fear[2], "-", "-", "-" }), "no test images of fear: recall, F1 and AP are undefined");
        Assert.That(fear[2], Is.EqualTo("-").Or.EqualTo("0.00%"), "precision is defined only when fear was predicted");
    }

    [Test]
    public void ALongCpuRun_IsAnnouncedWithItsEstimate()
    {
        var options = TrainingPresets.Paper;
        Assert.That(TrainCommand.LongRunWarning(3600, 0.02, 180_000, options), Is.Null, "an hour is not long");
        string? warning = TrainCommand.LongRunWarning(3.4 * 86400, 1.63, 180_000, options);
        Assert.That(warning, Does.StartWith("this run will take about 3.4 days on this CPU (1.63 s per step")
            .And.Contain("180,000 steps of vgg19 x1").And.Contain("--device cuda"));
        Assert.That(TrainCommand.LongRunWarning(20 * 3600, 0.4, 180_000, options), Does.StartWith("this run will take about 20 hours"));
    }
}
