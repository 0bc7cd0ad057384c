namespace Dicc.Cli.Infrastructure;

/// <summary>The system's load average (1, 5, 15 minutes), printed beside timings: a loaded machine times slower.</summary>
internal static class LoadAverage
{
    /// <summary>"0.52 0.61 0.70" from /proc/loadavg, or "unknown" where there is none.</summary>
    public static string Text()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length >= 3 ? string.Join(' ', fields[..3]) : "unknown";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }
}
