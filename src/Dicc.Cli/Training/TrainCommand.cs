using System.Globalization;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Backends;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Training;

/// <summary>dicc train: one run (or several seeds) into run directories; Ctrl-C saves a checkpoint.</summary>
public sealed class TrainCommand(IAnsiConsole console) : Command<TrainSettings>
{
    /// <summary>Exit code of a run stopped by Ctrl-C (its checkpoint is saved; --resume continues it).</summary>
    public const int Interrupted = 130;

    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            e.Cancel = true; // finish the step, save a checkpoint, then stop
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCtrlC;
        try
        {
            return settings.Resume is not null ? Resume(settings, cancel.Token) : Train(settings, cancel.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCtrlC;
        }
    }

    private int Train(TrainSettings settings, CancellationToken cancel)
    {
        var options = settings.ToOptions();
        using var data = DataArguments.Load(settings.Data!, settings.Validation, settings.Test, settings.ToLoadOptions(), out string name);
        ReportSkipped(data);
        var description = Trainer.Describe(data, settings.DatasetName ?? name) with
        {
            Source = settings.Data!, ValidationSource = settings.Validation, TestSource = settings.Test,
        };
        string root = settings.Out ?? Path.Combine("runs",
            $"{options.Method.ToString().ToLowerInvariant()}-{options.Rule.ToString().ToLowerInvariant()}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
        int seeds = settings.Seeds ?? 1;
        var results = new List<RunResult>();
        for (int i = 0; i < seeds; i++)
        {
            var seeded = options with { Seed = options.Seed + (ulong)i };
            var run = new RunDirectory(seeds == 1 ? root : Path.Combine(root, $"seed-{seeded.Seed}"));
            var outcome = RunOne(settings, data, seeded, run, description, resume: false, cancel);
            if (outcome.Status == RunStatus.Interrupted) return Interrupted;
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
        return ExitCodes.Success;
    }

    private int Resume(TrainSettings settings, CancellationToken cancel)
    {
        var run = new RunDirectory(settings.Resume!);
        var config = run.ReadConfig();
        if (!File.Exists(run.LastCheckpoint)) throw new UsageException($"--resume {settings.Resume}: no checkpoint in {run.CheckpointDirectory}.");
        var d = config.Dataset;
        using var data = DataArguments.Load(settings.Data ?? d.Source, settings.Validation ?? d.ValidationSource,
            settings.Test ?? d.TestSource, settings.ToLoadOptions(), out _);
        if (d.Fingerprint is not null && data.Fingerprint is not null && d.Fingerprint != data.Fingerprint)
            console.MarkupLine($"[yellow]warning:[/] the data at {Markup.Escape(d.Source)} changed since the run started (fingerprint differs).");
        var outcome = RunOne(settings, data, config.Options, run, d, resume: true, cancel);
        return outcome.Status == RunStatus.Interrupted ? Interrupted : ExitCodes.Success;
    }

    private TrainingOutcome RunOne(TrainSettings settings, Engine.Data.DatasetSplits data, TrainingOptions options, RunDirectory run,
        DatasetDescription description, bool resume, CancellationToken cancel)
    {
        using var backend = Devices.Create(console, settings.Device);
        var display = new TrainingDisplay(console, settings.OutputMode, Path.GetFileName(run.Path));
        var trainer = new Trainer(backend, data, options, run, description) { Observer = display };
        var outcome = display.Run(options.Epochs, () => trainer.Run(resume, cancel));
        if (outcome.Status == RunStatus.Completed) Reports.RunPictures.Write(run);
        SummaryTables.PrintOutcome(console, settings.OutputMode, outcome, options);
        return outcome;
    }

    private void ReportSkipped(Engine.Data.DatasetSplits data)
    {
        if (data.Skipped.Count == 0) return;
        console.MarkupLine($"[yellow]skipped {data.Skipped.Count} bad input(s):[/]");
        foreach (var s in data.Skipped.Take(20)) console.MarkupLine($"  [yellow]{Markup.Escape(s.ToString())}[/]");
        if (data.Skipped.Count > 20) console.MarkupLine($"  [yellow]... and {data.Skipped.Count - 20} more[/]");
    }
}
