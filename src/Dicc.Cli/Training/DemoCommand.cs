using System.ComponentModel;
using System.Globalization;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Backends;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Models;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Training;

/// <summary>
/// dicc demo: on a fresh machine, with no data and no arguments, generates the built-in long-tailed synthetic
/// faces, trains a baseline and a DICC model with the same seed and settings, and prints the comparison.
/// On a CPU it uses a narrow VGG11 so that both runs finish in a few minutes on two cores; on a GPU the
/// paper's VGG19.
/// </summary>
public sealed class DemoCommand(IAnsiConsole console, ErrorConsole errors) : Command<DemoCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--device <DEVICE>")]
        [OptionHelp("auto (default), cpu, cuda or cuda:N.")]
        public string Device { get; init; } = "auto";

        [CommandOption("--out <DIR>")]
        [OptionHelp("Where the two run directories go (default runs/demo-<time>).")]
        public string? Out { get; init; }

        [CommandOption("--epochs <N>")]
        [OptionHelp("Epochs per run (default 40).")]
        public int? Epochs { get; init; }

        [CommandOption("--rule <RULE>")]
        [OptionHelp("Rebalancing rule for both runs: resample (default), none or reweight.")]
        public string Rule { get; init; } = "resample";

        [CommandOption("--per-class <N>")]
        [OptionHelp("Training images of the most frequent class (default 300; the tail has a tenth).")]
        public int PerClass { get; init; } = 300;

        [CommandOption("--seed <N>")]
        public int Seed { get; init; } = 1;

        [CommandOption("--quiet")]
        public bool Quiet { get; init; }

        [CommandOption("--json")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.PerClass < 20) throw new UsageException($"--per-class must be at least 20, got {settings.PerClass}.");
        if (settings.Seed < 0) throw new UsageException($"--seed must be non-negative, got {settings.Seed}.");
        ImbalanceRule rule;
        try { rule = ImbalanceRules.Parse(settings.Rule); }
        catch (FormatException e) { throw new UsageException($"--rule: {e.Message}"); }
        var mode = settings.Json ? OutputMode.Json : settings.Quiet ? OutputMode.Quiet : OutputMode.Normal;
        string root = settings.Out ?? Path.Combine("runs", "demo-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        CliValues.NewOrEmptyDirectory(root, "--out");
        using var stop = new StopSignals(cancellationToken);

        using var backend = Devices.Create(errors, settings.Device);
        bool cpu = backend.Name == "cpu";
        // The faces as --data names them, so that a demo run resumes (and is checked) like any other.
        string source = $"synthetic:per-class={settings.PerClass},beta=10,seed={settings.Seed},val=30,test=100";
        if (mode == OutputMode.Normal) console.MarkupLine("[grey]generating the synthetic long-tailed faces...[/]");
        var loadOptions = new Engine.Data.DatasetLoadOptions();
        using var data = DataArguments.Load(source, null, null, loadOptions, out _);
        var description = RunData.Describe(data, "synthetic", source, null, null, loadOptions);
        if (mode == OutputMode.Normal)
            console.MarkupLine($"train {data.Train.Count} images ({string.Join(", ", data.ClassNames.Zip(data.Train.ClassCounts(), (n, c) => $"{n} {c}"))}), " +
                               $"validation {data.Validation.Count}, test {data.Test.Count} (balanced), on {Markup.Escape(backend.Description)}");

        var common = new TrainingOptions
        {
            Preset = "demo",
            Arch = cpu ? VggDepth.Vgg11 : VggDepth.Vgg19,
            Width = cpu ? 0.125 : 1.0,
            Dropout = 0.2f,
            Epochs = settings.Epochs ?? 40,
            BatchSize = 32,
            LearningRate = 0.01,
            WeightDecay = 5e-4,
            Rule = rule,
            Seed = (ulong)settings.Seed,
            // A short run on a small model: rank partition and the square-root plan (at most 3 subclasses at
            // beta 10) keep the pseudo-labels learnable from the first epochs; see docs/method.md.
            Partition = Engine.Clustering.PartitionMode.Rank,
            Subclasses = Engine.Clustering.SubclassPlan.SqrtKeyword,
        };
        var outcomes = new List<(string Name, TrainingOutcome Outcome, double Seconds)>();
        foreach (var method in new[] { TrainingMethod.Baseline, TrainingMethod.Dicc })
        {
            var options = common with { Method = method };
            var run = new RunDirectory(Path.Combine(root, method.ToString().ToLowerInvariant()));
            var display = new TrainingDisplay(console, errors, mode, method.ToString().ToLowerInvariant());
            var trainer = new Trainer(backend, data, options, run, description) { Observer = display };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var outcome = display.Run(options.Epochs, () => trainer.Run(false, stop.Token));
            if (outcome.Status == RunStatus.Interrupted) return stop.ExitCode;
            Reports.RunPictures.Write(run);
            outcomes.Add((method == TrainingMethod.Dicc ? "DICC" : "baseline", outcome, clock.Elapsed.TotalSeconds));
        }
        PrintComparison(mode, outcomes, common, Shown(root));
        return ExitCodes.Success;
    }

    /// <summary>A folder as the user can type it: relative to the current folder when it lies below it, else absolute.</summary>
    internal static string Shown(string folder)
    {
        string full = Path.GetFullPath(folder);
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, full);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? full : relative;
    }

    private void PrintComparison(OutputMode mode, List<(string Name, TrainingOutcome Outcome, double Seconds)> outcomes,
        TrainingOptions options, string root)
    {
        static string P(double? v) => v is double x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) + "%" : "-";
        static double? Few(Engine.Evaluation.EvaluationReport? r) =>
            r?.ShotGroups?.Groups.FirstOrDefault(g => g.Group == Engine.Evaluation.ShotGroup.Few)?.Accuracy;
        if (mode == OutputMode.Json)
        {
            foreach (var (name, o, s) in outcomes)
                console.Profile.Out.Writer.WriteLine(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["event"] = "demo", ["method"] = name.ToLowerInvariant(), ["run"] = o.Run.Path, ["test_accuracy"] = o.Test?.Accuracy,
                    ["test_balanced_accuracy"] = o.Test?.BalancedAccuracy, ["test_macro_f1"] = o.Test?.MacroF1,
                    ["test_few_shot_accuracy"] = Few(o.Test), ["seconds"] = s,
                }, CliJsonObjects.Options));
            return;
        }
        var t = new Table().Title($"[bold]baseline vs DICC[/] on synthetic faces (beta 10), {options.Arch.ToString().ToLowerInvariant()} x{options.Width.ToString(CultureInfo.InvariantCulture)}, {options.Epochs} epochs, rule {options.Rule.ToString().ToLowerInvariant()}")
            .AddColumn("method");
        foreach (var h in new[] { "test accuracy", "balanced accuracy", "macro-F1", "few-shot accuracy", "best epoch", "time" })
            t.AddColumn(new TableColumn(h).RightAligned());
        foreach (var (name, o, s) in outcomes)
            t.AddRow(name, P(o.Test?.Accuracy), P(o.Test?.BalancedAccuracy), P(o.Test?.MacroF1), P(Few(o.Test)),
                o.BestEpoch.ToString(CultureInfo.InvariantCulture), $"{s.ToString("F0", CultureInfo.InvariantCulture)} s");
        t.Caption($"test split: 100 images per class (balanced); model selected on validation {options.SelectOn.Name()}");
        console.Write(t);
        console.MarkupLine($"runs, reports and pictures (confusion.png, pr.png, curves.png): [blue]{Markup.Escape(root)}[/]");
        console.MarkupLine($"[grey]compare them again with: dicc compare {Markup.Escape(root)}[/]");
    }
}
