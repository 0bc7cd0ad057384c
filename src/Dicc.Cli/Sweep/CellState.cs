using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dicc.Cli.Reports;
using Dicc.Engine;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Training;

namespace Dicc.Cli.Sweep;

/// <summary>Where a cell stands, read from its run directory and its attempts.</summary>
internal enum CellPhase
{
    /// <summary>No config.json yet: the sweep has not prepared it.</summary>
    NotPrepared,

    /// <summary>Prepared, never trained.</summary>
    NotStarted,

    /// <summary>A process holds its run directory's lock.</summary>
    Running,

    /// <summary>Stopped before the end (a signal, a preemption, a killed task): re-running the sweep resumes it.</summary>
    Interrupted,

    /// <summary>Its last attempt ended with an error.</summary>
    Failed,

    /// <summary>Trained, with its reports and pictures.</summary>
    Finished,
}

/// <summary>One attempt to run a cell (a line pair in logs/cell-N.attempts.jsonl).</summary>
internal sealed record CellAttempt(DateTimeOffset Started, string Host, int ProcessId, string? SlurmTask, string Device,
    DateTimeOffset? Ended, int? ExitCode, string? Message);

/// <summary>A cell's state: its phase, epochs, test accuracy when finished, and its last attempt.</summary>
internal sealed record CellStatus(SweepCell Cell, CellPhase Phase, int EpochsDone, int Epochs, string Detail, double? Accuracy,
    CellAttempt? LastAttempt, int Attempts)
{
    public string PhaseName => Phase switch
    {
        CellPhase.NotPrepared => "not prepared",
        CellPhase.NotStarted => "not started",
        _ => Phase.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// Reads a cell's state from what is on disk: its run directory (config, metrics, checkpoint, reports, lock) and its
/// attempts file (start and end of every attempt, with the exit code and the error), which every executor writes
/// through <c>dicc sweep --cell</c>, so that the state is the same whoever ran the cell.
/// </summary>
internal static class CellStates
{
    /// <summary>Exit codes of a cell stopped by a signal after saving its checkpoint (Ctrl-C, SIGTERM).</summary>
    public static bool IsInterruption(int code) => code is 130 or 143;

    public static CellStatus Of(SweepPlan plan, SweepCell cell)
    {
        var attempts = ReadAttempts(plan, cell.Index);
        var last = attempts.LastOrDefault();
        var run = new RunDirectory(plan.RunPath(cell));
        CellStatus Status(CellPhase phase, int done, int epochs, string detail, double? accuracy = null) =>
            new(cell, phase, done, epochs, detail, accuracy, last, attempts.Count);

        if (!run.HoldsRun) return Status(CellPhase.NotPrepared, 0, 0, "no config.json yet");
        RunConfig config;
        int done;
        try
        {
            config = run.ReadConfig();
            done = run.ReadMetrics().Count;
        }
        catch (InputException e)
        {
            return Status(CellPhase.Failed, 0, 0, $"its run directory cannot be read: {e.Message}");
        }
        int epochs = config.Options?.Epochs ?? 0;
        if (RunLock.ActiveOwner(run.Path) is int pid)
            return Status(CellPhase.Running, done, epochs, $"process {pid.ToString(CultureInfo.InvariantCulture)}");
        if (done >= epochs && IsComplete(run, config))
            return Status(CellPhase.Finished, done, epochs, "", Accuracy(run));
        if (last is { ExitCode: int code } && code != 0 && !IsInterruption(code))
            return Status(CellPhase.Failed, done, epochs, $"exit {code.ToString(CultureInfo.InvariantCulture)}" + (last.Message is { } m ? $": {m}" : ""));
        if (last is { Ended: null } && last.Host == Environment.MachineName && IsAlive(last.ProcessId))
            return Status(CellPhase.Running, done, epochs, $"process {last.ProcessId.ToString(CultureInfo.InvariantCulture)}, starting");
        if (last is { Ended: null })
            return Status(CellPhase.Interrupted, done, epochs, "its last attempt ended without an exit code (killed, or its node was lost)");
        if (done > 0 || File.Exists(run.LastCheckpoint))
            return Status(CellPhase.Interrupted, done, epochs, done >= epochs ? "trained; its reports are not all written" : "");
        if (last is { ExitCode: int stopped } && IsInterruption(stopped))
            return Status(CellPhase.Interrupted, done, epochs, "stopped before its first epoch ended");
        return Status(CellPhase.NotStarted, done, epochs, "");
    }

    private static bool IsAlive(int pid)
    {
        if (pid <= 0) return false;
        if (OperatingSystem.IsLinux()) return File.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Whether the run wrote everything a finished run has: its reports and pictures (docs/evaluation.md, "Run directories").</summary>
    private static bool IsComplete(RunDirectory run, RunConfig config)
    {
        var files = new List<string> { Path.Combine(run.Path, RunPictures.CurvesFile) };
        if (config.Dataset.TestCount > 0)
            files.AddRange([run.ReportFile, run.ResultFile, Path.Combine(run.Path, RunPictures.ConfusionFile), Path.Combine(run.Path, RunPictures.PrecisionRecallFile)]);
        if (config.Dataset.ValidationCount > 0) files.Add(run.ValidationReportFile);
        return files.All(File.Exists);
    }

    private static double? Accuracy(RunDirectory run)
    {
        if (!File.Exists(run.ResultFile)) return null;
        try
        {
            var result = EvaluationJson.DeserializeRunResult(File.ReadAllText(run.ResultFile), run.ResultFile);
            return result.Metrics.TryGetValue(MetricNames.Accuracy, out double v) ? v : null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or JsonException)
        {
            return null;
        }
    }

    /// <summary>The Slurm array task this process runs as ("12_3"), or null outside Slurm.</summary>
    public static string? SlurmTask()
    {
        string? job = Environment.GetEnvironmentVariable("SLURM_ARRAY_JOB_ID"), task = Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID");
        if (!string.IsNullOrEmpty(job) && !string.IsNullOrEmpty(task)) return $"{job}_{task}";
        return Environment.GetEnvironmentVariable("SLURM_JOB_ID") is { Length: > 0 } id ? id : null;
    }

    /// <summary>Records the start of an attempt of this process.</summary>
    public static void RecordStart(SweepPlan plan, SweepCell cell, string device) =>
        Append(plan, cell.Index, new JsonObject
        {
            ["event"] = "start", ["time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            ["host"] = Environment.MachineName, ["pid"] = Environment.ProcessId, ["slurm_task"] = SlurmTask(), ["device"] = device,
        });

    /// <summary>Records the end of this process's attempt: its exit code and, for an error, its message.</summary>
    public static void RecordEnd(SweepPlan plan, SweepCell cell, int exitCode, string? message) =>
        Append(plan, cell.Index, new JsonObject
        {
            ["event"] = "end", ["time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            ["host"] = Environment.MachineName, ["pid"] = Environment.ProcessId, ["exit"] = exitCode, ["message"] = message,
        });

    private static void Append(SweepPlan plan, int index, JsonObject line)
    {
        Directory.CreateDirectory(plan.LogDirectory);
        // One short line per write, appended: attempts of one cell on several hosts do not interleave within a line.
        File.AppendAllText(plan.AttemptsFile(index), line.ToJsonString() + "\n");
    }

    /// <summary>Every attempt recorded for the cell, oldest first (an unreadable line is skipped).</summary>
    public static List<CellAttempt> ReadAttempts(SweepPlan plan, int index)
    {
        var result = new List<CellAttempt>();
        string file = plan.AttemptsFile(index);
        if (!File.Exists(file)) return result;
        foreach (var line in File.ReadLines(file))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject? o;
            try
            {
                o = JsonNode.Parse(line) as JsonObject;
            }
            catch (JsonException)
            {
                continue;
            }
            if (o is null) continue;
            DateTimeOffset Time() => DateTimeOffset.TryParse((string?)o["time"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : default;
            string host = (string?)o["host"] ?? "";
            int pid = (int?)o["pid"] ?? 0;
            switch ((string?)o["event"])
            {
                case "start":
                    result.Add(new CellAttempt(Time(), host, pid, (string?)o["slurm_task"], (string?)o["device"] ?? "", null, null, null));
                    break;
                case "end":
                    int open = result.FindLastIndex(a => a.Ended is null && a.Host == host && a.ProcessId == pid);
                    if (open >= 0) result[open] = result[open] with { Ended = Time(), ExitCode = (int?)o["exit"], Message = (string?)o["message"] };
                    break;
            }
        }
        return result;
    }
}
