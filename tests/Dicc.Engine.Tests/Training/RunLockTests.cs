using System.Diagnostics;
using Dicc.Engine.Training;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Training;

/// <summary>The run directory's exclusive lock: one owner at a time, released on dispose, stale locks taken over.</summary>
public class RunLockTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public void OfManyAcquirersStartingTogether_ExactlyOneWins_TheOthersAreToldWho()
    {
        string run = _temp["run"];
        const int contenders = 8;
        var start = new Barrier(contenders);
        var outcomes = new object?[contenders];
        var threads = Enumerable.Range(0, contenders).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            try { outcomes[i] = RunLock.Acquire(run); }
            catch (RunDirectoryInUseException e) { outcomes[i] = e; }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        var winners = outcomes.OfType<RunLock>().ToList();
        var refused = outcomes.OfType<RunDirectoryInUseException>().ToList();
        Assert.That(winners, Has.Count.EqualTo(1));
        Assert.That(refused, Has.Count.EqualTo(contenders - 1));
        foreach (var e in refused)
        {
            Assert.That(e.OwnerProcessId, Is.EqualTo(Environment.ProcessId));
            Assert.That(e.Message, Does.StartWith($"{run}: in use by another training run (process {Environment.ProcessId} on "));
            Assert.That(e.Message, Does.Contain(Path.Combine(run, RunLock.FileName)));
        }
        winners[0].Dispose();
        Assert.That(File.Exists(Path.Combine(run, RunLock.FileName)), Is.False, "released on dispose");
        using var again = RunLock.Acquire(run);
        Assert.That(again.StaleNote, Is.Null);
    }

    private static int DeadProcessId()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    [Test]
    public void ALockOfAProcessThatIsGone_OrOfAReusedProcessId_OrHalfWritten_IsStale()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) Assert.Ignore("needs /bin/true");
        string run = _temp["run"];
        Directory.CreateDirectory(run);
        string file = Path.Combine(run, RunLock.FileName);

        File.WriteAllText(file, $"pid={DeadProcessId()}\nhost={Environment.MachineName}\nprocess_start=0\nacquired=0\ntoken=t1\n");
        using (var taken = RunLock.Acquire(run))
            Assert.That(taken.StaleNote, Does.StartWith("took over the stale lock of process"));

        // Our own process id, but a process start time that is not ours: the id was reused.
        File.WriteAllText(file, $"pid={Environment.ProcessId}\nhost={Environment.MachineName}\nprocess_start={new DateTime(2001, 1, 1).Ticks}\nacquired=0\ntoken=t2\n");
        using (var taken = RunLock.Acquire(run))
            Assert.That(taken.StaleNote, Does.Contain("now belongs to another process"));

        // A writer that died between creating and filling the file.
        File.WriteAllText(file, "");
        using (var taken = RunLock.Acquire(run))
            Assert.That(taken.StaleNote, Does.Contain("unfinished lock file"));
    }

    [Test]
    public void ALockOnAnotherHost_CannotBeCheckedAndIsRespected()
    {
        string run = _temp["run"];
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, RunLock.FileName), "pid=1\nhost=elsewhere-42\nprocess_start=0\nacquired=0\ntoken=t\n");
        var e = Assert.Throws<RunDirectoryInUseException>(() => RunLock.Acquire(run))!;
        Assert.That(e.Message, Does.Contain("process 1 on elsewhere-42"));
    }

    [Test]
    public void Dispose_LeavesALockThatIsNoLongerItsOwn()
    {
        string run = _temp["run"];
        var held = RunLock.Acquire(run);
        string file = Path.Combine(run, RunLock.FileName);
        string other = $"pid=1\nhost=elsewhere\nprocess_start=0\nacquired=0\ntoken=someone-else\n";
        File.WriteAllText(file, other);
        held.Dispose();
        Assert.That(File.ReadAllText(file), Is.EqualTo(other));
    }

    [Test]
    public void AFileInsteadOfADirectory_IsNamed()
    {
        File.WriteAllText(_temp["x"], "");
        var e = Assert.Throws<InputException>(() => RunLock.Acquire(_temp["x"]))!;
        Assert.That(e.Parameter, Is.EqualTo("run"));
        Assert.That(e.Message, Is.EqualTo($"run {_temp["x"]} is a file; a run directory is expected."));
    }

    [Test]
    public void RunDirectoryLock_IsHeldUntilDisposed_AndATrainerRunsUnderIt()
    {
        var run = new RunDirectory(_temp["run"]);
        using (run.Lock())
        {
            Assert.That(run.HeldLock, Is.Not.Null);
            Assert.That(RunLock.ActiveOwner(run.Path), Is.EqualTo(Environment.ProcessId));
            Assert.Throws<RunDirectoryInUseException>(() => new RunDirectory(run.Path).Lock(), "another object, the same directory");
        }
        Assert.That(run.HeldLock, Is.Null);
        Assert.That(RunLock.ActiveOwner(run.Path), Is.Null);
    }
}
