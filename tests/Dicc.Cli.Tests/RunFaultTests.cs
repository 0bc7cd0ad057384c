using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Dicc.Cli.Infrastructure;
using Dicc.Engine;
using Dicc.Engine.IO;
using Dicc.Engine.Training;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>
/// What a run directory goes through under real use: a write that fails at each of the run's write points
/// (a full disk, injected through AtomicFile's test seam) and a resume that must restore everything the directory
/// is meant to hold; lost or damaged files; two trainings of one directory; SIGTERM sent to a real child process;
/// resuming on other data; a run moved to another working directory. Every case runs on the CPU in CI.
/// </summary>
public class RunFaultTests
{
    private const string Data = "synthetic:per-class=16,size=36,val=3,test=3,seed=3";
    private static readonly string[] Model = ["--arch", "vgg11", "--width", "0.125", "--crop", "32", "--lr", "0.01", "--batch", "16", "--device", "cpu"];

    /// <summary>Everything a finished run directory holds (docs/evaluation.md, "Run directories").</summary>
    private static readonly string[] RunFiles =
    [
        "config.json", "metrics.jsonl", "checkpoints/last.safetensors", "checkpoints/best.safetensors", "report.json",
        "report-validation.json", "result.json", "confusion.png", "pr.png", "reliability.png", "curves.png",
    ];

    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown()
    {
        AtomicFile.FaultInjection.Value = null;
        _temp.Dispose();
    }

    private static CliRun Train(string output, int epochs = 3, params string[] extra) =>
        Run(["train", "--data", Data, "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", output, .. Model, .. extra]);

    private static CliRun Resume(string run, params string[] extra) => Run(["train", "--resume", run, "--device", "cpu", .. extra]);

    /// <summary>The lines of metrics.jsonl without the timings, which differ between any two runs.</summary>
    private static string[] MetricsWithoutTimes(string run) =>
        new RunDirectory(run).ReadMetrics().Select(m => RunDirectory.Serialize(m with { Seconds = 0, ImagesPerSecond = 0 })).ToArray();

    private static void AssertComplete(string run, string straight)
    {
        foreach (var file in RunFiles) Assert.That(File.Exists(Path.Combine(run, file)), $"{file} is in {run}");
        Assert.That(File.Exists(Path.Combine(run, RunLock.FileName)), Is.False, "the lock is released");
        Assert.That(MetricsWithoutTimes(run), Is.EqualTo(MetricsWithoutTimes(straight)), "metrics.jsonl: every epoch, as the straight run");
        Assert.That(File.ReadAllText(Path.Combine(run, "report.json")), Is.EqualTo(File.ReadAllText(Path.Combine(straight, "report.json"))),
            "the same test report as the straight run");
        var eval = Run("eval", "--run", run, "--device", "cpu", "--json");
        Assert.That(eval.ExitCode, Is.EqualTo(ExitCodes.Success), eval.ToString());
    }

    /// <summary>Fails the <paramref name="occurrence"/>-th write of <paramref name="file"/> as a full disk would.</summary>
    private static void FailWrite(string file, int occurrence)
    {
        int seen = 0;
        AtomicFile.FaultInjection.Value = path =>
            Path.GetFileName(path) == file && Interlocked.Increment(ref seen) == occurrence ? new IOException("No space left on device") : null;
    }

    [TestCase("metrics.jsonl", 3, TestName = "FailedWrite_MetricsAfterEpoch2_ResumeRestoresEverything")]
    [TestCase("last.safetensors", 2, TestName = "FailedWrite_LastCheckpointOfEpoch2_ResumeRestoresEverything")]
    [TestCase("best.safetensors", 1, TestName = "FailedWrite_FirstBestCheckpoint_ResumeRestoresEverything")]
    [TestCase("report.json", 1, TestName = "FailedWrite_TestReport_ResumeRestoresEverything")]
    [TestCase("report-validation.json", 1, TestName = "FailedWrite_ValidationReport_ResumeRestoresEverything")]
    [TestCase("result.json", 1, TestName = "FailedWrite_Result_ResumeRestoresEverything")]
    [TestCase("confusion.png", 1, TestName = "FailedWrite_ConfusionPicture_ResumeRestoresEverything")]
    [TestCase("pr.png", 1, TestName = "FailedWrite_PrPicture_ResumeRestoresEverything")]
    [TestCase("curves.png", 1, TestName = "FailedWrite_CurvesPicture_ResumeRestoresEverything")]
    public void FailedWrite_ThenResume_RestoresEverything(string file, int occurrence)
    {
        string straight = _temp["straight"], run = _temp["run"];
        Assert.That(Train(straight).ExitCode, Is.EqualTo(ExitCodes.Success));

        FailWrite(file, occurrence);
        var failed = Train(run);
        AtomicFile.FaultInjection.Value = null;
        // The user's environment (a full disk) is not an internal error: exit 2, one line naming the file.
        AssertBadUsage(failed, Path.Combine(run, file.EndsWith(".safetensors", StringComparison.Ordinal) ? "checkpoints/" + file : file));
        Assert.That(failed.Errors.Single(), Does.Contain("No space left on device"));

        var resumed = Resume(run);
        Assert.That(resumed.ExitCode, Is.EqualTo(ExitCodes.Success), resumed.ToString());
        AssertComplete(run, straight);
    }

    [Test]
    public void FailedWrite_OfConfig_LeavesAFolderThatANewTrainingUses()
    {
        string run = _temp["run"];
        FailWrite("config.json", 1);
        AssertBadUsage(Train(run), Path.Combine(run, "config.json"));
        AtomicFile.FaultInjection.Value = null;
        Assert.That(new RunDirectory(run).OtherEntries(), Is.Empty, "nothing half-written is left, not even a temporary file");
        Assert.That(Train(run).ExitCode, Is.EqualTo(ExitCodes.Success));
    }

    [Test]
    public void Resume_RestoresALostOrShortMetricsFile_AndALostBestCheckpointOfTheLastEpoch()
    {
        string straight = _temp["straight"], run = _temp["run"];
        Assert.That(Train(straight).ExitCode, Is.EqualTo(ExitCodes.Success));
        // Stop after epoch 2 (the report write fails), then lose files.
        FailWrite("report.json", 1);
        Train(run, 3);
        AtomicFile.FaultInjection.Value = null;
        File.WriteAllText(Path.Combine(run, "metrics.jsonl"), File.ReadLines(Path.Combine(run, "metrics.jsonl")).First() + "\n");
        var config = new RunDirectory(run).ReadConfig();
        var last = Engine.IO.SafetensorsFile.ReadHeader(Path.Combine(run, "checkpoints/last.safetensors")).Metadata;
        bool bestIsLast = last["best_epoch"] == last["epoch"];
        if (bestIsLast) File.Delete(Path.Combine(run, "checkpoints/best.safetensors"));

        var resumed = Resume(run);
        Assert.That(resumed.ExitCode, Is.EqualTo(ExitCodes.Success), resumed.ToString());
        Assert.That(resumed.ErrorOutput, Does.Contain("restored " + Path.Combine(run, "metrics.jsonl")));
        if (bestIsLast) Assert.That(resumed.ErrorOutput, Does.Contain("restored " + Path.Combine(run, "checkpoints/best.safetensors")));
        AssertComplete(run, straight);
        Assert.That(config.Options.Epochs, Is.EqualTo(3));
    }

    [Test]
    public void Resume_SaysExactlyWhatCannotBeRestored_WhenTheSelectedModelIsLost()
    {
        // Interrupt after epoch 3 of 4 with the best epoch before the last; then lose best.safetensors.
        string run = _temp["run"];
        for (int epochs = 3; ; epochs++)
        {
            Assert.That(epochs, Is.LessThan(12), "some run selects an earlier epoch than its last");
            FailWrite("report.json", 1);
            Assert.That(Train(run, epochs).ExitCode, Is.EqualTo(ExitCodes.BadUsage));
            AtomicFile.FaultInjection.Value = null;
            var meta = Engine.IO.SafetensorsFile.ReadHeader(Path.Combine(run, "checkpoints/last.safetensors")).Metadata;
            if (meta["best_epoch"] != meta["epoch"]) break;
            Directory.Delete(run, recursive: true);
        }
        File.Delete(Path.Combine(run, "checkpoints/best.safetensors"));
        var resumed = Resume(run);
        AssertBadUsage(resumed, Path.Combine(run, "checkpoints/best.safetensors") + ": it is missing; it must hold the model of epoch");
        Assert.That(resumed.Errors.Single(), Does.Contain("those weights exist nowhere else"));
    }

    [Test]
    public void Resume_OnOtherData_IsRefusedNamingBothFingerprints_UnlessAllowed()
    {
        string run = _temp["run"];
        FailWrite("report.json", 1);
        Train(run, 2);
        AtomicFile.FaultInjection.Value = null;
        string recorded = new RunDirectory(run).ReadConfig().Dataset.Fingerprint!;
        const string other = "synthetic:per-class=16,size=36,val=3,test=3,seed=4";
        var refused = Resume(run, "--data", other);
        AssertBadUsage(refused, "the data differs from the run's");
        Assert.That(refused.Errors.Single(), Does.Contain(recorded[..16]).And.Contain(other).And.Contain("--allow-data-change"));

        var allowed = Resume(run, "--data", other, "--allow-data-change");
        Assert.That(allowed.ExitCode, Is.EqualTo(ExitCodes.Success), allowed.ToString());
        Assert.That(allowed.ErrorOutput, Does.Contain("warning: the data differs from the run's"));
        AssertBadUsage(Resume(run, "--classes", "a,b"), "--classes cannot change a run");
    }

    [Test]
    public void ARunTrainedFromOneFolder_ResumesAndEvaluatesFromAnother()
    {
        // Image-folder data named by a relative path: config.json keeps it as typed and as an absolute path.
        string data = _temp["work/faces"], run = _temp["work/runs/r"];
        Assert.That(Run("synth", "--out", data, "--per-class", "16", "--val-per-class", "3", "--test-per-class", "3", "--size", "36").ExitCode, Is.Zero);
        string before = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = _temp["work"];
            FailWrite("report.json", 1);
            Assert.That(Run(["train", "--data", "faces", "--epochs", "2", "--out", "runs/r", .. Model]).ExitCode, Is.EqualTo(ExitCodes.BadUsage));
            AtomicFile.FaultInjection.Value = null;
            var d = new RunDirectory(run).ReadConfig().Dataset;
            Assert.That(d.Source, Is.EqualTo("faces"));
            Assert.That(d.SourcePath, Is.EqualTo(data));

            Environment.CurrentDirectory = _temp.Path;
            var resumed = Resume(run);
            Assert.That(resumed.ExitCode, Is.EqualTo(ExitCodes.Success), resumed.ToString());
            var eval = Run("eval", "--run", run, "--device", "cpu");
            Assert.That(eval.ExitCode, Is.EqualTo(ExitCodes.Success), eval.ToString());
        }
        finally
        {
            Environment.CurrentDirectory = before;
        }
    }

    [Test]
    public void OutThatIsAFile_OrNotEmptyWithoutARun_OrUnwritable_IsRefusedWithExit2NamingIt()
    {
        string file = _temp["file"];
        File.WriteAllText(file, "x");
        AssertBadUsage(Train(file), $"--out {file} is a file");

        string notes = _temp["notes"];
        Directory.CreateDirectory(notes);
        File.WriteAllText(Path.Combine(notes, "todo.txt"), "x");
        AssertBadUsage(Train(notes), $"--out {notes} is a folder that is not empty and holds no run");
        Assert.That(Directory.GetFileSystemEntries(notes), Has.Length.EqualTo(1), "nothing written into it");

        string finished = _temp["finished"];
        Assert.That(Train(finished, 1).ExitCode, Is.Zero);
        AssertBadUsage(Train(finished, 1), $"--out {finished} already holds a run: resume it");

        // A folder the system refuses (EPERM even for root): the user's environment, exit 2 with the path.
        if (OperatingSystem.IsLinux() && Directory.Exists("/sys/kernel"))
            AssertBadUsage(Train("/sys/dicc-test-run", 1), "/sys/dicc-test-run");
    }

    [Test]
    public void AStaleLockOfADeadProcess_IsTakenOverWithAWarning()
    {
        string run = _temp["run"];
        Directory.CreateDirectory(run);
        using (var gone = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!)
        {
            gone.WaitForExit();
            File.WriteAllText(Path.Combine(run, RunLock.FileName),
                $"pid={gone.Id}\nhost={Environment.MachineName}\nprocess_start=0\nacquired=0\ntoken=abc\n");
        }
        var train = Train(run, 1);
        Assert.That(train.ExitCode, Is.EqualTo(ExitCodes.Success), train.ToString());
        Assert.That(train.ErrorOutput, Does.Contain("took over the stale lock of process"));
    }

    private static List<EpochMetrics> ReadMetricsOrNone(string run)
    {
        try { return new RunDirectory(run).ReadMetrics(); }
        catch (Exception e) when (e is IOException or InputException) { return []; }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private const int SigTerm = 15;

    /// <summary>The dicc command as a child process (the apphost copied beside the tests), on the runtime running the tests.</summary>
    private static Process StartDicc(params string[] args)
    {
        string host = Path.Combine(TestContext.CurrentContext.TestDirectory, OperatingSystem.IsWindows() ? "dicc.exe" : "dicc");
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        // .../dotnet/shared/Microsoft.NETCore.App/<version>/ -> .../dotnet
        start.Environment["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        return Process.Start(start)!;
    }

    /// <summary>
    /// SIGTERM (what schedulers and docker stop send) to a real training process is Ctrl-C: the checkpoint is saved,
    /// the exit code is 143, the lock is released, and --resume finishes the run. While it trains, a second training
    /// of the same directory is refused with exit 2, naming the first's process.
    /// </summary>
    [Test]
    public void Sigterm_SavesACheckpointAndExits143_AndASecondTrainingOfTheDirectoryIsRefused()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) Assert.Ignore("POSIX signals");
        string run = _temp["run"];
        // About two seconds an epoch on two cores: the child is mid-run when the checks below come.
        const int epochs = 8;
        using var child = StartDicc(["train", "--data", "synthetic:per-class=150,size=36,val=3,test=3,seed=3", "--epochs", epochs.ToString(),
            "--out", run, .. Model]);
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        // The first epoch is done when metrics.jsonl has its line (the file, not the pipe, says when).
        var clock = Stopwatch.StartNew();
        while (!child.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3) && ReadMetricsOrNone(run).Count < 1) Thread.Sleep(50);
        if (child.HasExited)
            Assert.Fail($"the child should still be training; it exited with {child.ExitCode}:\n{stdout.Result}\n{stderr.Result}");

        var second = Train(run, epochs);
        AssertBadUsage(second, $"{run}: in use by another training run (process {child.Id} on ");

        Assert.That(Kill(child.Id, SigTerm), Is.Zero, "kill(SIGTERM)");
        Assert.That(child.WaitForExit(TimeSpan.FromMinutes(2)), "the child stops");
        Assert.That(child.ExitCode, Is.EqualTo(StopSignals.TerminateExitCode), stdout.Result + stderr.Result);
        Assert.That(stderr.Result, Does.Contain("checkpoint saved to " + Path.Combine(run, "checkpoints", "last.safetensors")));
        Assert.That(File.Exists(Path.Combine(run, RunLock.FileName)), Is.False, "the lock is released");
        int done = new RunDirectory(run).ReadMetrics().Count;
        Assert.That(done, Is.LessThan(epochs), "stopped early");

        var resumed = Resume(run);
        Assert.That(resumed.ExitCode, Is.EqualTo(ExitCodes.Success), resumed.ToString());
        Assert.That(new RunDirectory(run).ReadMetrics().Select(m => m.Epoch), Is.EqualTo(Enumerable.Range(1, epochs)));
    }

    [Test]
    public void Json_StandardOutputIsOnlyJson_WarningsGoToStandardError()
    {
        // No test split: a warning at the start, on standard error; standard output stays one JSON object per line.
        var run = Run(["train", "--data", "synthetic:per-class=16,size=36,val=3,test=0,seed=3", "--epochs", "2", "--json", "--out", _temp["run"], .. Model]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        Assert.That(run.ErrorOutput, Does.Contain("warning: synthetic:per-class=16,size=36,val=3,test=0,seed=3 has no test split"));
        var lines = run.Lines.Where(l => l.Length > 0).ToArray();
        Assert.That(lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("event").GetString()), Is.EqualTo(new[] { "epoch", "epoch", "result" }));
    }

    [Test]
    public void MetricsFileAndJsonEpochs_UseOneNumberingAndOneVocabulary()
    {
        var run = Run(["train", "--data", Data, "--epochs", "2", "--json", "--out", _temp["run"], .. Model]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        var events = run.Lines.Where(l => l.Contains("\"epoch\"", StringComparison.Ordinal) && l.Contains("\"event\":\"epoch\"", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var file = File.ReadAllLines(_temp["run/metrics.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.That(events, Has.Length.EqualTo(2));
        for (int i = 0; i < 2; i++)
        {
            var keys = file[i].EnumerateObject().Select(p => p.Name).ToArray();
            Assert.That(events[i].EnumerateObject().Select(p => p.Name).Except(["event", "run"]), Is.EqualTo(keys), "the same names");
            Assert.That(file[i].GetProperty("epoch").GetInt32(), Is.EqualTo(i + 1), "epochs count from 1 in the file");
            Assert.That(events[i].GetProperty("epoch").GetInt32(), Is.EqualTo(i + 1), "and in --json");
            Assert.That(events[i].GetProperty("loss").GetDouble(), Is.EqualTo(file[i].GetProperty("loss").GetDouble()));
        }
        var console = Run(["train", "--data", Data, "--epochs", "1", "--out", _temp["console"], .. Model]);
        Assert.That(console.Lines.Single(l => l.StartsWith("console   1/1", StringComparison.Ordinal)),
            Does.Contain(" loss ").And.Contain(" val_acc ").And.Contain(" val_bal_acc "), "the console uses the file's names");
    }
}
