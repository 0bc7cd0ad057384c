using System.Globalization;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Backends;
using Dicc.Engine.Data;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Training;

/// <summary>dicc eval: metrics, confusion matrix and PR data of a trained run on a data split.</summary>
public sealed class EvalCommand(IAnsiConsole console, ErrorConsole errors) : Command<EvalCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--run <DIR>")]
        [OptionHelp("The run directory to evaluate.")]
        public string? Run { get; init; }

        [CommandOption("--data <PATH>")]
        [OptionHelp("Data to evaluate on (default: the data the run was trained on).")]
        public string? Data { get; init; }

        [CommandOption("--split <SPLIT>")]
        [OptionHelp("test (default), val or train.")]
        public string Split { get; init; } = "test";

        [CommandOption("--ten-crop")]
        [OptionHelp("Average the predictions of ten crops per image.")]
        public bool TenCrop { get; init; }

        [CommandOption("--checkpoint <WHICH>")]
        [OptionHelp("best (selected on validation, default) or last.")]
        public string Checkpoint { get; init; } = "best";

        [CommandOption("--classes <LIST>")]
        [OptionHelp("Class folder names in label order (default: the run's own, from its config.json).")]
        public string? Classes { get; init; }

        [CommandOption("--device <DEVICE>")]
        public string Device { get; init; } = "auto";

        [CommandOption("--json")]
        [OptionHelp("Print the evaluation report as JSON.")]
        public bool Json { get; init; }

        public override ValidationResult Validate() =>
            Run is null ? ValidationResult.Error("--run DIR is required.") : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var run = new RunDirectory(settings.Run!);
        var split = settings.Split.Trim().ToLowerInvariant() switch
        {
            "test" => Engine.Data.Split.Test,
            "val" or "validation" => Engine.Data.Split.Validation,
            "train" => Engine.Data.Split.Train,
            _ => throw new UsageException($"--split: '{settings.Split}' is not test, val or train."),
        };
        using var backend = Devices.Create(errors, settings.Device);
        var (model, config) = RunModel.Load(backend, run, settings.Checkpoint);
        var d = config.Dataset;
        // Every data setting of the run (class list and map, bad-image policy, hold-outs, image size), unless overridden.
        var loadOptions = RunData.LoadOptions(d);
        if (settings.Classes is not null) loadOptions = loadOptions with { ClassNames = CliValues.List(settings.Classes, "--classes") };
        using var data = settings.Data is not null
            ? DataArguments.Load(settings.Data, null, null, loadOptions, out _)
            : RunData.Load(d, RunData.Source(d), RunData.ValidationSource(d), RunData.TestSource(d), loadOptions);
        var dataset = data[split];
        if (dataset.Count == 0) throw new UsageException($"--split {settings.Split}: the data has no {settings.Split} images.");
        if (!dataset.ClassNames.SequenceEqual(d.ClassNames))
            throw new UsageException($"The data's classes ({string.Join(",", dataset.ClassNames)}) differ from the run's ({string.Join(",", d.ClassNames)}).");

        var evaluator = new Evaluator(model, config.Options.Crop, config.Options.EvalBatchSize);
        var report = evaluator.Evaluate(dataset, settings.TenCrop, keepScores: true, d.TrainCounts.Select(c => (long)c).ToArray(),
            ShotGroupRule.Parse(config.Options.ShotGroups));
        string file = Path.Combine(run.Path, $"eval-{settings.Split.ToLowerInvariant()}{(settings.TenCrop ? "-tencrop" : "")}.json");
        report.Save(file);
        if (settings.Json)
        {
            console.Profile.Out.Writer.WriteLine(report.ToJson());
            return ExitCodes.Success;
        }
        var table = new Table().AddColumn("").AddColumn(new TableColumn("value").RightAligned())
            .Title($"[bold]{Markup.Escape(Path.GetFileName(run.Path))}[/] on {dataset.Count} {settings.Split} images{(settings.TenCrop ? " (ten-crop)" : "")}");
        table.AddRow("top-1 accuracy", Pct(report.Accuracy));
        table.AddRow("balanced accuracy", Pct(report.BalancedAccuracy));
        table.AddRow("macro-F1", Pct(report.MacroF1));
        if (report.MeanAveragePrecision is double map) table.AddRow("mean AP", Pct(map));
        if (report.Calibration is { } calibration) table.AddRow($"ECE ({calibration.Bins.Length} bins; lower is better)", Pct(calibration.ExpectedCalibrationError));
        console.Write(table);
        console.Write(SummaryTables.PerClass(report, SplitName(split)));
        console.Write(Confusion(report));
        console.MarkupLine($"[grey]report: {Markup.Escape(file)}[/]");
        return ExitCodes.Success;
    }

    private static string SplitName(Split split) => split switch
    {
        Split.Validation => "validation",
        Split.Train => "train",
        _ => "test",
    };

    private static string Pct(double v) => (100 * v).ToString("F2", CultureInfo.InvariantCulture) + "%";

    private static Table Confusion(EvaluationReport report)
    {
        var t = new Table().Title("confusion matrix (rows: true, columns: predicted)").AddColumn("");
        foreach (var name in report.ClassNames) t.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
        for (int i = 0; i < report.ClassNames.Length; i++)
            t.AddRow([Markup.Escape(report.ClassNames[i]), .. report.ConfusionMatrix[i].Select(
                (v, j) => i == j ? $"[green]{v}[/]" : v.ToString(CultureInfo.InvariantCulture))]);
        return t;
    }
}
