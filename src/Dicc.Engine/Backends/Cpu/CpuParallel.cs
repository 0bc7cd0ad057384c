namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// Splits loops over the CPU's cores in fixed, contiguous ranges, so that results never depend on
/// thread scheduling (reductions stay deterministic). Small loops run inline.
/// </summary>
internal static class CpuParallel
{
    public static int Threads { get; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Runs body(start, end) over [0, count) in at most Threads ranges when count * costPerItem is worth it.</summary>
    public static void For(int count, long costPerItem, Action<int, int> body)
    {
        if (count <= 0) return;
        int ranges = (int)Math.Min(Threads, Math.Min(count, Math.Max(1, count * costPerItem / 32768)));
        if (ranges <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, ranges, r =>
        {
            int start = (int)((long)count * r / ranges), end = (int)((long)count * (r + 1) / ranges);
            body(start, end);
        });
    }
}

/// <summary>A job split into numbered parts; <see cref="CpuWorkers"/> runs part p on worker p.</summary>
internal interface ICpuJob
{
    void RunPart(int part);
}

/// <summary>
/// A small fixed pool of dedicated threads (one per core, the caller being worker 0) for kernels that are
/// called often and want neither closures nor the shared thread pool's wake-up latency. Which thread runs
/// which part never changes the arithmetic: jobs split their work in fixed ranges decided before the run.
/// If the pool is busy (a concurrent caller), the parts simply run one after another on the caller.
/// </summary>
internal static class CpuWorkers
{
    private static readonly object Gate = new();
    private static Worker[] _workers = [];
    private static int _remaining;
    private static readonly ManualResetEventSlim AllDone = new(false, spinCount: 2000);
    private static Exception? _failure;

    /// <summary>Runs job.RunPart(p) for p in [0, parts), in parallel where workers are free; returns when all are done.</summary>
    public static void Run(ICpuJob job, int parts)
    {
        if (parts <= 0) return;
        if (parts == 1 || Monitor.IsEntered(Gate) || !Monitor.TryEnter(Gate))
        {
            for (int p = 0; p < parts; p++) job.RunPart(p);
            return;
        }
        try
        {
            int helpers = Math.Min(parts, CpuParallel.Threads) - 1;
            EnsureWorkers(helpers);
            _failure = null;
            AllDone.Reset();
            Volatile.Write(ref _remaining, helpers);
            // Parts beyond the thread count are dealt round-robin: worker w runs parts w, w + T, ...
            int stride = helpers + 1;
            for (int w = 1; w <= helpers; w++) _workers[w - 1].Start(job, w, parts, stride);
            Exception? own = null;
            try
            {
                for (int p = 0; p < parts; p += stride) job.RunPart(p);
            }
            catch (Exception e) { own = e; }
            if (helpers > 0) AllDone.Wait();
            var failure = own ?? _failure;
            if (failure is not null) throw new AggregateException("A parallel CPU job failed.", failure);
        }
        finally
        {
            Monitor.Exit(Gate);
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

    private static void PartDone(Exception? failure)
    {
        if (failure is not null) Interlocked.CompareExchange(ref _failure, failure, null);
        if (Interlocked.Decrement(ref _remaining) == 0) AllDone.Set();
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _go = new(0);
        private ICpuJob? _job;
        private int _first, _parts, _stride;

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"Dicc CPU worker {index}" };
            thread.Start();
        }

        public void Start(ICpuJob job, int first, int parts, int stride)
        {
            _job = job;
            _first = first;
            _parts = parts;
            _stride = stride;
            _go.Release();
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                Exception? failure = null;
                try
                {
                    for (int p = _first; p < _parts; p += _stride) _job!.RunPart(p);
                }
                catch (Exception e) { failure = e; }
                _job = null;
                PartDone(failure);
            }
        }
    }
}
