using Dicc.Engine.Backends.Cpu;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Cpu;

public class CpuWorkersTests
{
    /// <summary>Counts how often each part ran; optionally fails on one part or nests another run.</summary>
    private sealed class CountingJob(int parts, int failOn = -1, CountingJob? nested = null) : ICpuJob
    {
        public readonly int[] Runs = new int[parts];

        public void RunPart(int part)
        {
            Interlocked.Increment(ref Runs[part]);
            if (part == failOn) throw new InvalidOperationException($"part {part} failed");
            if (nested is not null) CpuWorkers.Run(nested, nested.Runs.Length);
            Thread.SpinWait(2000);
        }
    }

    [Test]
    public void EveryPartRunsExactlyOnce_AcrossManyJobs()
    {
        for (int rep = 0; rep < 200; rep++)
        {
            int parts = 1 + rep % 17;
            var job = new CountingJob(parts);
            CpuWorkers.Run(job, parts);
            Assert.That(job.Runs, Is.All.EqualTo(1), $"job {rep} with {parts} parts");
        }
    }

    /// <summary>Parts that take almost no time: the workers often look late, after the caller has moved on.</summary>
    private sealed class TinyJob(int parts) : ICpuJob
    {
        public readonly int[] Runs = new int[parts];

        public void RunPart(int part) => Interlocked.Increment(ref Runs[part]);
    }

    [Test]
    public void TinyJobsBackToBack_RunEveryPartExactlyOnce_AndPausesBetweenThemDoNot()
    {
        // Back to back, a worker still spinning or just woken for one job must claim nothing of the next; with
        // pauses, the workers block and must be woken.
        for (int rep = 0; rep < 20000; rep++)
        {
            int parts = 2 + rep % 9;
            var job = new TinyJob(parts);
            CpuWorkers.Run(job, parts, maxThreads: 1 + rep % 3);
            if (job.Runs.Any(r => r != 1)) Assert.Fail($"job {rep} with {parts} parts ran them {string.Join(",", job.Runs)} times");
            if (rep % 2000 == 1999) Thread.Sleep(5);
        }
    }

    [Test]
    public void MaxThreadsOne_RunsEveryPartOnTheCaller()
    {
        int caller = Environment.CurrentManagedThreadId;
        var threads = new int[6];
        var job = new ThreadRecordingJob(threads);
        CpuWorkers.Run(job, threads.Length, maxThreads: 1);
        Assert.That(threads, Is.All.EqualTo(caller));
    }

    private sealed class ThreadRecordingJob(int[] threads) : ICpuJob
    {
        public void RunPart(int part) => threads[part] = Environment.CurrentManagedThreadId;
    }

    [Test]
    public void AFailingPart_IsReportedAndThePoolStaysUsable()
    {
        var failing = new CountingJob(8, failOn: 3);
        var e = Assert.Throws<AggregateException>(() => CpuWorkers.Run(failing, 8));
        Assert.That(e!.InnerException, Is.InstanceOf<InvalidOperationException>());
        var next = new CountingJob(8);
        CpuWorkers.Run(next, 8);
        Assert.That(next.Runs, Is.All.EqualTo(1));
    }

    [Test]
    public void NestedRuns_CompleteOnTheCallingThread()
    {
        var inner = new CountingJob(4);
        var outer = new CountingJob(3, nested: inner);
        CpuWorkers.Run(outer, 3);
        Assert.That(outer.Runs, Is.All.EqualTo(1));
        Assert.That(inner.Runs, Is.All.EqualTo(3), "each outer part runs the inner job once");
    }
}
