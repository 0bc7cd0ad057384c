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
