using System.Diagnostics;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc longtail: a long-tailed train split of a dataset, written as a manifest or a FER2013 CSV.</summary>
public sealed class LongTailCommand(IAnsiConsole console) : Command<LongTailCommand.Settings>
{
    public sealed class Settings : DataLoadSettings
    {
        [CommandOption("--data <PATH>", true)]
        [OptionHelp("Dataset: image folder, FER2013 CSV, manifest or .diccpack.")]
        public string Data { get; init; } = "";

        [CommandOption("--out <PATH>", true)]
        [OptionHelp("Output: a manifest listing the chosen image files, or a FER2013 CSV when the name ends in .csv (needed for CSV data).")]
        public string Out { get; init; } = "";

        [CommandOption("--beta <B>")]
        [OptionHelp("Imbalance factor n_max / n_min (>= 1) of the new train split. Required unless --counts is given.")]
        public double? Beta { get; init; }

        [CommandOption("--profile <exp|step>")]
        [OptionHelp("exp: n_r = n_max * beta^(-r/(C-1)) by frequency rank r; step: the frequent half keep n_max, the rest n_max / beta. Default exp.")]
        public string Profile { get; init; } = "exp";

        [CommandOption("--counts <n0,n1,...|PRESET>")]
        [OptionHelp("Explicit train counts in label order, or fer2013-beta10 / fer2013-beta100 (the paper's long-tailed FER2013). Replaces --beta and --profile.")]
        public string? Counts { get; init; }

        [CommandOption("--max-count <N>")]
        [OptionHelp("n_max, the head class's count. Default: the largest every class can supply under the profile.")]
        public int? MaxCount { get; init; }

        [CommandOption("--seed <N>")]
        [OptionHelp("Seed of the draw; under one seed a smaller count is a subset of a larger one. Default 0.")]
        public ulong Seed { get; init; }

        [CommandOption("--no-cache")]
        [OptionHelp("Decode the source even when a packed cache of it exists, and write none.")]
        public bool NoCache { get; init; }

        [CommandOption("--json")]
        [OptionHelp("Print a JSON summary instead of the table (for scripts).")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string data = CliValues.ExistingPath(settings.Data, "--data");
        string output = CliValues.OutputFile(settings.Out, "--out");
        if (string.Equals(Path.GetFullPath(data), Path.GetFullPath(output), StringComparison.Ordinal))
            throw new UsageException($"--out: '{output}' is the --data source itself; write the subset to another file.");
        var load = CliValues.LoadOptions(settings.OnBadImage, settings.Classes, settings.Size, settings.NoCache,
            settings.ClassMap, settings.AllowMissingClasses) with
        {
            FaceCrop = settings.FaceCrop(settings.DetectFaces),
        };
        LongTailOptions options;
        if (settings.Counts is not null)
        {
            if (settings.Beta is not null) throw new UsageException("--counts sets the counts (and so beta); leave out --beta.");
            if (settings.MaxCount is not null) throw new UsageException("--counts sets the counts (and so n_max); leave out --max-count.");
            options = new LongTailOptions { Counts = CliValues.DataWork(() => LongTail.ParseCounts(settings.Counts)), Seed = settings.Seed };
        }
        else
        {
            double beta = settings.Beta ?? throw new UsageException("--beta is required (or give explicit --counts).");
            if (!(beta >= 1) || double.IsInfinity(beta))
                throw new UsageException($"--beta must be a finite number >= 1, got {beta.ToString(CliValues.Invariant)}.");
            if (settings.MaxCount is int m) CliValues.Positive(m, "--max-count");
            options = new LongTailOptions
            {
                Beta = beta, Profile = CliValues.DataWork(() => LongTail.ParseProfile(settings.Profile)), MaxCount = settings.MaxCount, Seed = settings.Seed,
            };
        }

        var clock = Stopwatch.StartNew();
        var report = CliStatus.Run(console, settings.Json, $"Loading {data} and drawing the long-tailed split...",
            () => CliValues.DataWork(() => LongTail.Write(data, output, options, load)));
        clock.Stop();

        if (settings.Json)
        {
            var classes = new JsonArray();
            for (int c = 0; c < report.ClassNames.Count; c++)
                classes.Add(new JsonObject { ["name"] = report.ClassNames[c], ["before"] = report.Before[c], ["after"] = report.After[c] });
            JsonOutput.Write(console, new JsonObject
            {
                ["data"] = data, ["out"] = Path.GetFullPath(output), ["format"] = report.Format, ["seed"] = settings.Seed,
                ["asked_beta"] = settings.Counts is null ? settings.Beta : null, ["beta"] = report.ImbalanceFactor, ["classes"] = classes,
            });
            return ExitCodes.Success;
        }

        var table = new Table().Border(TableBorder.Simple).AddColumn("class")
            .AddColumn(new TableColumn("train before").RightAligned())
            .AddColumn(new TableColumn("train after").RightAligned())
            .AddColumn(new TableColumn("kept").RightAligned());
        for (int c = 0; c < report.ClassNames.Count; c++)
            table.AddRow(Markup.Escape(report.ClassNames[c]), CliValues.Count(report.Before[c]), CliValues.Count(report.After[c]),
                Kept(report.After[c], report.Before[c]));
        table.AddRow("[bold]total[/]", $"[bold]{CliValues.Count(report.Before.Sum())}[/]", $"[bold]{CliValues.Count(report.After.Sum())}[/]",
            Kept(report.After.Sum(), report.Before.Sum()));
        console.Write(table);

        string before = CliValues.Number(LongTail.ImbalanceFactor(report.Before), "0.##");
        string after = CliValues.Number(report.ImbalanceFactor, "0.##");
        string asked = settings.Counts is null ? $" (asked {settings.Beta!.Value.ToString("0.##", CliValues.Invariant)}, {options.Profile.ToString().ToLowerInvariant()} profile; counts are floored)" : " (explicit counts)";
        console.MarkupLine($"Train β = n_max / n_min: {before} before, [bold]{after}[/] after{Markup.Escape(asked)}. Validation and test are unchanged.");
        string what = report.Format == "csv" ? "FER2013 CSV" : "manifest";
        console.MarkupLine($"Wrote {what} [bold]{Markup.Escape(output)}[/] in {CliValues.Duration(clock.Elapsed)}.");
        console.MarkupLine($"[grey]Next: dicc train --data {Markup.Escape(CliStatus.Quote(output))}[/]");
        return ExitCodes.Success;
    }

    private static string Kept(int after, int before) =>
        before == 0 ? "—" : $"{CliValues.Percent((double)after / before, 1)}%";
}
