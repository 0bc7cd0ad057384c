namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// Splits loops over the CPU's cores in fixed, contiguous ranges, so that results never depend on
/// thread scheduling (reductions stay deterministic). Small loops run inline.
/// </summary>
internal static class CpuParallel
{
    private static readonly int Hardware = Math.Max(1, Environment.ProcessorCount);
    private static int _limit;

    /// <summary>Threads the CPU backend uses: one per core, or fewer inside <see cref="LimitThreads"/>.</summary>
    public static int Threads => _limit > 0 ? Math.Min(_limit, Hardware) : Hardware;

    /// <summary>
    /// Runs everything on at most <paramref name="threads"/> threads until disposed (tests check that results do
    /// not depend on the thread count). Process-wide: not for concurrent use.
    /// </summary>
    public static IDisposable LimitThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        int previous = _limit;
        _limit = threads;
        return new Restore(previous);
    }

    private sealed class Restore(int previous) : IDisposable
    {
        public void Dispose() => _limit = previous;
    }

    /// <summary>
    /// Runs body.Run(start, end) over [0, count) in a few fixed ranges on the engine's workers (<see cref="CpuWorkers"/>)
    /// when count * costPerItem is worth it, else inline. The body is a struct holding what the loop needs, so a
    /// call allocates nothing; the ranges depend only on count, cost and the thread count, and a body must compute
    /// each element the same way in whichever range it falls.
    /// </summary>
    public static void For<TBody>(int count, long costPerItem, in TBody body) where TBody : struct, IRangeBody
    {
        if (count <= 0) return;
        long work = Math.Max(1, count * costPerItem / 32768);
        // A few ranges per thread, so a thread that loses its core to another process holds up only one of them.
        int ranges = (int)Math.Min(Math.Min(Threads * 4L, count), work);
        if (ranges <= 1 || Threads <= 1)
        {
            body.Run(0, count);
            return;
        }
        var job = RangeJob<TBody>.ForThisThread();
        job.Set(body, count, ranges);
        CpuWorkers.Run(job, ranges);
        job.Set(default, 0, 0);
    }
}

/// <summary>The body of a <see cref="CpuParallel.For{TBody}"/> loop: what it does with one range of indices.</summary>
internal interface IRangeBody
{
    void Run(int start, int end);
}

/// <summary>One reusable job per calling thread and body type: a parallel loop allocates only on its first call.</summary>
internal sealed class RangeJob<TBody> : ICpuJob where TBody : struct, IRangeBody
{
    [ThreadStatic] private static RangeJob<TBody>? _current;

    private TBody _body;
    private int _count, _ranges;

    public static RangeJob<TBody> ForThisThread() => _current ??= new RangeJob<TBody>();

    public void Set(in TBody body, int count, int ranges)
    {
        _body = body;
        _count = count;
        _ranges = ranges;
    }

    public void RunPart(int part) =>
        _body.Run((int)((long)_count * part / _ranges), (int)((long)_count * (part + 1) / _ranges));
}

/// <summary>
/// A job split into numbered parts. A part's result must depend only on its number, never on the thread
/// that runs it or on the order in which parts run (e.g. each part writes its own block of the output
/// with fixed arithmetic): <see cref="CpuWorkers"/> hands parts to whichever thread is free.
/// </summary>
internal interface ICpuJob
{
    void RunPart(int part);
}

/// <summary>
/// A small fixed pool of dedicated threads (one per core, the caller taking part too) for kernels that are
/// called often and want neither closures nor the shared thread pool's wake-up latency. Threads claim
/// parts from a shared counter, so a thread that loses its core to another process holds up only the part
/// it is on; the split into parts is fixed by the job, so results do not depend on who ran what.
/// If the pool is busy (a concurrent caller), the parts simply run one after another on the caller.
/// </summary>
internal static class CpuWorkers
{
    private static readonly object Gate = new();
    private static Worker[] _workers = [];
    private static ICpuJob? _job;
    private static int _parts, _nextPart, _completedParts, _activeHelpers;
    // Released once per job by whichever thread completes its last part. (A semaphore rather than a reset event:
    // its wait allocates nothing even the first time it blocks, so a training step stays allocation-free.)
    private static readonly SemaphoreSlim AllDone = new(0);
    private static Exception? _failure;

    /// <summary>
    /// Runs job.RunPart(p) once for every p in [0, parts) on at most maxThreads threads (the caller included),
    /// in parallel where workers are free; returns when all are done.
    /// </summary>
    public static void Run(ICpuJob job, int parts, int maxThreads = int.MaxValue)
    {
        if (parts <= 0) return;
        int threads = Math.Min(Math.Min(parts, maxThreads), CpuParallel.Threads);
        if (threads <= 1 || Monitor.IsEntered(Gate) || !Monitor.TryEnter(Gate))
        {
            for (int p = 0; p < parts; p++) job.RunPart(p);
            return;
        }
        try
        {
            // A helper woken for the previous job may not have looked at it yet (its core was busy); the
            // job state must not change under it. Usually it has long finished.
            SpinWait.SpinUntil(static () => Volatile.Read(ref _activeHelpers) == 0);
            int helpers = threads - 1;
            EnsureWorkers(helpers);
            _job = job;
            _parts = parts;
            _nextPart = 0;
            _completedParts = 0;
            _failure = null;
            Volatile.Write(ref _activeHelpers, helpers);
            for (int w = 0; w < helpers; w++) _workers[w].Wake();
            RunParts();
            // Done when every part is, even if a helper has not woken yet: it will find nothing to claim. The last
            // part is usually a moment away, so spin a little before blocking.
            for (int i = 0; i < 2000 && AllDone.CurrentCount == 0; i++) Thread.SpinWait(10);
            AllDone.Wait();
            if (_failure is not null) throw new AggregateException("A parallel CPU job failed.", _failure);
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    /// <summary>Claims and runs parts until none are left (the caller and every woken worker do this).</summary>
    private static void RunParts()
    {
        int p;
        while ((p = Interlocked.Increment(ref _nextPart) - 1) < _parts)
        {
            try
            {
                if (Volatile.Read(ref _failure) is null) _job!.RunPart(p);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }
            if (Interlocked.Increment(ref _completedParts) == _parts) AllDone.Release();
        }
    }

    private static void EnsureWorkers(int count)
    {
        if (_workers.Length >= count) return;
        var grown = new Worker[count];
        Array.Copy(_workers, grown, _workers.Length);
        for (int i = _workers.Length; i < count; i++) grown[i] = new Worker(i + 1);
        _workers = grown;
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _go = new(0);

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"Dicc CPU worker {index}" };
            thread.Start();
        }

        public void Wake() => _go.Release();

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                RunParts();
                Interlocked.Decrement(ref _activeHelpers);
            }
        }
    }
}
