using System.Diagnostics;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc pack: decodes a dataset once into a memory-mapped uint8 pack for fast loading.</summary>
public sealed class PackCommand(IAnsiConsole console) : Command<PackCommand.Settings>
{
    public sealed class Settings : DataLoadSettings
    {
        [CommandOption("--data <PATH>", true)]
        [OptionHelp("Dataset: image folder, FER2013 CSV or manifest.")]
        public string Data { get; init; } = "";

        [CommandOption("--out <FILE>", true)]
        [OptionHelp("Pack file to write. Named <data>.diccpack beside the data, the loader uses it automatically while the data is unchanged.")]
        public string Out { get; init; } = "";

        [CommandOption("--json")]
        [OptionHelp("Print a JSON summary instead of the table (for scripts).")]
        public bool Json { get; init; }
    }

    /// <summary>How many skipped inputs are named on the console (all are counted; the pack lists every one).</summary>
    private const int SkippedShown = 5;

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string data = CliValues.ExistingPath(settings.Data, "--data");
        string output = CliValues.OutputFile(settings.Out, "--out");
        if (string.Equals(Path.GetFullPath(data), Path.GetFullPath(output), StringComparison.Ordinal))
            throw new UsageException($"--out: '{output}' is the --data source itself; write the pack to another file.");
        var load = CliValues.LoadOptions(settings.OnBadImage, settings.Classes, settings.Size, noCache: true,
            settings.ClassMap, settings.AllowMissingClasses) with
        {
            FaceCrop = settings.FaceCrop(settings.DetectFaces),
        };

        var clock = Stopwatch.StartNew();
        using var splits = CliStatus.Run(console, settings.Json, $"Decoding {data}...", () => CliValues.DataWork(() => DatasetPack.Create(data, output, load)));
        clock.Stop();
        long bytes = new FileInfo(output).Length;
        var counts = SplitNames.All.Select(s => splits[s].ClassCounts()).ToArray();

        if (settings.Json)
        {
            var classes = new JsonArray();
            for (int c = 0; c < splits.ClassNames.Count; c++)
                classes.Add(new JsonObject { ["name"] = splits.ClassNames[c], ["train"] = counts[0][c], ["val"] = counts[1][c], ["test"] = counts[2][c] });
            JsonOutput.Write(console, new JsonObject
            {
                ["data"] = data, ["out"] = Path.GetFullPath(output), ["bytes"] = bytes, ["images"] = splits.TotalCount,
                ["height"] = splits.Height, ["width"] = splits.Width, ["fingerprint"] = splits.Fingerprint,
                ["validation_held_out"] = splits.ValidationHeldOut, ["classes"] = classes,
                ["skipped"] = JsonOutput.Strings(splits.Skipped.Select(s => s.ToString())),
                ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            });
            return ExitCodes.Success;
        }

        console.Write(DataTables.SplitCounts(splits.ClassNames, counts));
        if (splits.ValidationHeldOut)
            console.MarkupLine("[grey]The source has no validation split: 10% of each train class is held out as validation (seeded).[/]");
        if (splits.Skipped.Count > 0)
        {
            console.MarkupLine($"[yellow]Skipped {CliValues.Count(splits.Skipped.Count)} unreadable input(s):[/]");
            foreach (var s in splits.Skipped.Take(SkippedShown)) console.MarkupLine($"  [yellow]{Markup.Escape(s.ToString())}[/]");
            if (splits.Skipped.Count > SkippedShown) console.MarkupLine($"  [yellow]... and {splits.Skipped.Count - SkippedShown} more.[/]");
        }
        console.MarkupLine($"Wrote [bold]{Markup.Escape(output)}[/]: {CliValues.Count(splits.TotalCount)} images of {splits.Height}x{splits.Width}, " +
                           $"{CliValues.Bytes(bytes)}, in {CliValues.Duration(clock.Elapsed)}.");
        string beside = Path.TrimEndingDirectorySeparator(Path.GetFullPath(data)) + DatasetPack.Extension;
        if (string.Equals(Path.GetFullPath(output), beside, StringComparison.Ordinal))
            console.MarkupLine("[grey]It sits beside the data, so loading the data uses it while the data is unchanged.[/]");
        console.MarkupLine($"[grey]Next: dicc train --data {Markup.Escape(CliStatus.Quote(output))}[/]");
        return ExitCodes.Success;
    }
}
