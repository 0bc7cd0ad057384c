using System.Globalization;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Backends;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Training;

/// <summary>
/// dicc train: one run (or several seeds) into run directories, each under its exclusive lock; Ctrl-C and
/// SIGTERM save a checkpoint and exit with 130 / 143.
/// </summary>
public sealed class TrainCommand(IAnsiConsole console, ErrorConsole errors) : Command<TrainSettings>
{
    /// <summary>Exit code of a run stopped by Ctrl-C (its checkpoint is saved; --resume continues it).</summary>
    public const int Interrupted = StopSignals.InterruptExitCode;

    /// <summary>A CPU run estimated to take longer than this is announced with its estimate before it starts.</summary>
    internal static readonly TimeSpan LongRun = TimeSpan.FromHours(12);

    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        using var stop = new StopSignals(cancellationToken);
        var status = settings.Resume is not null ? Resume(settings, stop.Token) : Train(settings, stop.Token);
        return status == RunStatus.Interrupted ? stop.ExitCode : ExitCodes.Success;
    }

    private RunStatus Train(TrainSettings settings, CancellationToken cancel)
    {
        var options = settings.ToOptions();
        var loadOptions = settings.ToLoadOptions();
        string root = settings.Out ?? Path.Combine("runs",
            $"{options.Method.ToString().ToLowerInvariant()}-{options.Rule.ToString().ToLowerInvariant()}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
        int seeds = settings.Seeds ?? 1;
        if (File.Exists(root)) throw new UsageException($"--out {root} is a file; a run directory is expected.");
        if (seeds > 1) CliValues.NewOrEmptyDirectory(root, "--out");

        using var data = DataArguments.Load(settings.Data!, settings.Validation, settings.Test, loadOptions, out string name);
        ReportSkipped(data);
        if (data.Test.Count == 0)
            errors.Warning($"{settings.Data} has no test split: the run selects its model on validation but can write no test report " +
                           "(report.json, result.json); give one with --test PATH, or hold one out with --test-fraction 0.1.");
        var description = RunData.Describe(data, settings.DatasetName ?? name, settings.Data!, settings.Validation, settings.Test, loadOptions);
        var results = new List<RunResult>();
        for (int i = 0; i < seeds; i++)
        {
            var seeded = options with { Seed = options.Seed + (ulong)i };
            var run = new RunDirectory(seeds == 1 ? root : Path.Combine(root, $"seed-{seeded.Seed}"));
            var outcome = RunOne(settings, data, seeded, run, description, resume: false, cancel);
            if (outcome.Status == RunStatus.Interrupted) return RunStatus.Interrupted;
            if (outcome.Test is not null)
                results.Add(RunResult.FromReport(description.Name, description.Beta, seeded.Rule.ToString().ToLowerInvariant(),
                    seeded.Method == TrainingMethod.Dicc ? RunLabels.Dicc : RunLabels.Baseline, (long)seeded.Seed, outcome.Test));
        }
        if (seeds > 1 && results.Count > 0 && settings.OutputMode != OutputMode.Json)
        {
            var table = SeedAggregation.Aggregate(results, MetricNames.Accuracy);
            console.Write(SummaryTables.ResultTable(table));
            console.MarkupLine($"[grey]{seeds} seeds in {Markup.Escape(Path.GetFullPath(root))}[/]");
        }
        return RunStatus.Completed;
    }

    /// <summary>
    /// Continues a run with the settings and data of its config.json. Data whose fingerprint differs from the
    /// run's (other data given with --data, or the run's data changed on disk) is refused unless
    /// --allow-data-change says the change is intended.
    /// </summary>
    private RunStatus Resume(TrainSettings settings, CancellationToken cancel)
    {
        string dir = settings.Resume!;
        if (File.Exists(dir)) throw new UsageException($"--resume {dir} is a file; give the run directory.");
        if (!Directory.Exists(dir)) throw new UsageException($"--resume {dir}: no such run directory.");
        if (settings.DataOptionsGiven().FirstOrDefault() is { } fixedOption)
            throw new UsageException($"{fixedOption} cannot change a run: --resume reads every data setting from {Path.Combine(dir, "config.json")}.");
        var run = new RunDirectory(dir);
        using var runLock = LockRun(run);
        var config = run.ReadConfig();
        var d = config.Dataset;
        string source = settings.Data ?? RunData.Source(d);
        using var data = DataArguments.Load(source, settings.Validation ?? RunData.ValidationSource(d),
            settings.Test ?? RunData.TestSource(d), RunData.LoadOptions(d), out _);
        if (!data.ClassNames.SequenceEqual(d.ClassNames))
            throw new UsageException($"--resume {dir}: the data's classes ({string.Join(",", data.ClassNames)}) differ from the run's ({string.Join(",", d.ClassNames)}).");
        if (d.Fingerprint is null)
            errors.Warning($"{run.ConfigFile} records no fingerprint of the run's data, so it cannot be checked to be the same.");
        else if (d.Fingerprint != data.Fingerprint)
        {
            string change = $"the data differs from the run's: {d.Source} had fingerprint {RunData.Short(d.Fingerprint)}, " +
                            $"{source} has {RunData.Short(data.Fingerprint)}";
            if (!settings.AllowDataChange)
                throw new UsageException($"--resume {dir}: {change}; resume on the run's own data, or add --allow-data-change if the change is intended.");
            errors.Warning($"{change}; continuing on it (--allow-data-change).");
        }
        var outcome = RunOne(settings, data, config.Options, run, d, resume: true, cancel);
        return outcome.Status;
    }

    /// <summary>Takes the run directory's lock (a second training of the same directory stops here, naming the first).</summary>
    private RunLock LockRun(RunDirectory run)
    {
        var held = run.Lock();
        if (held.StaleNote is { } note) errors.Warning($"{run.Path}: {note}.");
        return held;
    }

    private TrainingOutcome RunOne(TrainSettings settings, Engine.Data.DatasetSplits data, TrainingOptions options, RunDirectory run,
        DatasetDescription description, bool resume, CancellationToken cancel)
    {
        using var runLock = run.HeldLock is null ? LockRun(run) : null;
        using var backend = Devices.Create(errors, settings.Device);
        var display = new TrainingDisplay(console, errors, settings.OutputMode, Path.GetFileName(run.Path));
        var trainer = new Trainer(backend, data, options, run, description) { Observer = display };
        if (backend.Name == "cpu") WarnIfLong(trainer, data, options);
        var outcome = display.Run(options.Epochs, () => trainer.Run(resume, cancel));
        if (outcome.Status == RunStatus.Completed) Reports.RunPictures.Write(run);
        SummaryTables.PrintOutcome(console, settings.OutputMode, outcome, options);
        return outcome;
    }

    /// <summary>
    /// Before a CPU run that will take days (the paper's VGG19 at full width, say), says so with the estimate.
    /// Runs that are short even at 5 TFLOP/s (more than any CPU) are not timed at all.
    /// </summary>
    private void WarnIfLong(Trainer trainer, Engine.Data.DatasetSplits data, TrainingOptions options)
    {
        double flop = 3.0 * trainer.Model.ForwardFlops(new Engine.Tensors.Shape(1, 1, options.Crop, options.Crop)) * data.Train.Count * options.Epochs;
        if (flop / 5e12 < LongRun.TotalSeconds / 100) return;
        var (seconds, step, steps) = trainer.EstimateRemaining();
        if (LongRunWarning(seconds, step, steps, options) is { } warning) errors.Warning(warning);
    }

    /// <summary>The warning for an estimated CPU run time, or null when it is not long.</summary>
    internal static string? LongRunWarning(double seconds, double stepSeconds, long steps, TrainingOptions options)
    {
        if (!(seconds > LongRun.TotalSeconds)) return null;
        string duration = seconds >= 2 * 86400
            ? $"{(seconds / 86400).ToString("0.#", CultureInfo.InvariantCulture)} days"
            : $"{(seconds / 3600).ToString("0", CultureInfo.InvariantCulture)} hours";
        return $"this run will take about {duration} on this CPU ({stepSeconds.ToString("0.##", CultureInfo.InvariantCulture)} s per step, " +
               $"estimated from a timed forward pass, x {steps.ToString("N0", CultureInfo.InvariantCulture)} steps of " +
               $"{options.Arch.ToString().ToLowerInvariant()} x{options.Width.ToString(CultureInfo.InvariantCulture)}); " +
               "with a CUDA GPU use --device cuda, or train a smaller model (--arch vgg11 --width 0.25). Ctrl-C stops it with a checkpoint.";
    }

    private void ReportSkipped(Engine.Data.DatasetSplits data)
    {
        if (data.Skipped.Count == 0) return;
        errors.MarkupLine($"[yellow]warning: skipped {data.Skipped.Count} bad input(s) (listed in the run's config.json):[/]");
        foreach (var s in data.Skipped.Take(20)) errors.MarkupLine($"  [yellow]{Markup.Escape(s.ToString())}[/]");
        if (data.Skipped.Count > 20) errors.MarkupLine($"  [yellow]... and {data.Skipped.Count - 20} more[/]");
    }
}
