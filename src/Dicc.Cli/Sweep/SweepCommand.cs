using System.Globalization;
using System.Text.Json.Nodes;
using Dicc.Cli.Commands;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Training;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Sweep;

/// <summary>
/// dicc sweep (docs/cli.md, "dicc sweep"): a grid of runs (datasets x methods x rules x any dicc train setting x
/// seeds), one run directory per cell, prepared before anything trains; run on this machine by a few workers or on
/// a Slurm cluster as a job array; re-running it skips finished cells and resumes interrupted ones; --status and
/// --report read the sweep folder.
/// </summary>
public sealed class SweepCommand(IAnsiConsole console, ErrorConsole errors) : Command<SweepCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--grid <FILE>")]
        [OptionHelp("The grid: a JSON object of dicc train settings, lists being axes (datasets, methods, rules, any setting) and seeds. Needed for a new sweep; re-running without it uses the sweep's own cells.")]
        public string? Grid { get; init; }

        [CommandOption("--out <DIR>")]
        [OptionHelp("The sweep folder: sweep.json, one run directory per cell, logs/ and slurm/.")]
        public string? Out { get; init; }

        [CommandOption("--dry-run")]
        [OptionHelp("Print the cells (and the Slurm job) and write nothing.")]
        public bool DryRun { get; init; }

        [CommandOption("--executor <NAME>")]
        [OptionHelp("local (default: workers on this machine) or slurm (a job array, one task per cell).")]
        public string Executor { get; init; } = "local";

        [CommandOption("--cells <LIST>")]
        [OptionHelp("Only these cells, e.g. 3,7,10-12 (default: every cell that is not finished).")]
        public string? Cells { get; init; }

        [CommandOption("--parallel <N>")]
        [OptionHelp("local: cells trained at once (default: one per GPU, else one per 4 CPU cores), each in its own process.")]
        public int? Parallel { get; init; }

        [CommandOption("--per-gpu <K>")]
        [OptionHelp("local: cells trained at once on each GPU when its memory holds K runs (default 1).")]
        public int? PerGpu { get; init; }

        [CommandOption("--device <DEVICE>")]
        [OptionHelp("The device of every cell (cpu, cuda, cuda:N); default: local spreads cells over the GPUs (or the CPU), slurm uses the GPU Slurm gives each task.")]
        public string? Device { get; init; }

        [CommandOption("--partition <NAME>")]
        [OptionHelp("slurm: the partition (sbatch --partition).")]
        public string? Partition { get; init; }

        [CommandOption("--time <LIMIT>")]
        [OptionHelp("slurm: each task's time limit, e.g. 12:00:00 (sbatch --time). A task stopped at its limit saves its checkpoint; submit again to resume it.")]
        public string? Time { get; init; }

        [CommandOption("--account <NAME>")]
        [OptionHelp("slurm: the account charged (sbatch --account).")]
        public string? Account { get; init; }

        [CommandOption("--gpus-per-task <N>")]
        [OptionHelp("slurm: GPUs per task (sbatch --gpus-per-task), e.g. 1 or a100:1.")]
        public string? GpusPerTask { get; init; }

        [CommandOption("--cpus-per-task <N>")]
        [OptionHelp("slurm: CPU cores per task (sbatch --cpus-per-task).")]
        public int? CpusPerTask { get; init; }

        [CommandOption("--mem <SIZE>")]
        [OptionHelp("slurm: memory per task, e.g. 16G (sbatch --mem).")]
        public string? Memory { get; init; }

        [CommandOption("--max-running <M>")]
        [OptionHelp("slurm: at most M tasks of the array run at once (sbatch --array=...%M).")]
        public int? MaxRunning { get; init; }

        [CommandOption("--template <FILE>")]
        [OptionHelp("slurm: a job script whose #SBATCH lines and setup (module load, ...) go before each task's command; options given here win over its #SBATCH lines.")]
        public string? Template { get; init; }

        [CommandOption("--sbatch-arg <ARG>")]
        [OptionHelp("slurm: one more sbatch option, as written (repeatable), e.g. --sbatch-arg=--qos=long.")]
        public string[] SbatchArguments { get; init; } = [];

        [CommandOption("--status")]
        [OptionHelp("Print every cell's state (from its run directory and Slurm's accounting) and what to do next.")]
        public bool Status { get; init; }

        [CommandOption("--report")]
        [OptionHelp("Write the table of the finished cells (mean +- std over seeds, as dicc compare) to report.md and report.csv in the sweep folder, and print it.")]
        public bool Report { get; init; }

        [CommandOption("--metric <NAME>")]
        [OptionHelp("--report: the metric (as dicc compare --metric; default accuracy).")]
        public string? Metric { get; init; }

        [CommandOption("--cell <N>")]
        [OptionHelp("Train (or resume) cell N of the sweep in --out, in this process: what each worker and each Slurm task runs.")]
        public int? Cell { get; init; }

        [CommandOption("--json")]
        [OptionHelp("--status and --dry-run: print JSON instead of tables.")]
        public bool Json { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out is required: the sweep folder.");
            int modes = (Status ? 1 : 0) + (Report ? 1 : 0) + (Cell is not null ? 1 : 0);
            if (modes > 1) return ValidationResult.Error("--status, --report and --cell each do one thing; give one of them.");
            if (modes == 1 && (Grid is not null || DryRun))
                return ValidationResult.Error($"{(Status ? "--status" : Report ? "--report" : "--cell")} reads the sweep in --out; leave out --grid and --dry-run.");
            if (Metric is not null && !Report) return ValidationResult.Error("--metric goes with --report.");
            if (Parallel is < 1) return ValidationResult.Error($"--parallel must be at least 1, got {Parallel}.");
            if (PerGpu is < 1) return ValidationResult.Error($"--per-gpu must be at least 1, got {PerGpu}.");
            if (MaxRunning is < 1) return ValidationResult.Error($"--max-running must be at least 1, got {MaxRunning}.");
            if (CpusPerTask is < 1) return ValidationResult.Error($"--cpus-per-task must be at least 1, got {CpusPerTask}.");
            if (Cell is < 0) return ValidationResult.Error($"--cell must be a cell number >= 0, got {Cell}.");
            return ValidationResult.Success();
        }
    }

    private void Write(IEnumerable<string> lines)
    {
        foreach (var line in lines) console.Profile.Out.Writer.WriteLine(line);
    }

    /// <summary>A line of text on standard output; off a terminal one unwrapped line (a log keeps it whole).</summary>
    private void Say(string text)
    {
        if (console.Profile.Capabilities.Interactive) console.MarkupLine(Markup.Escape(text));
        else console.Profile.Out.Writer.WriteLine(text);
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string root = Path.GetFullPath(settings.Out!);
        if (settings.Cell is int index) return RunCell(ReadPlan(root), index, settings.Device ?? "auto", context, cancellationToken);
        if (settings.Status) return Status(ReadPlan(root), settings.Json);
        if (settings.Report) return Report(ReadPlan(root), settings.Metric, context, cancellationToken);

        string executor = CliValues.Choice(settings.Executor, "--executor", "local", "slurm");
        var given = SlurmOptionsGiven(settings).ToList();
        if (executor == "local" && given.Count > 0) throw new UsageException($"{given[0]} is an option of --executor slurm.");
        if (executor == "slurm" && (settings.Parallel is not null || settings.PerGpu is not null))
            throw new UsageException($"{(settings.Parallel is not null ? "--parallel" : "--per-gpu")} is an option of --executor local; with slurm, --max-running limits the tasks at once.");
        var slurm = new SlurmSettings(settings.Partition, settings.Time, settings.Account, settings.GpusPerTask, settings.CpusPerTask, settings.Memory,
            settings.MaxRunning, settings.Template is null ? null : CliValues.ExistingFile(settings.Template, "--template"), settings.SbatchArguments, settings.Device);

        SweepPlan plan;
        if (settings.Grid is { } grid)
        {
            var cells = SweepGrid.Load(CliValues.ExistingFile(grid, "--grid"));
            if (settings.DryRun) return DryRun(root, cells, executor, slurm, settings.Json);
            plan = SweepPlan.Merge(root, grid, cells);
        }
        else
        {
            plan = SweepPlan.Read(root) ?? throw new UsageException($"--grid is required: {root} holds no sweep ({SweepPlan.FileName}) to continue.");
            if (settings.DryRun) return DryRun(root, plan.Cells, executor, slurm, settings.Json);
        }
        int before = plan.Cells.Count(c => new RunDirectory(plan.RunPath(c)).HoldsRun);
        plan.Write();
        int prepared = plan.Prepare(errors);
        Say($"Sweep {plan.Root}: {plan.Cells.Count} cell(s); {prepared} prepared now (config.json written), {before} prepared before.");

        var selected = settings.Cells is null ? plan.Cells : plan.ParseCells(settings.Cells, "--cells").Select(i => plan.Cells[i]).ToList();
        return executor == "local"
            ? RunLocal(plan, selected, settings, cancellationToken)
            : SubmitSlurm(plan, selected, slurm, explicitCells: settings.Cells is not null);
    }

    private static IEnumerable<string> SlurmOptionsGiven(Settings s)
    {
        if (s.Partition is not null) yield return "--partition";
        if (s.Time is not null) yield return "--time";
        if (s.Account is not null) yield return "--account";
        if (s.GpusPerTask is not null) yield return "--gpus-per-task";
        if (s.CpusPerTask is not null) yield return "--cpus-per-task";
        if (s.Memory is not null) yield return "--mem";
        if (s.MaxRunning is not null) yield return "--max-running";
        if (s.Template is not null) yield return "--template";
        if (s.SbatchArguments.Length > 0) yield return "--sbatch-arg";
    }

    private static SweepPlan ReadPlan(string root) =>
        SweepPlan.Read(root) ?? throw new UsageException(Directory.Exists(root)
            ? $"--out {root}: no sweep here (no {SweepPlan.FileName}); start one with --grid FILE."
            : $"--out {root}: no such folder.");

    // ---- --dry-run

    private int DryRun(string root, IReadOnlyList<SweepCell> cells, string executor, SlurmSettings slurm, bool json)
    {
        if (json)
        {
            var array = new JsonArray();
            foreach (var c in cells)
                array.Add(new JsonObject
                {
                    ["index"] = c.Index, ["directory"] = Path.Combine(root, c.Directory),
                    ["arguments"] = JsonOutput.Strings(c.Arguments),
                });
            JsonOutput.Write(console, array);
            return ExitCodes.Success;
        }
        Write(PlainTable.Lines(["cell", "run directory", "dicc train"],
            cells.Select(c => (IReadOnlyList<string>)[c.Index.ToString(CultureInfo.InvariantCulture), c.Directory, string.Join(' ', c.Arguments.Select(SelfCommand.Quote))]), 0));
        Say($"{cells.Count} cell(s) under {root}; nothing written (--dry-run).");
        if (executor == "slurm")
        {
            Say("The Slurm job (a task per cell, the task index being the cell's):");
            var sample = SweepPlan.Unsaved(root, cells.ToList());
            console.Profile.Out.Writer.WriteLine("sbatch " + string.Join(' ', Slurm.SbatchArguments(sample, cells.Select(c => c.Index), slurm,
                Path.Combine(sample.SlurmDirectory, "job-N.sh")).Select(SelfCommand.Quote)));
            console.Profile.Out.Writer.Write(Slurm.Script(sample, SelfCommand.Resolve(), slurm));
        }
        return ExitCodes.Success;
    }

    // ---- local

    private int RunLocal(SweepPlan plan, IReadOnlyList<SweepCell> selected, Settings settings, CancellationToken cancellationToken)
    {
        var todo = selected.Where(c => CellStates.Of(plan, c).Phase != CellPhase.Finished).ToList();
        if (todo.Count == 0)
        {
            Say($"All {selected.Count} selected cell(s) are finished. The table: dicc sweep --out {plan.Root} --report");
            return ExitCodes.Success;
        }
        var slots = Slots(settings, Math.Min(todo.Count, int.MaxValue));
        using var stop = new StopSignals(cancellationToken);
        return new LocalExecutor(plan, console, errors).Run(todo, slots, stop.Token, () => stop.ExitCode);
    }

    /// <summary>
    /// The workers: with --device, every one on it; else one per GPU (--per-gpu K: K per GPU), or without a usable
    /// GPU one per 4 CPU cores, the cores shared out among them (each cell's process then uses its share).
    /// </summary>
    private List<WorkerSlot> Slots(Settings settings, int cells)
    {
        int cores = Environment.ProcessorCount;
        int gpus = 0;
        if (settings.Device is null or "auto" or "cuda")
        {
            var cuda = CudaInfo.Probe();
            gpus = cuda.IsUsable ? cuda.Devices.Count : 0;
            if (settings.Device == "cuda" && gpus == 0) throw new UsageException("--device cuda: no usable GPU here (dicc info says why).");
        }
        else if (settings.PerGpu is not null && !settings.Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"--per-gpu goes with GPUs; --device {settings.Device} is not one.");
        }
        var slots = new List<WorkerSlot>();
        if (gpus > 0)
        {
            int n = settings.Parallel ?? gpus * (settings.PerGpu ?? 1);
            for (int s = 0; s < n; s++) slots.Add(new WorkerSlot($"cuda:{(s % gpus).ToString(CultureInfo.InvariantCulture)}", null));
        }
        else if (settings.Device is { } device && device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            int n = settings.Parallel ?? settings.PerGpu ?? 1;
            for (int s = 0; s < n; s++) slots.Add(new WorkerSlot(device, null));
        }
        else
        {
            if (settings.PerGpu is not null) throw new UsageException("--per-gpu: no usable GPU here; give --parallel N for CPU workers.");
            int n = settings.Parallel ?? Math.Max(1, cores / 4);
            int threads = Math.Max(1, cores / n);
            for (int s = 0; s < n; s++) slots.Add(new WorkerSlot("cpu", threads));
        }
        return slots.Take(Math.Max(1, cells)).ToList();
    }

    // ---- slurm

    private int SubmitSlurm(SweepPlan plan, IReadOnlyList<SweepCell> selected, SlurmSettings slurm, bool explicitCells)
    {
        if (!Slurm.IsInstalled("sbatch"))
            throw new UsageException("--executor slurm: sbatch is not on PATH; run this on a Slurm login node (or use --executor local).");
        var submissions = Slurm.Submissions(plan);
        var active = new Dictionary<int, SlurmTask>();
        if (submissions.Count > 0)
        {
            var tasks = Slurm.QueuedTasks(submissions.Select(s => s.Job), strict: true);
            foreach (var s in submissions)
                foreach (int cell in s.Cells)
                    if (tasks.TryGetValue((s.Job, cell), out var t) && t.IsActive) active[cell] = t;
        }
        var submit = new List<int>();
        var skipped = new List<string>();
        foreach (var cell in selected)
        {
            var state = CellStates.Of(plan, cell);
            if (state.Phase == CellPhase.Finished) { if (explicitCells) skipped.Add($"cell {cell.Index} is finished"); continue; }
            if (active.TryGetValue(cell.Index, out var task)) { skipped.Add($"cell {cell.Index} is {task.State.ToLowerInvariant()} as task {task.Id}"); continue; }
            if (state.Phase == CellPhase.Running) { skipped.Add($"cell {cell.Index} is being trained ({state.Detail})"); continue; }
            submit.Add(cell.Index);
        }
        foreach (var s in skipped) errors.Note($"not submitted: {s}.");
        if (submit.Count == 0)
        {
            int finished = plan.Cells.Count(c => CellStates.Of(plan, c).Phase == CellPhase.Finished);
            Say($"Nothing to submit: {finished} of {plan.Cells.Count} cell(s) are finished, the others are queued or running. " +
                                             $"dicc sweep --out {plan.Root} --status shows them.");
            return ExitCodes.Success;
        }
        var submission = Slurm.Submit(plan, submit, slurm);
        Say($"Submitted job {submission.Job}: {submit.Count} array task(s), cells {Slurm.ArraySpec(submit, slurm.MaxRunning)} " +
                                         $"(script {submission.Script}; logs {plan.LogDirectory}/cell-N.log).");
        Say($"Follow it: dicc sweep --out {plan.Root} --status. Cells that fail or are stopped: run this command again (it submits only those).");
        return ExitCodes.Success;
    }

    // ---- --cell

    private int RunCell(SweepPlan plan, int index, string device, CommandContext context, CancellationToken cancellationToken)
    {
        var cell = plan.Cell(index, "--cell");
        string dir = plan.RunPath(cell);
        var state = CellStates.Of(plan, cell);
        string where = $"cell {cell.Index} ({cell.Directory})";
        if (state.Phase == CellPhase.Finished)
        {
            errors.Note($"dicc sweep: {where} is finished; nothing to do.");
            return ExitCodes.Success;
        }
        if (state.Phase == CellPhase.NotPrepared)
            throw new UsageException($"--cell {index}: {dir} has no config.json; run dicc sweep --out {plan.Root} (with its grid) to prepare the cells.");
        if (RunLock.ActiveOwner(dir) is int owner)
            throw new UsageException($"--cell {index}: {dir} is being trained by process {owner} (its run.lock); one training per run directory.");
        string? task = CellStates.SlurmTask();
        errors.Note($"dicc sweep: {where} on {Environment.MachineName}" + (task is null ? "" : $", Slurm task {task}") +
                    $", at {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC" +
                    (state.EpochsDone > 0 ? $", resuming after epoch {state.EpochsDone} of {state.Epochs}." : "."));
        CellStates.RecordStart(plan, cell, device);
        int code;
        try
        {
            code = new TrainCommand(console, errors).Execute(context, new TrainSettings { Resume = dir, Device = device }, cancellationToken);
        }
        catch (Exception e)
        {
            var (failure, message) = DiccApp.Classify(e);
            CellStates.RecordEnd(plan, cell, failure, message);
            throw;
        }
        CellStates.RecordEnd(plan, cell, code, null);
        return code;
    }

    // ---- --status

    private int Status(SweepPlan plan, bool json)
    {
        var states = plan.Cells.Select(c => CellStates.Of(plan, c)).ToList();
        var submissions = Slurm.Submissions(plan);
        string source = "";
        var tasks = new Dictionary<(string, int), SlurmTask>();
        if (submissions.Count > 0) tasks = Slurm.Tasks(submissions.Select(s => s.Job).Distinct().ToList(), out source);
        SlurmTask? TaskOf(int cell)
        {
            var s = submissions.LastOrDefault(x => x.Cells.Contains(cell));
            if (s is null) return null;
            return tasks.TryGetValue((s.Job, cell), out var t) ? t : new SlurmTask(s.Job, cell, "?", null, null, null, null);
        }

        if (json)
        {
            var array = new JsonArray();
            foreach (var s in states)
            {
                var t = TaskOf(s.Cell.Index);
                array.Add(new JsonObject
                {
                    ["index"] = s.Cell.Index, ["directory"] = plan.RunPath(s.Cell), ["state"] = s.PhaseName, ["detail"] = s.Detail.Length > 0 ? s.Detail : null,
                    ["epochs_done"] = s.EpochsDone, ["epochs"] = s.Epochs, ["accuracy"] = s.Accuracy, ["attempts"] = s.Attempts,
                    ["slurm"] = t is null ? null : new JsonObject
                    {
                        ["task"] = t.Id, ["state"] = t.State, ["exit_code"] = t.ExitCode, ["elapsed"] = t.Elapsed, ["node"] = t.Node,
                    },
                });
            }
            JsonOutput.Write(console, new JsonObject { ["sweep"] = plan.Root, ["slurm_source"] = submissions.Count > 0 ? source : null, ["cells"] = array });
            return ExitCodes.Success;
        }

        bool anySlurm = submissions.Count > 0;
        var headers = new List<string> { "cell", "run", "state", "epochs", "test acc", "exit" };
        if (anySlurm) headers.AddRange(["slurm task", "slurm state", "node"]);
        var rows = new List<IReadOnlyList<string>>();
        foreach (var s in states)
        {
            var row = new List<string>
            {
                s.Cell.Index.ToString(CultureInfo.InvariantCulture), s.Cell.Directory, s.PhaseName,
                s.Epochs > 0 ? $"{s.EpochsDone}/{s.Epochs}" : "-", s.Accuracy is double a ? CliValues.Percent(a) + "%" : "-",
                s.LastAttempt?.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-",
            };
            if (anySlurm)
            {
                var t = TaskOf(s.Cell.Index);
                row.AddRange([t?.Id ?? "-", t?.State ?? "-", t?.Node ?? "-"]);
            }
            rows.Add(row);
        }
        Write(PlainTable.Lines(headers, rows, 0, 3, 4, 5));
        foreach (var s in states.Where(s => s.Detail.Length > 0 && s.Phase is CellPhase.Failed or CellPhase.Interrupted))
            Say($"cell {s.Cell.Index}: {s.PhaseName}: {s.Detail}");
        var counts = states.GroupBy(s => s.PhaseName).Select(g => $"{g.Count()} {g.Key}");
        Say($"{plan.Cells.Count} cell(s): {string.Join(", ", counts)}.");
        if (anySlurm) Say($"Slurm: jobs {string.Join(", ", submissions.Select(s => s.Job).Distinct())}; task states from {source}.");
        var unfinished = states.Where(s => s.Phase is CellPhase.Failed or CellPhase.Interrupted or CellPhase.NotStarted)
            .Where(s => TaskOf(s.Cell.Index) is not { IsActive: true }).ToList();
        if (unfinished.Count > 0)
        {
            string list = Slurm.ArraySpec(unfinished.Select(s => s.Cell.Index), null);
            Say($"Not finished and not queued: cells {list}. Run them again: dicc sweep --out {plan.Root} " +
                                             (anySlurm ? "--executor slurm " : "") + $"--cells {list} (or without --cells: every unfinished cell).");
        }
        else if (states.All(s => s.Phase == CellPhase.Finished))
        {
            Say($"Every cell is finished. The table: dicc sweep --out {plan.Root} --report");
        }
        return ExitCodes.Success;
    }

    // ---- --report

    private int Report(SweepPlan plan, string? metric, CommandContext context, CancellationToken cancellationToken)
    {
        string suffix = metric is null || metric.Replace('-', '_') == MetricNames.Accuracy ? "" : "-" + metric.Trim().Replace('_', '-');
        string markdown = Path.Combine(plan.Root, $"report{suffix}.md"), csv = Path.Combine(plan.Root, $"report{suffix}.csv");
        var states = plan.Cells.Select(c => CellStates.Of(plan, c)).ToList();
        int code = new CompareCommand(console, errors).Execute(context, new CompareCommand.Settings
        {
            Runs = [plan.Root], Markdown = markdown, Csv = csv, Metric = metric ?? MetricNames.Accuracy,
        }, cancellationToken);
        int finished = states.Count(s => s.Phase == CellPhase.Finished);
        if (finished < states.Count)
            errors.Warning($"{states.Count - finished} of {states.Count} cell(s) are not finished; the table holds the {finished} finished ones " +
                           $"(dicc sweep --out {plan.Root} --status lists the others).");
        return code;
    }
}
