using System.Diagnostics;
using System.Runtime.InteropServices;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Sweep;
using Dicc.Cli.Tests.Support;
using Dicc.Engine.Tests.Support;
using Dicc.Engine.Training;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>
/// dicc sweep on this machine: the cells prepared before anything trains, two workers each running a cell in its own
/// process, a re-run that trains nothing, the table from the sweep folder, a grid that changes under a sweep, a cell
/// that fails, and SIGTERM sent to a real sweep process mid-run (its cells save their checkpoints; the next run
/// resumes them to the results of an uninterrupted sweep).
/// </summary>
[NonParallelizable]
public class SweepLocalTests
{
    private const int Epochs = 3;
    private TempDirectory _temp = null!;
    private string _grid = null!, _reference = null!;

    /// <summary>One uninterrupted sweep, the reference of the tests below.</summary>
    [OneTimeSetUp]
    public void TrainTheReferenceSweep()
    {
        _temp = new TempDirectory();
        _grid = _temp["grid.json"];
        File.WriteAllText(_grid, SweepSupport.Grid(Epochs));
        _reference = _temp["reference"];
        var run = Run("sweep", "--grid", _grid, "--out", _reference, "--parallel", "2");
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
    }

    [OneTimeTearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public void TheSweep_TrainsEveryCell_InItsOwnProcess_WithItsLogAndAttempt()
    {
        var plan = SweepPlan.Read(_reference)!;
        Assert.That(plan.Cells.Select(c => c.Directory), Is.EqualTo(SweepSupport.Cells));
        var pids = new HashSet<int>();
        foreach (var cell in plan.Cells)
        {
            var state = CellStates.Of(plan, cell);
            Assert.That(state.Phase, Is.EqualTo(CellPhase.Finished), state.ToString());
            Assert.That(state.EpochsDone, Is.EqualTo(Epochs));
            Assert.That(state.Attempts, Is.EqualTo(1));
            Assert.That(state.LastAttempt!.ExitCode, Is.Zero);
            pids.Add(state.LastAttempt.ProcessId);
            Assert.That(File.ReadAllText(plan.LogFile(cell.Index)), Does.Contain($"dicc sweep: cell {cell.Index} ({cell.Directory})"));
            var config = new RunDirectory(plan.RunPath(cell)).ReadConfig();
            Assert.That(config.Options.Seed, Is.EqualTo(ulong.Parse(cell.Label("seed"))));
            Assert.That(config.Dataset.Name, Is.EqualTo("faces"));
            Assert.That(config.Device, Does.StartWith("CPU"), "the trainer wrote its device over the prepared one");
        }
        Assert.That(pids, Has.Count.EqualTo(4), "a process per cell");
        Assert.That(pids, Does.Not.Contain(Environment.ProcessId));
    }

    [Test]
    public void ARerun_TrainsNothing_AndTheTableComesFromTheSweepFolder()
    {
        var again = Run("sweep", "--grid", _grid, "--out", _reference);
        Assert.That(again.ExitCode, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(again.Output, Does.Contain("0 prepared now").And.Contain("All 4 selected cell(s) are finished"));
        var plan = SweepPlan.Read(_reference)!;
        Assert.That(plan.Cells.Select(c => CellStates.Of(plan, c).Attempts), Is.All.EqualTo(1), "no cell ran again");

        var compare = Run("compare", _reference);
        Assert.That(compare.ExitCode, Is.EqualTo(ExitCodes.Success), compare.ToString());
        Assert.That(compare.Output, Does.Contain("best of 2").And.Contain("4 run(s), 1 configuration(s)"));

        var report = Run("sweep", "--out", _reference, "--report");
        Assert.That(report.ExitCode, Is.EqualTo(ExitCodes.Success), report.ToString());
        string csv = File.ReadAllText(Path.Combine(_reference, "report.csv"));
        Assert.That(csv.Split('\n')[0], Is.EqualTo("dataset,beta,rule,method,metric,n,mean,std,min,max,best,best_seed,seeds,settings"));
        Assert.That(csv, Does.Contain("faces,").And.Contain(",baseline,accuracy,2,").And.Contain(",dicc,accuracy,2,"));
        Assert.That(File.ReadAllText(Path.Combine(_reference, "report.md")), Does.Contain("| faces |"));

        var status = Run("sweep", "--out", _reference, "--status");
        Assert.That(status.Output, Does.Contain("4 cell(s): 4 finished.").And.Contain("Every cell is finished."), status.ToString());
    }

    [Test]
    public void AGridThatChanges_AddsItsNewCells_ButNeverChangesAPreparedOne()
    {
        string sweep = _temp["changes"];
        var first = Run("sweep", "--grid", _grid, "--out", sweep, "--dry-run");
        Assert.That(first.ExitCode, Is.EqualTo(ExitCodes.Success), first.ToString());
        Assert.That(first.Output, Does.Contain("4 cell(s) under").And.Contain("nothing written"));
        Assert.That(Directory.Exists(sweep), Is.False, "--dry-run writes nothing");

        // Prepare without training: what a sweep does first.
        string grid = _temp["changes.json"];
        File.WriteAllText(grid, SweepSupport.Grid(Epochs));
        var plan = SweepPlan.Merge(sweep, grid, SweepGrid.Load(grid));
        plan.Write();
        Assert.That(plan.Prepare(new ErrorConsole(Spectre.Console.AnsiConsole.Console)), Is.EqualTo(4));
        foreach (var cell in plan.Cells)
        {
            var config = new RunDirectory(plan.RunPath(cell)).ReadConfig();
            Assert.That(config.Device, Is.EqualTo(SweepPlan.NotStartedDevice), "prepared, not trained");
            Assert.That(config.Dataset.Fingerprint, Is.Not.Null);
        }
        Assert.That(ConfigOf(1).SubclassCounts, Is.Not.Null, "the DICC cell's plan is resolved when it is prepared");

        // More seeds: the new cells come after the old ones, whose numbers stay.
        File.WriteAllText(grid, SweepSupport.Grid(Epochs).Replace("\"seeds\": 2", "\"seeds\": 3"));
        var dry = Run("sweep", "--grid", grid, "--out", sweep, "--dry-run", "--json");
        Assert.That(dry.ExitCode, Is.EqualTo(ExitCodes.Success), dry.ToString());
        var extended = SweepPlan.Merge(sweep, grid, SweepGrid.Load(grid));
        Assert.That(extended.Cells.Select(c => c.Directory).Take(4), Is.EqualTo(SweepSupport.Cells));
        Assert.That(extended.Cells.Skip(4).Select(c => (c.Index, c.Directory)),
            Is.EqualTo(new[] { (4, "faces/baseline-none/seed-3"), (5, "faces/dicc-none/seed-3") }));

        // Another learning rate: the prepared cells would hold results of other settings.
        File.WriteAllText(grid, SweepSupport.Grid(Epochs).Replace("\"lr\": 0.01", "\"lr\": 0.02"));
        AssertBadUsage(Run("sweep", "--grid", grid, "--out", sweep),
            $"cell 0 (faces/baseline-none/seed-1) of the sweep in {sweep} was prepared with");
        // A cell the grid lost.
        File.WriteAllText(grid, SweepSupport.Grid(Epochs).Replace("\"seeds\": 2", "\"seeds\": 1"));
        AssertBadUsage(Run("sweep", "--grid", grid, "--out", sweep), "has cell 2 (faces/baseline-none/seed-2), which this grid no longer has");
        // A run directory whose config.json says otherwise than the grid (edited by hand).
        File.WriteAllText(grid, SweepSupport.Grid(Epochs));
        string configFile = Path.Combine(plan.RunPath(plan.Cells[3]), "config.json");
        File.WriteAllText(configFile, File.ReadAllText(configFile).Replace("\"epochs\": 3", "\"epochs\": 5"));
        AssertBadUsage(Run("sweep", "--grid", grid, "--out", sweep),
            $"cell 3 (faces/dicc-none/seed-2): its {configFile} has --epochs 5, the grid gives 3");

        RunConfig ConfigOf(int i) => new RunDirectory(plan.RunPath(plan.Cells[i])).ReadConfig();
    }

    [Test]
    public void ACellThatCannotTrain_IsFoundBeforeAnythingTrains()
    {
        string grid = _temp["bad-crop.json"], sweep = _temp["bad-crop"];
        // The images are 36x36; a 40x40 crop fits the first dataset only.
        File.WriteAllText(grid, $$"""
            {"datasets": ["synthetic:per-class=8,beta=1,size=48,val=2,test=2", "{{SweepSupport.Data}}"], "crop": 40, "arch": "vgg11", "width": 0.125}
            """);
        var run = Run("sweep", "--grid", grid, "--out", sweep);
        AssertBadUsage(run, "cell 1 (");
        Assert.That(run.Errors.Single(), Does.Contain("images are 36x36, smaller than the 40x40 crop"));
        Assert.That(Directory.GetFiles(sweep, "metrics.jsonl", SearchOption.AllDirectories), Is.Empty, "nothing trained");
    }

    [Test]
    public void AFailedCell_IsReportedWithItsError_AndTheSweepExits1()
    {
        string grid = _temp["diverges.json"], sweep = _temp["diverges"];
        File.WriteAllText(grid, $$"""{"data": "{{SweepSupport.Data}}", "arch": "vgg11", "width": 0.125, "crop": 32, "epochs": 1, "lr": 1e12}""");
        var run = Run("sweep", "--grid", grid, "--out", sweep);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.InternalError), run.ToString());
        Assert.That(run.Errors.Single(), Does.Contain("cell 0 (synthetic/baseline-none/seed-1) failed with exit 1: ").And.Contain("training stopped"));
        var status = Run("sweep", "--out", sweep, "--status");
        Assert.That(status.Output, Does.Contain("cell 0: failed: exit 1: ").And.Contain("Run them again: dicc sweep --out"), status.ToString());
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>
    /// SIGTERM to a real sweep process while both its cells train: each cell saves its checkpoint (exit 143 in its
    /// attempts), the sweep exits 143; the next run resumes them, and every cell ends as in the uninterrupted sweep.
    /// </summary>
    [Test]
    public void Sigterm_ToTheSweep_CheckpointsItsCells_AndTheNextRunResumesThemExactly()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("POSIX signals and sessions");
        string sweep = _temp["stopped"];
        string host = Path.Combine(TestContext.CurrentContext.TestDirectory, "dicc");
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "sweep", "--grid", _grid, "--out", sweep, "--parallel", "2" }) start.ArgumentList.Add(a);
        start.Environment["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        using var child = Process.Start(start)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        // Wait until both first cells have written an epoch: both are mid-run.
        string a0 = Path.Combine(sweep, SweepSupport.Cells[0]), a1 = Path.Combine(sweep, SweepSupport.Cells[1]);
        SlurmCluster.WaitFor(() => child.HasExited || (Epochs1(a0) >= 1 && Epochs1(a1) >= 1), "both cells' first epochs", TimeSpan.FromMinutes(5));
        // (Not stdout.Result in a message given before the sweep ends: it waits for the sweep's output to close.)
        if (child.HasExited) Assert.Fail($"the sweep should still be running; it exited with {child.ExitCode}:\n{stdout.Result}{stderr.Result}");
        Assert.That(Kill(child.Id, 15), Is.Zero, "kill(SIGTERM)");
        Assert.That(child.WaitForExit(TimeSpan.FromMinutes(2)), "the sweep stops");
        Assert.That(child.ExitCode, Is.EqualTo(StopSignals.TerminateExitCode), stdout.Result + stderr.Result);

        var plan = SweepPlan.Read(sweep)!;
        var stopped = plan.Cells.Take(2).Select(c => CellStates.Of(plan, c)).ToList();
        foreach (var s in stopped.Where(s => s.Phase != CellPhase.Finished))
        {
            Assert.That(s.Phase, Is.EqualTo(CellPhase.Interrupted), s.ToString());
            Assert.That(s.LastAttempt!.ExitCode, Is.EqualTo(StopSignals.TerminateExitCode), "the cell got the SIGTERM and saved its checkpoint");
            Assert.That(File.Exists(Path.Combine(plan.RunPath(s.Cell), RunLock.FileName)), Is.False, "its lock is released");
        }
        Assert.That(stopped.Count(s => s.Phase == CellPhase.Interrupted), Is.GreaterThanOrEqualTo(1), "a cell was stopped mid-run");
        Assert.That(plan.Cells.Skip(2).Select(c => CellStates.Of(plan, c).Phase), Is.All.EqualTo(CellPhase.NotStarted), "no cell started after the stop");

        var resumed = Run("sweep", "--out", sweep, "--parallel", "2");
        Assert.That(resumed.ExitCode, Is.EqualTo(ExitCodes.Success), resumed.ToString());
        Assert.That(resumed.Output, Does.Contain("(resuming after epoch"), resumed.ToString());
        foreach (var cell in SweepSupport.Cells) SweepSupport.AssertSameResults(Path.Combine(sweep, cell), Path.Combine(_reference, cell));
    }

    private static int Epochs1(string run)
    {
        try { return new RunDirectory(run).ReadMetrics().Count; }
        catch (Exception e) when (e is IOException or Engine.InputException) { return 0; }
    }
}
