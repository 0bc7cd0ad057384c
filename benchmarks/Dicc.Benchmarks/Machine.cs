using System.Globalization;
using System.Runtime.InteropServices;

namespace Dicc.Benchmarks;

/// <summary>
/// What the benchmarks print beside their figures: CPU clocks that survive a busy machine (a thread's or the
/// process's CPU time), the load average, and peak memory.
/// </summary>
internal static partial class Machine
{
    /// <summary>The calling thread's CPU time in seconds (CLOCK_THREAD_CPUTIME_ID): time slices lost to other processes do not count.</summary>
    public static double ThreadCpuSeconds() => ClockSeconds(3);

    /// <summary>CPU time of all the process's threads in seconds (CLOCK_PROCESS_CPUTIME_ID).</summary>
    public static double ProcessCpuSeconds() => ClockSeconds(2);

    private static double ClockSeconds(int clock)
    {
        if (ClockGetTime(clock, out var t) != 0) throw new InvalidOperationException($"clock_gettime({clock}) failed.");
        return t.Seconds + t.Nanoseconds * 1e-9;
    }

    /// <summary>"1.23 0.98 0.50" from /proc/loadavg (1, 5 and 15 minutes), or "?" where there is none.</summary>
    public static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(' ', parts[..3]);
        }
        catch (IOException) { return "?"; }
        catch (UnauthorizedAccessException) { return "?"; }
    }

    /// <summary>The one-minute load average as a number (NaN where unknown).</summary>
    public static double LoadAverage1() =>
        double.TryParse(LoadAverage().Split(' ')[0], CultureInfo.InvariantCulture, out var l) ? l : double.NaN;

    /// <summary>This process's peak resident memory in MiB (VmHWM), NaN where unknown.</summary>
    public static double PeakResidentMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return double.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException) { }
        return double.NaN;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
