using Dicc.Cli.Infrastructure;
using Dicc.Engine;
using Dicc.Engine.Evaluation;
using Dicc.Engine.IO;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>
/// dicc compare: the paper's table from finished runs, a row per (dataset, beta, rule), baseline and DICC
/// side by side, each cell the mean ± sample standard deviation over seeds with min and best of seeds beside it.
/// </summary>
public sealed class CompareCommand(IAnsiConsole console, ErrorConsole errors) : Command<CompareCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<RUN_DIRS>")]
        [OptionHelp("Run directories, or folders holding them at any depth (e.g. a --seeds run's <out> with seed-<n>/ inside).")]
        public string[] Runs { get; init; } = [];

        [CommandOption("--metric <NAME>")]
        [OptionHelp("accuracy (default), balanced-accuracy, macro-f1, macro-precision, macro-recall, mean-ap, many-shot-accuracy, medium-shot-accuracy, few-shot-accuracy or ece (expected calibration error; lower is better, so its best of seeds is the minimum) (hyphens or underscores).")]
        public string Metric { get; init; } = MetricNames.Accuracy;

        [CommandOption("--decimals <N>")]
        [OptionHelp("Digits after the point (values are percent). Default 2.")]
        public int Decimals { get; init; } = 2;

        [CommandOption("--markdown <FILE>")]
        [OptionHelp("Also write the table as Markdown (with its caption).")]
        public string? Markdown { get; init; }

        [CommandOption("--csv <FILE>")]
        [OptionHelp("Also write one CSV line per (dataset, beta, rule, method) with unrounded fractions, n, mean, std, min, max, best, seeds.")]
        public string? Csv { get; init; }

        [CommandOption("--runs")]
        [OptionHelp("Also list every run read, with its folder and value.")]
        public bool ListRuns { get; init; }

        [CommandOption("--json")]
        [OptionHelp("Print the aggregated table as JSON (unrounded fractions) instead of the table.")]
        public bool Json { get; init; }
    }

    /// <summary>Every metric a run's result.json can hold.</summary>
    internal static readonly string[] Metrics =
    [
        MetricNames.Accuracy, MetricNames.BalancedAccuracy, MetricNames.MacroF1, MetricNames.MacroPrecision, MetricNames.MacroRecall,
        MetricNames.MeanAveragePrecision, MetricNames.ManyShotAccuracy, MetricNames.MediumShotAccuracy, MetricNames.FewShotAccuracy,
        MetricNames.ExpectedCalibrationError,
    ];

    /// <summary>A run read from its directory, with its settings from config.json (null when it has none that can be read).</summary>
    internal sealed record FoundRun(string Directory, RunResult Result, IReadOnlyList<RunSetting>? Settings = null);

    /// <summary>An argument (or a folder below one) that is not a finished run, and why.</summary>
    internal sealed record NotARun(string Path, string Reason);

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.Runs.Length == 0) throw new UsageException("give at least one run directory (or a folder holding run directories).");
        string metric = CliValues.Choice(settings.Metric.Trim().Replace('-', '_'), "--metric", Metrics);
        if (settings.Decimals is < 0 or > 6) throw new UsageException($"--decimals must be in 0..6, got {settings.Decimals}.");
        string? markdown = settings.Markdown is null ? null : CliValues.OutputFile(settings.Markdown, "--markdown");
        string? csv = settings.Csv is null ? null : CliValues.OutputFile(settings.Csv, "--csv");

        var (runs, notRuns) = Discover(settings.Runs);
        if (!settings.Json)
            foreach (var n in notRuns)
                errors.MarkupLine($"[yellow]not a run:[/] {Markup.Escape(n.Path)} [grey]({Markup.Escape(n.Reason)})[/]");
        if (runs.Count == 0)
            throw new UsageException($"no finished runs (run directories with result.json) in {string.Join(", ", settings.Runs)}.");
        CheckDistinct(runs);
        var missing = runs.Where(r => !r.Result.Metrics.ContainsKey(metric)).ToList();
        if (missing.Count > 0)
            throw new UsageException($"--metric {metric}: {missing.Count} run(s) do not have it, e.g. {missing[0].Directory} " +
                                     $"(it has: {string.Join(", ", missing[0].Result.Metrics.Keys)})" +
                                     (metric == MetricNames.ExpectedCalibrationError ? "; runs finished before calibration was reported have no ECE." : "."));

        // Folds of k-fold cross-validations are tabled per cross-validation; other runs per configuration over seeds.
        var foldRuns = runs.Where(r => r.Result.Fold is not null).ToList();
        var seedRuns = runs.Where(r => r.Result.Fold is null).ToList();
        if (foldRuns.Count > 0 && seedRuns.Count > 0 && (markdown ?? csv) is not null || foldRuns.Count > 0 && seedRuns.Count > 0 && settings.Json)
            throw new UsageException($"the runs mix {foldRuns.Count} fold(s) of k-fold cross-validations (e.g. {foldRuns[0].Directory}) with {seedRuns.Count} " +
                                     $"other run(s) (e.g. {seedRuns[0].Directory}); --json, --markdown and --csv take one kind: compare them separately.");
        if (foldRuns.Count > 0)
        {
            var folds = FoldAggregation.Aggregate(foldRuns.Select(r => r.Result), metric);
            if (markdown is not null) AtomicFile.WriteAllText(markdown, FoldAggregation.ToMarkdown(folds, settings.Decimals));
            if (csv is not null) AtomicFile.WriteAllText(csv, FoldAggregation.ToCsv(folds));
            if (settings.Json)
            {
                console.Profile.Out.Writer.WriteLine(FoldJson(folds).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                return ExitCodes.Success;
            }
            console.Write(Training.SummaryTables.FoldTable(folds, settings.Decimals));
            console.MarkupLine($"[grey]{Markup.Escape(FoldAggregation.Caption(folds))}[/]");
            foreach (var row in folds.Rows.Where(r => !r.Complete))
                errors.Warning($"{FoldAggregation.Title(row)}: only {row.Count} of {row.Folds} folds are finished; the mean is over those.");
            console.MarkupLine($"{foldRuns.Count} fold run(s), {folds.Rows.Length} cross-validation(s).");
            if (settings.ListRuns) console.Write(RunList(foldRuns, metric, settings.Decimals));
            if (seedRuns.Count == 0)
            {
                if (markdown is not null) console.MarkupLine($"Markdown written to [bold]{Markup.Escape(markdown)}[/].");
                if (csv is not null) console.MarkupLine($"CSV written to [bold]{Markup.Escape(csv)}[/].");
                return ExitCodes.Success;
            }
            runs = seedRuns;
        }

        var labelled = Label(runs);
        var table = SeedAggregation.Aggregate(labelled.SelectMany(r => r.Rows), metric, MetricNames.HigherIsBetter(metric));
        var layout = ResultTableFormat.ToLayout(table, settings.Decimals);
        var selections = runs.Select(r => r.Settings?.FirstOrDefault(s => s.Name == SelectOnSetting)?.Value).Distinct().ToArray();
        if (selections is [string selection])
            layout = layout with { Caption = layout.Caption + $" Models selected on validation {selection.Replace('-', ' ')}." };
        if (markdown is not null) AtomicFile.WriteAllText(markdown, ResultTableFormat.ToMarkdown(layout));
        if (csv is not null) AtomicFile.WriteAllText(csv, ResultTableFormat.ToCsv(table));

        if (settings.Json)
        {
            console.Profile.Out.Writer.WriteLine(EvaluationJson.Serialize(table));
            return ExitCodes.Success;
        }

        string title = $"[bold]{Markup.Escape(Capitalise(MetricNames.Describe(metric)))} (%)[/]";
        console.Write(FitsWide(layout, console.Profile.Width) ? WideTable(layout, title) : LongTable(table, layout, title, console.Profile.Width));
        console.MarkupLine($"[grey]{Markup.Escape(layout.Caption)}[/]");
        console.MarkupLine($"{runs.Count} run(s), {table.Rows.Length} configuration(s).");

        if (settings.ListRuns)
        {
            var list = new Table().Border(TableBorder.Simple).AddColumn("run").AddColumn("dataset").AddColumn(new TableColumn("β").RightAligned())
                .AddColumn("rule").AddColumn("method").AddColumn("settings").AddColumn(new TableColumn("seed").RightAligned())
                .AddColumn(new TableColumn(Markup.Escape(metric)).RightAligned());
            foreach (var (run, label) in labelled.Select(l => (l.Run, l.Label)).OrderBy(r => r.Run.Directory, StringComparer.Ordinal))
                list.AddRow(Markup.Escape(run.Directory), Markup.Escape(run.Result.Dataset), run.Result.Beta is double b ? b.ToString("G", CliValues.Invariant) : "full",
                    Markup.Escape(run.Result.Rule), Markup.Escape(run.Result.Method), Markup.Escape(label), run.Result.Seed.ToString(CliValues.Invariant),
                    CliValues.Percent(run.Result.Metrics[metric], settings.Decimals));
            console.Write(list);
        }
        if (markdown is not null) console.MarkupLine($"Markdown written to [bold]{Markup.Escape(markdown)}[/].");
        if (csv is not null) console.MarkupLine($"CSV written to [bold]{Markup.Escape(csv)}[/].");
        return ExitCodes.Success;
    }

    /// <summary>Every run read, with its folder and value (--runs).</summary>
    private static Table RunList(List<FoundRun> runs, string metric, int decimals)
    {
        bool folds = runs.Any(r => r.Result.Fold is not null);
        var list = new Table().Border(TableBorder.Simple).AddColumn("run").AddColumn("dataset").AddColumn(new TableColumn("β").RightAligned())
            .AddColumn("rule").AddColumn("method").AddColumn(new TableColumn("seed").RightAligned());
        if (folds) list.AddColumn(new TableColumn("fold").RightAligned());
        list.AddColumn(new TableColumn(Markup.Escape(metric)).RightAligned());
        foreach (var r in runs.OrderBy(r => r.Directory, StringComparer.Ordinal))
        {
            var cells = new List<string>
            {
                Markup.Escape(r.Directory), Markup.Escape(r.Result.Dataset), r.Result.Beta is double b ? b.ToString("G", CliValues.Invariant) : "full",
                Markup.Escape(r.Result.Rule), Markup.Escape(r.Result.Method), r.Result.Seed.ToString(CliValues.Invariant),
            };
            if (folds) cells.Add(r.Result.Fold is int f ? $"{f}/{r.Result.Folds}" : "");
            cells.Add(CliValues.Percent(r.Result.Metrics[metric], decimals));
            list.AddRow(cells.ToArray());
        }
        return list;
    }

    /// <summary>The fold table as JSON (unrounded fractions).</summary>
    private static System.Text.Json.Nodes.JsonObject FoldJson(FoldTable table)
    {
        var rows = new System.Text.Json.Nodes.JsonArray();
        foreach (var r in table.Rows)
            rows.Add(new System.Text.Json.Nodes.JsonObject
            {
                ["dataset"] = r.Dataset, ["rule"] = r.Rule, ["method"] = r.Method, ["seed"] = r.Seed, ["folds"] = r.Folds,
                ["values"] = new System.Text.Json.Nodes.JsonArray(r.Values.Select(v => (System.Text.Json.Nodes.JsonNode?)(v is double d ? System.Text.Json.Nodes.JsonValue.Create(d) : null)).ToArray()),
                ["count"] = r.Count, ["mean"] = r.Mean, ["std"] = r.StandardDeviation, ["min"] = r.Min, ["max"] = r.Max,
            });
        return new System.Text.Json.Nodes.JsonObject { ["metric"] = table.Metric, ["cross_validations"] = rows };
    }

    /// <summary>Whether the paper's layout (a column per method and statistic) fits the console without wrapping numbers.</summary>
    internal static bool FitsWide(TableLayout layout, int consoleWidth)
    {
        int width = 1;
        for (int i = 0; i < layout.Headers.Length; i++)
        {
            int cells = layout.Rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max();
            int header = layout.Headers[i].Split(' ').Max(w => w.Length); // headers may wrap between words
            width += Math.Max(cells, header) + 3;
        }
        return width <= consoleWidth;
    }

    /// <summary>The paper's layout: a row per (dataset, beta, rule), mean ± std, min and best of seeds per method.</summary>
    private static Table WideTable(TableLayout layout, string title)
    {
        var grid = new Table().Border(TableBorder.Rounded).Title(title);
        for (int i = 0; i < layout.Headers.Length; i++)
        {
            var column = new TableColumn(Markup.Escape(layout.Headers[i]));
            grid.AddColumn(layout.NumericColumns[i] ? column.RightAligned() : column);
        }
        foreach (var row in layout.Rows) grid.AddRow(row.Select(Markup.Escape).ToArray());
        return grid;
    }

    /// <summary>
    /// The same cells for a narrow console: a line per method under each (dataset, beta, rule), the
    /// statistics as columns, the difference of means on the DICC line.
    /// </summary>
    private static Table LongTable(ResultTable table, TableLayout layout, string title, int consoleWidth)
    {
        int methods = table.Methods.Length;
        int lead = ResultTableFormat.HasSettings(table) ? 4 : 3; // dataset, β, rule [, settings]
        bool delta = layout.Headers.Length == lead + 3 * methods + 1;
        string Strip(string header, string method) =>
            header.StartsWith(ResultTableFormat.MethodTitle(method) + " ", StringComparison.Ordinal)
                ? header[(ResultTableFormat.MethodTitle(method).Length + 1)..] : header;
        var headers = new List<string>(layout.Headers.Take(lead)) { "method" };
        for (int k = 0; k < 3; k++) headers.Add(Strip(layout.Headers[lead + k], table.Methods[0]));
        if (delta) headers.Add(layout.Headers[^1]);
        var rows = new List<string[]>();
        foreach (var row in layout.Rows)
        {
            bool first = true;
            for (int m = 0; m < methods; m++)
            {
                var stats = row.Skip(lead + 3 * m).Take(3).ToArray();
                if (stats.All(c => c == "—")) continue;
                var cells = new List<string>(first ? row.Take(lead) : Enumerable.Repeat("", lead)) { ResultTableFormat.MethodTitle(table.Methods[m]) };
                cells.AddRange(stats);
                if (delta) cells.Add(table.Methods[m] == RunLabels.Dicc ? row[^1] : "");
                rows.Add(cells.ToArray());
                first = false;
            }
        }
        // Each column as wide as its widest number or header word, so numbers never wrap; what the console
        // has to spare goes to headers that would wrap, from the left.
        var widths = headers.Select((h, i) => Math.Max(rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max(), h.Split(' ').Max(w => w.Length))).ToArray();
        int spare = consoleWidth - widths.Sum() - 2 * widths.Length - 2;
        for (int i = 0; i < widths.Length && spare > 0; i++)
        {
            int grow = Math.Min(spare, headers[i].Length - widths[i]);
            if (grow <= 0) continue;
            widths[i] += grow;
            spare -= grow;
        }
        var grid = new Table().Border(TableBorder.Simple).Title(title);
        for (int i = 0; i < headers.Count; i++)
        {
            var column = new TableColumn(Markup.Escape(headers[i])).Width(widths[i]).PadLeft(0).PadRight(1);
            grid.AddColumn(i == 1 || i > lead ? column.RightAligned() : column);
        }
        foreach (var row in rows) grid.AddRow(row.Select(Markup.Escape).ToArray());
        return grid;
    }

    /// <summary>
    /// Finds the runs an argument names: the run directory itself (it holds result.json), or every run
    /// directory below it. Folders with a config.json but no result.json are reported as unfinished.
    /// </summary>
    internal static (List<FoundRun> Runs, List<NotARun> NotRuns) Discover(IEnumerable<string> arguments)
    {
        var runs = new List<FoundRun>();
        var notRuns = new List<NotARun>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string argument in arguments)
        {
            string path = argument;
            if (File.Exists(path) && Path.GetFileName(path) == "result.json") path = Path.GetDirectoryName(Path.GetFullPath(path))!;
            else if (File.Exists(path)) throw new UsageException($"'{argument}' is a file; give run directories (or folders that hold them).");
            if (!Directory.Exists(path)) throw new UsageException($"'{argument}' does not exist.");

            var found = RunDirectoriesUnder(path, notRuns);
            if (found.Count == 0 && !notRuns.Any(n => IsUnder(n.Path, path)))
                notRuns.Add(new NotARun(argument, "no result.json in it or in any folder below it"));
            foreach (string directory in found)
                if (seen.Add(directory)) runs.Add(new FoundRun(directory, ReadResult(directory), ReadSettings(directory)));
        }
        return (runs, notRuns);
    }

    private static List<string> RunDirectoriesUnder(string root, List<NotARun> unfinished)
    {
        var result = new List<string>();
        var pending = new Stack<string>();
        pending.Push(Path.GetFullPath(root));
        while (pending.Count > 0)
        {
            string directory = pending.Pop();
            var run = new RunDirectory(directory);
            if (File.Exists(run.ResultFile))
            {
                result.Add(run.Path);
                continue; // a run's own folders (checkpoints) hold no runs
            }
            if (File.Exists(run.ConfigFile))
            {
                unfinished.Add(new NotARun(run.Path, WhyNoResult(run)));
                continue;
            }
            string[] children;
            try
            {
                children = Directory.GetDirectories(directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                unfinished.Add(new NotARun(directory, $"cannot be listed: {e.Message}"));
                continue;
            }
            Array.Sort(children, StringComparer.Ordinal);
            for (int i = children.Length - 1; i >= 0; i--) pending.Push(children[i]);
        }
        result.Sort(StringComparer.Ordinal);
        return result;
    }

    /// <summary>Why a run directory has no result.json, from its config, metrics and lock: the real cause, and what to do.</summary>
    internal static string WhyNoResult(RunDirectory run)
    {
        RunConfig config;
        int epochs;
        try
        {
            config = run.ReadConfig();
            epochs = run.ReadMetrics().Count;
        }
        catch (InputException e)
        {
            return $"a run directory that cannot be read: {e.Message}";
        }
        // (config.json from another tool or version may lack what this reads.)
        if (config.Options is null || config.Dataset is null)
            return "a run directory without result.json whose config.json lacks the options or the dataset";
        int total = config.Options.Epochs;
        if (RunLock.ActiveOwner(run.Path) is int pid)
            return $"still training (process {pid}): {epochs} of {total} epochs done";
        if (epochs < total)
            return $"unfinished: {epochs} of {total} epochs done (continue it with dicc train --resume {run.Path})";
        if (config.Dataset.TestCount == 0)
            return "finished, but trained on data without a test split, so it has no test result to compare " +
                   "(train with --test PATH or --test-fraction F for one)";
        return $"finished training, but its test report was not written (dicc train --resume {run.Path} writes it)";
    }

    private static bool IsUnder(string path, string root)
    {
        string full = Path.GetFullPath(path), top = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        return full == top || full.StartsWith(top + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

    private static RunResult ReadResult(string directory)
    {
        var file = new RunDirectory(directory).ResultFile;
        try
        {
            return EvaluationJson.DeserializeRunResult(File.ReadAllText(file), file);
        }
        catch (InvalidDataException e)
        {
            throw new InputException(e.Message, e);
        }
    }

    /// <summary>The settings of a run's config.json; null when the run has none that can be read (its settings are then unknown).</summary>
    private static IReadOnlyList<RunSetting>? ReadSettings(string directory)
    {
        var run = new RunDirectory(directory);
        if (!File.Exists(run.ConfigFile)) return null;
        try
        {
            var config = run.ReadConfig();
            return RunSettings.Of(config.Options, config.SubclassCounts);
        }
        catch (InputException)
        {
            return null;
        }
    }

    private const string SelectOnSetting = "select-on";

    private static bool IsDicc(RunResult r) => string.Equals(r.Method.Trim(), RunLabels.Dicc, StringComparison.OrdinalIgnoreCase);

    /// <summary>The settings of a run that apply to its method (a baseline ignores DICC's).</summary>
    private static IEnumerable<RunSetting> Applicable(FoundRun run) => (run.Settings ?? []).Where(s => !s.DiccOnly || IsDicc(run.Result));

    /// <summary>
    /// Names, for every run, the settings that tell it apart from the other runs of its dataset, beta and rule: every
    /// setting with more than one value among them (DICC's own settings among the DICC runs only). Each run becomes the
    /// table rows it belongs to: a DICC run one row; a baseline run one row per DICC variant with its shared settings,
    /// so that every DICC variant sits beside its baseline. Returns each run with its label and its rows.
    /// </summary>
    internal static List<(FoundRun Run, string Label, List<RunResult> Rows)> Label(List<FoundRun> runs)
    {
        var result = new List<(FoundRun, string, List<RunResult>)>();
        foreach (var group in runs.GroupBy(r => (r.Result.Dataset, r.Result.Beta, Rule: r.Result.Rule.Trim().ToLowerInvariant())))
        {
            // Named: what tells runs apart, and what makes any of them another method than the plain baseline.
            var differing = group.SelectMany(Applicable).GroupBy(s => s.Name)
                .Where(g => g.Select(s => s.Value).Distinct().Count() > 1 || g.Any(s => s.Plain is not null && s.Value != s.Plain))
                .Select(g => g.Key).ToHashSet();
            string Part(FoundRun run, bool diccOnly) => string.Join(", ",
                Applicable(run).Where(s => s.DiccOnly == diccOnly && differing.Contains(s.Name)).Select(s => s.ToString()));
            static string Join(string a, string b) => a.Length == 0 ? b : b.Length == 0 ? a : a + ", " + b;
            var diccVariants = group.Where(r => IsDicc(r.Result)).Select(r => (Shared: Part(r, false), Own: Part(r, true))).Distinct().ToList();
            foreach (var run in group)
            {
                string shared = Part(run, false);
                if (IsDicc(run.Result))
                {
                    string label = Join(shared, Part(run, true));
                    result.Add((run, label, [run.Result with { Settings = label }]));
                    continue;
                }
                var variants = diccVariants.Where(v => v.Shared == shared).Select(v => Join(shared, v.Own)).DefaultIfEmpty(shared).ToList();
                result.Add((run, shared, variants.Select(v => run.Result with { Settings = v }).ToList()));
            }
        }
        return result;
    }

    /// <summary>Two folders holding the same configuration and seed would be counted twice: name both.</summary>
    private static void CheckDistinct(List<FoundRun> runs)
    {
        var byKey = new Dictionary<(string, double?, string, string, string, long, int?, int?), string>();
        foreach (var run in runs)
        {
            var r = run.Result;
            string all = string.Join(", ", Applicable(run));
            // Folds of one cross-validation differ in their training data (and so in beta): the fold is the key.
            var key = (r.Dataset, r.Fold is null ? r.Beta : null, r.Rule.Trim().ToLowerInvariant(), r.Method.Trim().ToLowerInvariant(), all, r.Seed, r.Fold, r.Folds);
            if (byKey.TryGetValue(key, out var other))
                throw new UsageException($"{other} and {run.Directory} are the same configuration (dataset {r.Dataset}, rule {key.Item3}, " +
                                         $"method {key.Item4}" + (all.Length > 0 ? "; every setting equal" : "") + $") and seed {r.Seed}" +
                                         $"{(r.Fold is int f ? $", fold {f} of {r.Folds}" : "")}; pass one of them.");
            byKey[key] = run.Directory;
        }
    }

    private static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
