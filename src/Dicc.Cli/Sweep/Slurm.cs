using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;

namespace Dicc.Cli.Sweep;

/// <summary>The Slurm settings of a submission: each becomes an sbatch option (given on sbatch's command line, so they win over a template's #SBATCH lines).</summary>
internal sealed record SlurmSettings(
    string? Partition, string? Time, string? Account, string? GpusPerTask, int? CpusPerTask, string? Memory,
    int? MaxRunning, string? Template, string[] ExtraArguments, string? Device);

/// <summary>A submitted job array: its job id and the cells its tasks run (task index = cell index).</summary>
internal sealed record SlurmSubmission(string Job, int[] Cells, string Script, DateTimeOffset Submitted);

/// <summary>What Slurm says about one array task: its state (PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, TIMEOUT, PREEMPTED, ...).</summary>
internal sealed record SlurmTask(string Job, int Index, string State, string? ExitCode, string? Elapsed, string? Node, string? Reason)
{
    public string Id => $"{Job}_{Index.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Queued or running: a new submission of the same cell would run it twice.</summary>
    public bool IsActive => State is "PENDING" or "RUNNING" or "CONFIGURING" or "COMPLETING" or "REQUEUED" or "REQUEUE_HOLD" or
        "REQUEUE_FED" or "RESIZING" or "SUSPENDED" or "STOPPED" or "SIGNALING" or "STAGE_OUT";
}

/// <summary>
/// The sweep's side of Slurm (docs/cli.md, "dicc sweep"): a job array with one task per cell (the task index is the
/// cell's index, so failed cells are resubmitted alone by listing them), each task running <c>dicc sweep --cell</c>
/// on the shared sweep folder; the submissions in slurm/submissions.jsonl; task states from Slurm's accounting
/// (<c>sacct</c>), or from the queue (<c>squeue</c>) where accounting is not enabled.
/// </summary>
internal static class Slurm
{
    public static string SubmissionsFile(SweepPlan plan) => Path.Combine(plan.SlurmDirectory, "submissions.jsonl");

    /// <summary>The array specification for the cells: "0-3,7,9-12" and "%M" when at most M run at once.</summary>
    public static string ArraySpec(IEnumerable<int> cells, int? maxRunning)
    {
        var sorted = cells.Distinct().Order().ToList();
        var parts = new List<string>();
        for (int i = 0; i < sorted.Count;)
        {
            int j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? sorted[i].ToString(CultureInfo.InvariantCulture) : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(',', parts) + (maxRunning is int m ? $"%{m}" : "");
    }

    /// <summary>
    /// The job script: the template's lines (its #SBATCH lines and setup, e.g. <c>module load</c>), then the cell's
    /// command. The sweep's own sbatch options go on sbatch's command line (<see cref="SbatchArguments"/>).
    /// </summary>
    public static string Script(SweepPlan plan, SelfCommand self, SlurmSettings settings)
    {
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append("# Written by dicc sweep (docs/cli.md, \"dicc sweep\"): one array task per cell of ").Append(plan.PlanFile).Append(";\n");
        s.Append("# the task index is the cell's index, and each task trains or resumes that cell's run directory.\n");
        if (settings.Template is { } template)
        {
            var lines = File.ReadAllLines(template);
            foreach (var line in lines.Skip(lines.Length > 0 && lines[0].StartsWith("#!", StringComparison.Ordinal) ? 1 : 0)) s.Append(line).Append('\n');
        }
        foreach (var (k, v) in self.Environment) s.Append("export ").Append(k).Append('=').Append(SelfCommand.Quote(v)).Append('\n');
        string[] arguments = ["sweep", "--out", plan.Root, "--cell"];
        s.Append("exec ").Append(self.ShellWords(arguments)).Append(" \"$SLURM_ARRAY_TASK_ID\"");
        if (settings.Device is { } device) s.Append(" --device ").Append(SelfCommand.Quote(device));
        s.Append('\n');
        return s.ToString();
    }

    /// <summary>sbatch's arguments for a submission of <paramref name="cells"/> (the script last).</summary>
    public static List<string> SbatchArguments(SweepPlan plan, IEnumerable<int> cells, SlurmSettings settings, string script)
    {
        var a = new List<string>
        {
            "--parsable",
            $"--job-name=dicc-{SweepGrid.Safe(Path.GetFileName(plan.Root))}",
            $"--array={ArraySpec(cells, settings.MaxRunning)}",
            // %a: the task index, which is the cell's index; a resubmitted or requeued cell appends to the same log.
            $"--output={Path.Combine(plan.LogDirectory, "cell-%a.log")}",
            "--open-mode=append",
            // Preemption and node failures requeue the task; its SIGTERM saves the checkpoint it resumes from.
            "--requeue",
        };
        if (settings.Partition is { } p) a.Add($"--partition={p}");
        if (settings.Time is { } t) a.Add($"--time={t}");
        if (settings.Account is { } acc) a.Add($"--account={acc}");
        if (settings.GpusPerTask is { } g) a.Add($"--gpus-per-task={g}");
        if (settings.CpusPerTask is int c) a.Add($"--cpus-per-task={c.ToString(CultureInfo.InvariantCulture)}");
        if (settings.Memory is { } m) a.Add($"--mem={m}");
        a.AddRange(settings.ExtraArguments);
        a.Add(script);
        return a;
    }

    /// <summary>Submits the cells as one job array; returns the submission (recorded in slurm/submissions.jsonl).</summary>
    public static SlurmSubmission Submit(SweepPlan plan, IReadOnlyList<int> cells, SlurmSettings settings)
    {
        Directory.CreateDirectory(plan.SlurmDirectory);
        Directory.CreateDirectory(plan.LogDirectory);
        int n = 1;
        while (File.Exists(Path.Combine(plan.SlurmDirectory, $"job-{n}.sh"))) n++;
        string script = Path.Combine(plan.SlurmDirectory, $"job-{n.ToString(CultureInfo.InvariantCulture)}.sh");
        File.WriteAllText(script, Script(plan, SelfCommand.Resolve(), settings));
        var arguments = SbatchArguments(plan, cells, settings, script);
        var (code, output, error) = RunTool("sbatch", arguments);
        if (code != 0)
            throw new UsageException($"sbatch refused the job ({script}): {OneLine(error.Length > 0 ? error : output)}");
        string job = output.Trim().Split('\n').Last().Split(';')[0].Trim();
        if (job.Length == 0 || !job.All(char.IsAsciiDigit)) throw new IOException($"sbatch printed no job id (it printed '{OneLine(output)}').");
        var submission = new SlurmSubmission(job, cells.ToArray(), script, DateTimeOffset.UtcNow);
        var line = new JsonObject
        {
            ["job"] = job, ["cells"] = new JsonArray(cells.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()), ["script"] = script,
            ["time"] = submission.Submitted.ToString("O", CultureInfo.InvariantCulture),
            ["sbatch"] = new JsonArray(arguments.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
        };
        File.AppendAllText(SubmissionsFile(plan), line.ToJsonString() + "\n");
        return submission;
    }

    /// <summary>Every submission of the sweep, oldest first.</summary>
    public static List<SlurmSubmission> Submissions(SweepPlan plan)
    {
        var result = new List<SlurmSubmission>();
        string file = SubmissionsFile(plan);
        if (!File.Exists(file)) return result;
        foreach (var line in File.ReadLines(file))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonNode.Parse(line) is not JsonObject o || (string?)o["job"] is not { } job || o["cells"] is not JsonArray cells) continue;
                result.Add(new SlurmSubmission(job, cells.Select(c => (int)c!).ToArray(), (string?)o["script"] ?? "",
                    DateTimeOffset.TryParse((string?)o["time"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : default));
            }
            catch (JsonException)
            {
                // A damaged line: the other submissions still count.
            }
        }
        return result;
    }

    /// <summary>
    /// The tasks of the given jobs that are in Slurm's queue now (pending, running, ...), by (job, index), from
    /// <c>squeue</c>. With <paramref name="strict"/>, a queue that cannot be read is an error (a submission must not
    /// guess that nothing is queued); a job that has left the queue is not one.
    /// </summary>
    public static Dictionary<(string Job, int Index), SlurmTask> QueuedTasks(IEnumerable<string> jobs, bool strict = false)
    {
        var tasks = new Dictionary<(string, int), SlurmTask>();
        foreach (string job in jobs.Distinct())
        {
            // One job at a time: squeue refuses the whole list when one job has left the queue.
            var (code, output, error) = RunTool("squeue", ["-h", "-r", "-j", job, "-o", "%i|%T|%M|%N|%r"]);
            if (code != 0 && strict && !error.Contains("Invalid job id", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"squeue cannot read Slurm's queue ({OneLine(error.Length > 0 ? error : output)}), so the cells queued " +
                                         "already are unknown; nothing is submitted (a cell must not run twice at once).");
            if (code != 0) continue;
            foreach (var task in ParseSqueue(output)) tasks[(task.Job, task.Index)] = task;
        }
        return tasks;
    }

    /// <summary>
    /// The tasks of the given jobs as Slurm reports them, by (job, index): those in the queue from <c>squeue</c> (what
    /// is current), the others from Slurm's accounting (<c>sacct</c>: finished, failed, cancelled, timed out, ...)
    /// where Slurm keeps it. <paramref name="source"/> says which, and why accounting is missing when it is.
    /// </summary>
    public static Dictionary<(string Job, int Index), SlurmTask> Tasks(IReadOnlyCollection<string> jobs, out string source)
    {
        var tasks = new Dictionary<(string, int), SlurmTask>();
        if (jobs.Count == 0)
        {
            source = "no submissions";
            return tasks;
        }
        var (code, output, error) = RunTool("sacct", ["-j", string.Join(',', jobs), "-X", "-P", "-n", "-o", "JobID,State,ExitCode,Elapsed,NodeList,Reason"]);
        bool accounting = code == 0 && !error.Contains("accounting storage is disabled", StringComparison.OrdinalIgnoreCase);
        if (accounting)
            foreach (var task in ParseSacct(output)) tasks[(task.Job, task.Index)] = task;
        // The queue is current; accounting lags it by moments (a task just submitted or just started).
        foreach (var (key, task) in QueuedTasks(jobs))
            tasks[key] = tasks.TryGetValue(key, out var recorded) ? task with { ExitCode = recorded.ExitCode } : task;
        string why = code == ToolMissing ? "sacct is not installed" : OneLine(error.Length > 0 ? error : output);
        source = accounting ? "sacct" : $"squeue (Slurm accounting is not available: {why}; tasks that left the queue are not shown)";
        return tasks;
    }

    /// <summary>sacct -P lines "JobID|State|ExitCode|Elapsed|NodeList|Reason"; JobID "12_3", or "12_[4-6,9%2]" for tasks not started yet.</summary>
    internal static IEnumerable<SlurmTask> ParseSacct(string output)
    {
        foreach (var raw in output.Split('\n'))
        {
            var f = raw.Trim().Split('|');
            if (f.Length < 3) continue;
            foreach (var (job, index) in ExpandId(f[0]))
                yield return new SlurmTask(job, index, f[1].Split(' ')[0], f[2], At(f, 3), At(f, 4) is "None assigned" ? null : At(f, 4), At(f, 5));
        }
    }

    /// <summary>squeue -r lines "%i|%T|%M|%N|%r".</summary>
    internal static IEnumerable<SlurmTask> ParseSqueue(string output)
    {
        foreach (var raw in output.Split('\n'))
        {
            var f = raw.Trim().Split('|');
            if (f.Length < 2) continue;
            foreach (var (job, index) in ExpandId(f[0]))
                yield return new SlurmTask(job, index, f[1], null, At(f, 2), At(f, 3), At(f, 4));
        }
    }

    private static string? At(string[] fields, int i) => i < fields.Length && fields[i].Length > 0 ? fields[i] : null;

    /// <summary>"12_3" → (12, 3); "12_[4-6,9%2]" → (12, 4), (12, 5), (12, 6), (12, 9); a job that is not an array yields nothing.</summary>
    internal static IEnumerable<(string Job, int Index)> ExpandId(string id)
    {
        int underscore = id.IndexOf('_');
        if (underscore <= 0) yield break;
        string job = id[..underscore], rest = id[(underscore + 1)..];
        if (rest.StartsWith('[') && rest.EndsWith(']')) rest = rest[1..^1];
        int percent = rest.IndexOf('%');
        if (percent >= 0) rest = rest[..percent];
        foreach (var part in rest.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-', 2);
            if (!int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int from)) continue;
            int to = from;
            if (range.Length == 2 && !int.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out to)) continue;
            for (int i = from; i <= to; i++) yield return (job, i);
        }
    }

    private const int ToolMissing = -1;

    /// <summary>Runs a Slurm command; exit code -1 when it is not installed.</summary>
    public static (int Code, string Output, string Error) RunTool(string tool, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (ToolMissing, "", $"{tool}: not found on PATH");
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                try { process.Kill(); }
                catch (InvalidOperationException) { }
                return (124, output.IsCompleted ? output.Result : "", $"{tool} did not answer within 2 minutes");
            }
            return (process.ExitCode, output.Result, error.Result);
        }
    }

    /// <summary>Whether a Slurm command is on PATH.</summary>
    public static bool IsInstalled(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
