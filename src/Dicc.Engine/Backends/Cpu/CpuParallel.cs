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
/// <remarks>
/// A worker that has finished a job spins for a short, bounded time (<see cref="SpinTicks"/>) watching for the
/// next one before it blocks: in a training step the next product follows within microseconds, and waking a
/// blocked thread takes longer than a small product's share of work (measured: on a 256-square product the woken
/// worker ran 3% of the parts). Jobs are told apart by a generation number packed with the part counter in one
/// word, so a worker that looks late (its core was taken) can claim nothing of a later job, and the caller never
/// waits for it.
/// </remarks>
internal static class CpuWorkers
{
    private static readonly object Gate = new();
    private static Worker[] _workers = [];
    private static ICpuJob? _job;
    private static int _helpers, _completedParts;
    // The generation (bits 40-63), the job's part count (bits 20-39) and the next part to claim (bits 0-19), in one
    // word: a claim is a compare-and-swap that succeeds only while the job it read is the current one.
    private static long _state;
    private const int PartBits = 20;
    private const long PartMask = (1L << PartBits) - 1;
    // Released once per job by whichever thread completes its last part. (A semaphore rather than a reset event:
    // its wait allocates nothing even the first time it blocks, so a training step stays allocation-free.)
    private static readonly SemaphoreSlim AllDone = new(0);
    private static Exception? _failure;

    /// <summary>How long an idle worker spins for the next job before it blocks (~100 µs).</summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 10_000;

    /// <summary>
    /// Runs job.RunPart(p) once for every p in [0, parts) on at most maxThreads threads (the caller included),
    /// in parallel where workers are free; returns when all are done.
    /// </summary>
    public static void Run(ICpuJob job, int parts, int maxThreads = int.MaxValue)
    {
        if (parts <= 0) return;
        int threads = Math.Min(Math.Min(parts, maxThreads), CpuParallel.Threads);
        if (threads <= 1 || parts > PartMask || Monitor.IsEntered(Gate) || !Monitor.TryEnter(Gate))
        {
            for (int p = 0; p < parts; p++) job.RunPart(p);
            return;
        }
        try
        {
            int helpers = threads - 1;
            EnsureWorkers(helpers);
            // Every part of the previous job has completed, so no thread is inside it; a late worker can only
            // read the new state, and its claims against the old generation fail.
            _job = job;
            _helpers = helpers;
            _completedParts = 0;
            _failure = null;
            long generation = (Volatile.Read(ref _state) >> (2 * PartBits)) + 1;
            long state = (generation << (2 * PartBits)) | ((long)parts << PartBits);
            Interlocked.Exchange(ref _state, state); // publishes the fields above (full fence)
            for (int w = 0; w < helpers; w++) _workers[w].Wake();
            RunParts(0, state);
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

    /// <summary>
    /// Claims and runs parts of the job whose state word was <paramref name="seen"/> until none are left or a later
    /// job has replaced it (the caller, slot 0, and every woken worker do this).
    /// </summary>
    private static void RunParts(int slot, long seen)
    {
        long start = CpuWorkerStats.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        long job = seen & ~PartMask;
        int parts = (int)((seen >> PartBits) & PartMask), ran = 0;
        while (true)
        {
            long current = Volatile.Read(ref _state);
            if ((current & ~PartMask) != job) break; // a later job: this one is fully claimed
            int p = (int)(current & PartMask);
            if (p >= parts) break;
            if (Interlocked.CompareExchange(ref _state, current + 1, current) != current) continue;
            ran++;
            try
            {
                if (Volatile.Read(ref _failure) is null) _job!.RunPart(p);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }
            if (Interlocked.Increment(ref _completedParts) == parts) AllDone.Release();
        }
        if (CpuWorkerStats.Enabled) CpuWorkerStats.Record(slot, ran, System.Diagnostics.Stopwatch.GetTimestamp() - start);
    }

    private static void EnsureWorkers(int count)
    {
        if (_workers.Length >= count) return;
        var grown = new Worker[count];
        Array.Copy(_workers, grown, _workers.Length);
        for (int i = _workers.Length; i < count; i++) grown[i] = new Worker(i + 1, Volatile.Read(ref _state));
        _workers = grown;
        CpuWorkerStats.EnsureSlots(count + 1);
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _go = new(0);
        private readonly int _index;
        // 1 while the worker blocks (or is about to) on _go; whoever swaps it back to 0 owes it one release.
        private int _sleeping;

        // The state word when the worker was made: the job about to be published is after it, even if the thread
        // only starts running once that job is under way.
        private readonly long _first;

        public Worker(int index, long first)
        {
            _index = index;
            _first = first;
            var thread = new Thread(Loop) { IsBackground = true, Name = $"Dicc CPU worker {index}" };
            thread.Start();
        }

        /// <summary>Called after a new job is published: wakes the worker if it blocks (a spinning one sees the job).</summary>
        public void Wake()
        {
            if (Interlocked.Exchange(ref _sleeping, 0) == 1) _go.Release();
        }

        private void Loop()
        {
            long seen = _first;
            while (true)
            {
                long current = WaitForJob(seen);
                seen = current;
                // A worker beyond the job's thread count sits it out. (_helpers is at least as new as the state
                // read; if newer, the claims against this state fail and the next loop sees the newer job.)
                if (_index <= Volatile.Read(ref _helpers)) RunParts(_index, current);
            }
        }

        /// <summary>The state word of the next job after <paramref name="seen"/>: spun for briefly, then blocked for.</summary>
        private long WaitForJob(long seen)
        {
            long current, deadline = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            do
            {
                for (int i = 0; i < 16; i++)
                {
                    if (((current = Volatile.Read(ref _state)) & ~PartMask) != (seen & ~PartMask)) return current;
                    Thread.SpinWait(8);
                }
            }
            while (System.Diagnostics.Stopwatch.GetTimestamp() < deadline);
            while (true)
            {
                Interlocked.Exchange(ref _sleeping, 1);
                if (((current = Volatile.Read(ref _state)) & ~PartMask) != (seen & ~PartMask))
                {
                    // A job came as the worker went to sleep: if the caller already took the flag back, it has
                    // released (or will release) _go once, which must be consumed.
                    if (Interlocked.Exchange(ref _sleeping, 0) == 0) _go.Wait();
                    return current;
                }
                _go.Wait();
                if (((current = Volatile.Read(ref _state)) & ~PartMask) != (seen & ~PartMask)) return current;
            }
        }
    }
}

/// <summary>
/// Optional instrumentation of <see cref="CpuWorkers"/> (benchmarks): per thread slot (0 the caller, i worker i),
/// the parts it ran and the wall time it spent claiming and running them. Off by default; when off, a job pays
/// one static read per thread.
/// </summary>
internal static class CpuWorkerStats
{
    /// <summary>Whether jobs record their per-thread figures (set before the jobs, read by the benchmarks).</summary>
    public static bool Enabled;

    private static long[] _parts = new long[16], _ticks = new long[16], _jobs = new long[16];

    public static int Slots => _parts.Length;

    internal static void EnsureSlots(int count)
    {
        if (_parts.Length >= count) return;
        Array.Resize(ref _parts, count);
        Array.Resize(ref _ticks, count);
        Array.Resize(ref _jobs, count);
    }

    internal static void Record(int slot, int parts, long ticks)
    {
        if (slot >= _parts.Length) return;
        Interlocked.Add(ref _parts[slot], parts);
        Interlocked.Add(ref _ticks[slot], ticks);
        Interlocked.Increment(ref _jobs[slot]);
    }

    /// <summary>Slot's totals since the last <see cref="Reset"/>: jobs it joined, parts it ran, seconds busy.</summary>
    public static (long Jobs, long Parts, double BusySeconds) Read(int slot) =>
        (Volatile.Read(ref _jobs[slot]), Volatile.Read(ref _parts[slot]), Volatile.Read(ref _ticks[slot]) / (double)System.Diagnostics.Stopwatch.Frequency);

    public static void Reset()
    {
        Array.Clear(_parts);
        Array.Clear(_ticks);
        Array.Clear(_jobs);
    }
}
