using System.Diagnostics;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc synth: writes the built-in synthetic faces (balanced or long-tailed) as an image-folder dataset.</summary>
public sealed class SynthCommand(IAnsiConsole console) : Command<SynthCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--out <DIR>", true)]
        [OptionHelp("Folder to create (new or empty): DIR/train|val|test/<class>/<class>_NNNNNN.png.")]
        public string Out { get; init; } = "";

        [CommandOption("--per-class <N>")]
        [OptionHelp("Train images per class; with --beta above 1, those of the most frequent class. Default 600.")]
        public int PerClass { get; init; } = 600;

        [CommandOption("--val-per-class <N>")]
        [OptionHelp("Validation images per class (always balanced). Default 100.")]
        public int ValidationPerClass { get; init; } = 100;

        [CommandOption("--test-per-class <N>")]
        [OptionHelp("Test images per class (always balanced). Default 100.")]
        public int TestPerClass { get; init; } = 100;

        [CommandOption("--beta <B>")]
        [OptionHelp("Imbalance factor n_max / n_min of the train split (1 = balanced). Classes are ranked as FER2013's (happy first, disgust last). Default 1.")]
        public double Beta { get; init; } = 1;

        [CommandOption("--profile <exp|step>")]
        [OptionHelp("How counts fall from head to tail: exp (exponential) or step. Default exp.")]
        public string Profile { get; init; } = "exp";

        [CommandOption("--counts <n0,n1,...>")]
        [OptionHelp("Explicit train counts in label order (angry, disgust, fear, happy, sad, surprise, neutral); replaces --per-class and --beta.")]
        public string? Counts { get; init; }

        [CommandOption("--seed <N>")]
        [OptionHelp("Seed of the faces. Image k of a class depends only on (seed, split, class, k). Default 0.")]
        public ulong Seed { get; init; }

        [CommandOption("--size <N>")]
        [OptionHelp("Image side in pixels (16..512). Default 48, as FER2013.")]
        public int Size { get; init; } = ImageDataset.DefaultSize;

        [CommandOption("--json")]
        [OptionHelp("Print a JSON summary instead of the table (for scripts).")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string output = CliValues.NewOrEmptyDirectory(settings.Out, "--out");
        CliValues.NonNegative(settings.PerClass, "--per-class");
        CliValues.NonNegative(settings.ValidationPerClass, "--val-per-class");
        CliValues.NonNegative(settings.TestPerClass, "--test-per-class");
        if (settings.Counts is not null && settings.Beta != 1)
            throw new UsageException("--counts sets the train counts (and so the imbalance); leave out --beta.");
        if (!(settings.Beta >= 1) || double.IsInfinity(settings.Beta))
            throw new UsageException($"--beta must be a finite number >= 1, got {settings.Beta.ToString(CliValues.Invariant)}.");
        if (settings.Size is < 16 or > 512) throw new UsageException($"--size must be in 16..512, got {settings.Size}.");
        var options = CliValues.DataWork(() => new SyntheticFaceOptions
        {
            TrainPerClass = settings.PerClass,
            ValidationPerClass = settings.ValidationPerClass,
            TestPerClass = settings.TestPerClass,
            Beta = settings.Beta,
            Profile = LongTail.ParseProfile(settings.Profile),
            TrainCounts = settings.Counts is null ? null : LongTail.ParseCounts(settings.Counts),
            Seed = settings.Seed,
            Size = settings.Size,
        });
        // Checks the counts before anything is rendered or written.
        int[] trainCounts = CliValues.DataWork(() => SyntheticFaces.TrainCounts(options));
        if (trainCounts.Sum() + (settings.ValidationPerClass + settings.TestPerClass) * trainCounts.Length == 0)
            throw new UsageException("--per-class, --val-per-class and --test-per-class are all 0: there is nothing to write.");

        var clock = Stopwatch.StartNew();
        int written = 0;
        DatasetSplits? data = null;
        CliStatus.Run(console, settings.Json, "Rendering and writing synthetic faces...", () =>
        {
            data = CliValues.DataWork(() => SyntheticFaces.Generate(options));
            written = CliValues.DataWork(() => ImageFolderWriter.Write(data, output));
        });
        using var splits = data!;
        clock.Stop();

        var counts = SplitNames.All.Select(s => splits[s].ClassCounts()).ToArray();
        double beta = LongTail.ImbalanceFactor(counts[0]);
        if (settings.Json)
        {
            var classes = new JsonArray();
            for (int c = 0; c < splits.ClassNames.Count; c++)
                classes.Add(new JsonObject
                {
                    ["name"] = splits.ClassNames[c], ["train"] = counts[0][c], ["val"] = counts[1][c], ["test"] = counts[2][c],
                });
            JsonOutput.Write(console, new JsonObject
            {
                ["out"] = Path.GetFullPath(output), ["files"] = written, ["size"] = settings.Size, ["seed"] = settings.Seed,
                ["beta"] = beta, ["classes"] = classes, ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            });
            return ExitCodes.Success;
        }

        console.MarkupLine($"Wrote [bold]{CliValues.Count(written)}[/] synthetic faces ({settings.Size}x{settings.Size} grayscale PNG, seed {settings.Seed}) " +
                           $"to [bold]{Markup.Escape(output)}[/] in {CliValues.Duration(clock.Elapsed)}.");
        console.Write(DataTables.SplitCounts(splits.ClassNames, counts));
        string shape = settings.Counts is not null ? "explicit counts" : settings.Beta == 1 ? "balanced" : $"{settings.Profile.Trim().ToLowerInvariant()} profile";
        console.MarkupLine($"Train split: β = n_max / n_min = [bold]{CliValues.Number(beta, "0.##")}[/] ({shape}); validation and test are balanced.");
        console.MarkupLine($"[grey]Next: dicc train --data {Markup.Escape(CliStatus.Quote(output))}[/]");
        return ExitCodes.Success;
    }

}
