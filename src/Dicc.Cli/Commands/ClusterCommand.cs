using System.ComponentModel;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Clustering;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc cluster: one DICC clustering step on .npy arrays (features, labels, optional centres) to pseudo-labels.</summary>
public sealed class ClusterCommand(IAnsiConsole console) : Command<ClusterCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--features <F.npy>", true)]
        [OptionHelp("Features (N, M), float32 or float64.")]
        public string Features { get; init; } = "";

        [CommandOption("--labels <L.npy>", true)]
        [OptionHelp("True class labels (N) in 0..C-1 (int64 as NumPy saves them, int32 or uint8).")]
        public string Labels { get; init; } = "";

        [CommandOption("--subclasses <LIST>", true)]
        [OptionHelp("Subclasses per class: a list (8,1,20,...), a preset (fer2013-b100, fer2013-b10, mmafedb-b100, ...) or auto (from the label counts).")]
        public string Subclasses { get; init; } = "";

        [CommandOption("--partition <interval|rank>")]
        [OptionHelp("interval: the paper's equal distance intervals; rank: its Algorithm 1, equal-size subclasses.")]
        [DefaultValue("interval")]
        public string Partition { get; init; } = "interval";

        [CommandOption("--centers <C.npy>")]
        [OptionHelp("Centres (C, M) to start from; every class then counts as seen and moves by the EMA rule. Without it each class's centre starts as its batch mean.")]
        public string? Centers { get; init; }

        [CommandOption("--ema-decay <M>")]
        [OptionHelp("Centre update c = M c + (1 - M) batch mean, M in 0..1.")]
        [DefaultValue(ClusteringConfig.DefaultEmaDecay)]
        public double EmaDecay { get; init; } = ClusteringConfig.DefaultEmaDecay;

        [CommandOption("--out <P.npy>", true)]
        [OptionHelp("Pseudo-labels (N), int64: class c's subclasses are offset(c) .. offset(c) + Ns(c) - 1.")]
        public string Out { get; init; } = "";

        [CommandOption("--centers-out <C2.npy>")]
        [OptionHelp("Where to write the updated centres (C, M), float32.")]
        public string? CentersOut { get; init; }

        [CommandOption("--json")]
        [OptionHelp("Print a JSON summary instead of the table (for scripts).")]
        public bool Json { get; init; }
    }

    /// <summary>Subclass sizes listed per class before the list is cut short.</summary>
    private const int SizesShown = 8;

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var partition = CliValues.Choice(settings.Partition, "--partition", "interval", "rank") == "rank" ? PartitionMode.Rank : PartitionMode.Interval;
        var options = new ClusterFileOptions
        {
            FeaturesPath = CliValues.ExistingFile(settings.Features, "--features"),
            LabelsPath = CliValues.ExistingFile(settings.Labels, "--labels"),
            Subclasses = CliValues.Required(settings.Subclasses, "--subclasses"),
            Partition = partition,
            CentersPath = settings.Centers is null ? null : CliValues.ExistingFile(settings.Centers, "--centers"),
            EmaDecay = settings.EmaDecay,
            OutPath = CliValues.OutputFile(settings.Out, "--out"),
            CentersOutPath = settings.CentersOut is null ? null : CliValues.OutputFile(settings.CentersOut, "--centers-out"),
        };
        var result = ClusterFileStep.Run(options);
        var plan = result.Plan;

        // Samples of each class in each of its subclasses.
        var sizes = new int[plan.ClassCount][];
        for (int c = 0; c < plan.ClassCount; c++) sizes[c] = new int[plan.Count(c)];
        foreach (int p in result.PseudoLabels)
        {
            int c = plan.ClassOf(p);
            sizes[c][p - plan.Offset(c)]++;
        }

        if (settings.Json)
        {
            var classes = new JsonArray();
            for (int c = 0; c < plan.ClassCount; c++)
                classes.Add(new JsonObject
                {
                    ["class"] = c, ["samples"] = result.ClassCounts[c], ["subclasses"] = plan.Count(c), ["offset"] = plan.Offset(c),
                    ["sizes"] = JsonOutput.Numbers(sizes[c]),
                });
            JsonOutput.Write(console, new JsonObject
            {
                ["samples"] = result.SampleCount, ["features"] = result.FeatureDim, ["plan"] = plan.ToString(),
                ["total_subclasses"] = plan.TotalSubclasses, ["partition"] = partition.Name(), ["ema_decay"] = settings.EmaDecay,
                ["started_from"] = options.CentersPath is null ? "batch means" : "centres", ["out"] = Path.GetFullPath(options.OutPath),
                ["centers_out"] = options.CentersOutPath is null ? null : Path.GetFullPath(options.CentersOutPath), ["classes"] = classes,
            });
            return ExitCodes.Success;
        }

        var table = new Table().Border(TableBorder.Simple)
            .AddColumn(new TableColumn("class").RightAligned())
            .AddColumn(new TableColumn("samples").RightAligned())
            .AddColumn(new TableColumn("Ns").RightAligned())
            .AddColumn(new TableColumn("pseudo-labels").RightAligned())
            .AddColumn(new TableColumn("used").RightAligned())
            .AddColumn("samples per subclass");
        for (int c = 0; c < plan.ClassCount; c++)
        {
            int used = sizes[c].Count(s => s > 0);
            string list = string.Join(" ", sizes[c].Take(SizesShown)) + (sizes[c].Length > SizesShown ? " …" : "");
            table.AddRow(c.ToString(CliValues.Invariant), CliValues.Count(result.ClassCounts[c]), plan.Count(c).ToString(CliValues.Invariant),
                plan.Count(c) == 1 ? $"{plan.Offset(c)}" : $"{plan.Offset(c)}..{plan.Offset(c) + plan.Count(c) - 1}",
                result.ClassCounts[c] == 0 ? "—" : $"{used}/{plan.Count(c)}", Markup.Escape(result.ClassCounts[c] == 0 ? "(no samples)" : list));
        }
        console.Write(table);
        // The decay only acts on centres that already exist: from an empty state each centre is the batch mean.
        string start = options.CentersPath is null
            ? "started from an empty state (each class's centre is its batch mean)"
            : $"started from the centres in {options.CentersPath} (EMA decay {settings.EmaDecay.ToString(CliValues.Invariant)})";
        console.MarkupLine($"{CliValues.Count(result.SampleCount)} samples x {result.FeatureDim} features; plan {plan} (K = {plan.TotalSubclasses}); " +
                           $"{partition.Name()} partition; {Markup.Escape(start)}.");
        console.MarkupLine($"Wrote pseudo-labels [bold]{Markup.Escape(options.OutPath)}[/] ({result.SampleCount} int64)" +
                           (options.CentersOutPath is null ? "." : $" and centres [bold]{Markup.Escape(options.CentersOutPath)}[/] ({plan.ClassCount}x{result.FeatureDim} float32)."));
        return ExitCodes.Success;
    }
}
