using System.Diagnostics;
using System.Text.Json;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Tests.Support;
using Dicc.Engine.Tests.Support;
using Dicc.Engine.Training;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>
/// dicc sweep on a real Slurm cluster: a single-node cluster brought up from a temporary folder (munged, MariaDB and
/// slurmdbd for the accounting sacct reads, slurmctld, slurmd), a sweep of 2 methods x 2 seeds submitted as a job
/// array, one task cancelled mid-run (scancel: Slurm's SIGTERM, as on preemption), the cancelled cell resubmitted
/// alone, and every cell's results compared with the same sweep run by the local executor: identical. As root
/// where the packages are installed (CI); skipped with the reason elsewhere, failed instead under CI.
/// </summary>
public class SlurmSweepTests
{
    private const int Epochs = 4;
    private TempDirectory _temp = null!;
    private SlurmCluster? _cluster;
    private string? _slurmConf;

    [SetUp]
    public void SetUp()
    {
        if (SlurmCluster.WhyNot() is { } why)
        {
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))) Assert.Fail($"the Slurm cluster must run in CI: {why}");
            Assert.Ignore(why);
        }
        _temp = new TempDirectory();
        _slurmConf = Environment.GetEnvironmentVariable("SLURM_CONF");
    }

    [TearDown]
    public void TearDown()
    {
        Environment.SetEnvironmentVariable("SLURM_CONF", _slurmConf);
        _cluster?.Dispose();
        _temp?.Dispose();
    }

    private string Submitted(CliRun run)
    {
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        var line = run.Lines.Single(l => l.StartsWith("Submitted job ", StringComparison.Ordinal));
        return line["Submitted job ".Length..].Split(':')[0];
    }

    private void WaitForJob(string job, TimeSpan timeout) =>
        SlurmCluster.WaitFor(() => _cluster!.Command("squeue", "-h", "-j", job).Output.Trim().Length == 0, $"job {job} to leave the queue", timeout);

    private static JsonElement Status(string sweep)
    {
        var status = Run("sweep", "--out", sweep, "--status", "--json");
        Assert.That(status.ExitCode, Is.EqualTo(ExitCodes.Success), status.ToString());
        return JsonDocument.Parse(status.Output).RootElement;
    }

    /// <summary><see cref="Status"/> once every task has a Slurm state (at most 60 s).</summary>
    private static JsonElement StatusOnceAccounted(string sweep)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var status = Status(sweep);
            bool accounted = status.GetProperty("cells").EnumerateArray()
                .All(c => c.GetProperty("slurm").GetProperty("state").GetString() != "?");
            if (accounted || clock.Elapsed > TimeSpan.FromSeconds(60)) return status;
            Thread.Sleep(1000);
        }
    }

    [Test]
    public void Sweep_OnASingleNodeCluster_ACancelledTaskResumesExactly_AndEveryResultEqualsTheLocalSweeps()
    {
        var clock = Stopwatch.StartNew();
        string grid = _temp["grid.json"], local = _temp["local"], slurm = _temp["slurm"];
        File.WriteAllText(grid, SweepSupport.Grid(Epochs));

        // The reference: the same sweep on this machine's workers.
        var reference = Run("sweep", "--grid", grid, "--out", local, "--parallel", "2");
        Assert.That(reference.ExitCode, Is.EqualTo(ExitCodes.Success), reference.ToString());
        TestContext.Progress.WriteLine($"local sweep: {clock.Elapsed.TotalSeconds:0} s");

        if (OperatingSystem.IsWindows()) return; // (WhyNot has skipped it: Linux only)
        _cluster = SlurmCluster.Start(_temp["cluster"]);
        Environment.SetEnvironmentVariable("SLURM_CONF", _cluster.ConfigFile);
        TestContext.Progress.WriteLine($"cluster up: {clock.Elapsed.TotalSeconds:0} s");

        string job = Submitted(Run("sweep", "--grid", grid, "--out", slurm, "--executor", "slurm"));
        // Submitting again while the tasks are queued or running submits nothing: no cell runs twice at once.
        var again = Run("sweep", "--out", slurm, "--executor", "slurm");
        Assert.That(again.ExitCode, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(again.Output, Does.Contain("Nothing to submit"), again.ToString());

        // Cancel the task of cell 1 (DICC, seed 1) once its first epoch is written: mid-run.
        const int victim = 1;
        string victimRun = Path.Combine(slurm, SweepSupport.Cells[victim]);
        SlurmCluster.WaitFor(() => SafeMetrics(victimRun) >= 1, "cell 1's first epoch", TimeSpan.FromMinutes(5));
        var cancel = _cluster.Command("scancel", $"{job}_{victim}");
        Assert.That(cancel.Code, Is.Zero, cancel.Error);
        WaitForJob(job, TimeSpan.FromMinutes(5));
        TestContext.Progress.WriteLine($"first job done: {clock.Elapsed.TotalSeconds:0} s");

        string log = File.ReadAllText(Path.Combine(slurm, "logs", $"cell-{victim}.log"));
        Assert.That(log, Does.Contain("checkpoint saved to"), "the cancelled task saved its checkpoint:\n" + log);
        int doneWhenCancelled = new RunDirectory(victimRun).ReadMetrics().Count;
        Assert.That(doneWhenCancelled, Is.LessThan(Epochs), "cancelled mid-run");

        // --status: the run directories and Slurm's accounting agree, once slurmdbd has recorded the ended tasks
        // (it does so asynchronously; until then --status shows their Slurm state as "?").
        var status = StatusOnceAccounted(slurm);
        Assert.That(status.GetProperty("slurm_source").GetString(), Is.EqualTo("sacct"));
        var cells = status.GetProperty("cells").EnumerateArray().ToArray();
        for (int i = 0; i < cells.Length; i++)
        {
            var slurmState = cells[i].GetProperty("slurm").GetProperty("state").GetString();
            if (i == victim)
            {
                Assert.That(cells[i].GetProperty("state").GetString(), Is.EqualTo("interrupted"), cells[i].ToString());
                Assert.That(slurmState, Is.EqualTo("CANCELLED"), cells[i].ToString());
            }
            else
            {
                Assert.That(cells[i].GetProperty("state").GetString(), Is.EqualTo("finished"), cells[i].ToString());
                Assert.That(slurmState, Is.EqualTo("COMPLETED"), cells[i].ToString());
            }
        }
        var table = Run("sweep", "--out", slurm, "--status");
        Assert.That(table.Output, Does.Contain($"Not finished and not queued: cells {victim}."), table.ToString());

        // Without accounting, sacct says so and the status comes from the run directories and squeue.
        Environment.SetEnvironmentVariable("SLURM_CONF", _cluster.ConfigFileWithoutAccounting);
        var fallback = Status(slurm);
        Assert.That(fallback.GetProperty("slurm_source").GetString(), Does.StartWith("squeue (Slurm accounting is not available"));
        Assert.That(fallback.GetProperty("cells")[victim].GetProperty("state").GetString(), Is.EqualTo("interrupted"));
        Environment.SetEnvironmentVariable("SLURM_CONF", _cluster.ConfigFile);

        // Resubmitting submits the cancelled cell alone; it resumes from its checkpoint.
        var resubmit = Run("sweep", "--out", slurm, "--executor", "slurm");
        string second = Submitted(resubmit);
        Assert.That(resubmit.Output, Does.Contain($"1 array task(s), cells {victim} "), resubmit.ToString());
        WaitForJob(second, TimeSpan.FromMinutes(5));
        TestContext.Progress.WriteLine($"resubmitted cell done: {clock.Elapsed.TotalSeconds:0} s");
        log = File.ReadAllText(Path.Combine(slurm, "logs", $"cell-{victim}.log"));
        Assert.That(log, Does.Contain($"resuming after epoch {doneWhenCancelled} of {Epochs}").Or.Contain("Resuming"), log);

        var done = Status(slurm).GetProperty("cells").EnumerateArray().ToArray();
        Assert.That(done.Select(c => c.GetProperty("state").GetString()), Is.All.EqualTo("finished"));
        Assert.That(done[victim].GetProperty("slurm").GetProperty("task").GetString(), Is.EqualTo($"{second}_{victim}"));
        Assert.That(done[victim].GetProperty("attempts").GetInt32(), Is.EqualTo(2));

        // Every cell computed what the local sweep computed, the resumed one included; and the tables agree.
        foreach (var cell in SweepSupport.Cells) SweepSupport.AssertSameResults(Path.Combine(slurm, cell), Path.Combine(local, cell));
        Assert.That(Run("sweep", "--out", slurm, "--report").ExitCode, Is.EqualTo(ExitCodes.Success));
        Assert.That(Run("sweep", "--out", local, "--report").ExitCode, Is.EqualTo(ExitCodes.Success));
        Assert.That(File.ReadAllText(Path.Combine(slurm, "report.csv")), Is.EqualTo(File.ReadAllText(Path.Combine(local, "report.csv"))));
        TestContext.Progress.WriteLine($"total: {clock.Elapsed.TotalSeconds:0} s");
    }

    private static int SafeMetrics(string run)
    {
        try { return new RunDirectory(run).ReadMetrics().Count; }
        catch (Exception e) when (e is IOException or Engine.InputException) { return 0; }
    }
}
