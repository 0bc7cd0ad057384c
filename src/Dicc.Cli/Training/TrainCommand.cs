using System.Globalization;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Dicc.Engine.IO;
using Dicc.Engine.Backends;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Models;
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
        if (options.Loss == LossKind.Ldam && options.Head == ClassifierHead.Linear)
            errors.Warning($"--loss ldam with the linear head: LDAM's scale s = {options.LdamScale.ToString(CultureInfo.InvariantCulture)} assumes " +
                           "cosine logits in [-1, 1] (Cao et al.); on raw logits the loss starts about s times larger. Add --head cosine, " +
                           "or lower --ldam-scale.");
        if (settings.Folds is int folds) return TrainFolds(settings, options, loadOptions, root, folds, cancel);
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
    /// Subject-independent k-fold cross-validation: every image of --data (all its splits pooled) is dealt by
    /// subject into k folds; fold i trains into OUT/fold-i, tested on its subjects, validated on whole training
    /// subjects. OUT/folds.json records which subject is in which fold; the fold table ends it.
    /// </summary>
    private RunStatus TrainFolds(TrainSettings settings, TrainingOptions options, DatasetLoadOptions loadOptions, string root, int k,
        CancellationToken cancel)
    {
        CliValues.NewOrEmptyDirectory(root, "--out");
        // The folds make validation and test: nothing is held out of the pool.
        loadOptions = loadOptions with { ValidationFraction = 0, TestFraction = 0 };
        using var data = DataArguments.Load(settings.Data!, null, null, loadOptions, out string name);
        ReportSkipped(data);
        var groupBy = SubjectFolds.ParseGroupBy(settings.GroupBy!);
        var pool = SubjectFolds.Pool(data);
        var assignment = SubjectFolds.Assign(pool, groupBy, k, options.Seed, FoldValidationFraction);
        Directory.CreateDirectory(root);
        WriteFoldsFile(Path.Combine(root, FoldsFileName), settings, data, pool, groupBy, assignment, options.Seed);
        if (settings.OutputMode == OutputMode.Normal)
            console.MarkupLine($"[grey]{k} folds of {assignment.Subjects.Count} subjects ({pool.Count} images), seed {options.Seed}: " +
                               $"{Markup.Escape(Path.Combine(root, FoldsFileName))}[/]");

        var results = new List<RunResult>();
        foreach (var split in assignment.Splits)
        {
            using var foldData = SubjectFolds.Apply(data, split);
            var description = RunData.Describe(foldData, settings.DatasetName ?? name, settings.Data!, null, null, loadOptions) with { Fold = split };
            var run = new RunDirectory(Path.Combine(root, $"fold-{split.Fold}"));
            var outcome = RunOne(settings, foldData, options, run, description, resume: false, cancel);
            if (outcome.Status == RunStatus.Interrupted) return RunStatus.Interrupted;
            if (outcome.Test is not null)
                results.Add(RunResult.FromReport(description.Name, description.Beta, options.Rule.ToString().ToLowerInvariant(),
                    options.Method == TrainingMethod.Dicc ? RunLabels.Dicc : RunLabels.Baseline, (long)options.Seed, outcome.Test)
                    with { Fold = split.Fold, Folds = k });
        }
        if (settings.OutputMode != OutputMode.Json && results.Count > 0)
        {
            var table = FoldAggregation.Aggregate(results, MetricNames.Accuracy);
            console.Write(SummaryTables.FoldTable(table));
            console.MarkupLine($"[grey]{Markup.Escape(FoldAggregation.Caption(table))}[/]");
            console.MarkupLine($"[grey]{k} folds in {Markup.Escape(Path.GetFullPath(root))} (dicc compare {Markup.Escape(root)} shows them again, with --metric).[/]");
        }
        return RunStatus.Completed;
    }

    /// <summary>
    /// Continues a k-fold cross-validation (--resume OUT, the folder with folds.json): finished folds are read,
    /// started ones resumed, the others trained with the assignment of folds.json and the settings of a started
    /// fold; then the fold table.
    /// </summary>
    private RunStatus ResumeFolds(TrainSettings settings, string dir, CancellationToken cancel)
    {
        string foldsFile = Path.Combine(dir, FoldsFileName);
        JsonNode document;
        int k;
        string groupBy;
        ulong seed;
        List<(string[] Test, string[] Validation)> splits;
        try
        {
            document = JsonNode.Parse(File.ReadAllText(foldsFile)) ?? throw new FormatException("empty");
            k = document["folds"]!.GetValue<int>();
            groupBy = document["group_by"]!.GetValue<string>();
            seed = document["seed"]!.GetValue<ulong>();
            splits = document["fold_splits"]!.AsArray().Select(f => (
                f!["test_subjects"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray(),
                f["validation_subjects"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray())).ToList();
            if (splits.Count != k) throw new FormatException($"{splits.Count} fold splits for {k} folds");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException or NullReferenceException)
        {
            throw new UsageException($"--resume {dir}: {foldsFile} is not a folds file this dicc reads ({e.Message}).");
        }
        var runs = Enumerable.Range(1, k).Select(f => new RunDirectory(Path.Combine(dir, $"fold-{f}"))).ToArray();
        var template = runs.FirstOrDefault(r => r.HoldsRun)?.ReadConfig()
            ?? throw new UsageException($"--resume {dir}: no fold has started, so nothing records its settings; start it again with dicc train --folds.");
        var d = template.Dataset;
        var loadOptions = RunData.LoadOptions(d);
        string source = RunData.Source(d);
        using var data = DataArguments.Load(source, null, null, loadOptions, out _);
        var results = new List<RunResult>();
        for (int f = 1; f <= k; f++)
        {
            var run = runs[f - 1];
            DatasetSplits foldData;
            DatasetDescription description;
            bool resume = run.HoldsRun;
            TrainingOptions options = template.Options;
            if (resume)
            {
                var config = run.ReadConfig();
                if (File.Exists(run.ResultFile) && RunLock.ActiveOwner(run.Path) is null)
                {
                    var done = EvaluationJson.DeserializeRunResult(File.ReadAllText(run.ResultFile), run.ResultFile);
                    if (done.Fold is not null) results.Add(done);
                    continue;
                }
                description = config.Dataset;
                options = config.Options;
                foldData = SubjectFolds.Apply(data, description.Fold ?? throw new UsageException($"--resume {dir}: {run.ConfigFile} is not a fold's run."));
                if (description.Fingerprint != foldData.Fingerprint && !settings.AllowDataChange)
                {
                    foldData.Dispose();
                    throw new UsageException($"--resume {dir}: the data differs from fold {f}'s: {d.Source} had fingerprint {RunData.Short(description.Fingerprint)}, " +
                                             $"now {RunData.Short(foldData.Fingerprint)}; resume on the run's own data, or add --allow-data-change if the change is intended.");
                }
            }
            else
            {
                var split = new FoldSplit(f, k, groupBy, seed, splits[f - 1].Test, splits[f - 1].Validation);
                foldData = SubjectFolds.Apply(data, split);
                description = RunData.Describe(foldData, d.Name, d.Source, null, null, loadOptions) with { Fold = split, SourcePath = d.SourcePath };
            }
            using (foldData)
            {
                var outcome = RunOne(settings, foldData, options, run, description, resume, cancel);
                if (outcome.Status == RunStatus.Interrupted) return RunStatus.Interrupted;
                if (outcome.Test is not null)
                    results.Add(RunResult.FromReport(description.Name, description.Beta, options.Rule.ToString().ToLowerInvariant(),
                        options.Method == TrainingMethod.Dicc ? RunLabels.Dicc : RunLabels.Baseline, (long)options.Seed, outcome.Test) with { Fold = f, Folds = k });
            }
        }
        if (settings.OutputMode != OutputMode.Json && results.Count > 0)
        {
            var table = FoldAggregation.Aggregate(results, MetricNames.Accuracy);
            console.Write(SummaryTables.FoldTable(table));
            console.MarkupLine($"[grey]{Markup.Escape(FoldAggregation.Caption(table))}[/]");
        }
        return RunStatus.Completed;
    }

    /// <summary>Part of each fold's training images (whole subjects) held out for validation.</summary>
    internal const double FoldValidationFraction = 0.1;

    /// <summary>The file in a k-fold run's folder that records the assignment.</summary>
    internal const string FoldsFileName = "folds.json";

    /// <summary>folds.json: the settings, which subject is in which fold, and each fold's subjects and image counts.</summary>
    private static void WriteFoldsFile(string path, TrainSettings settings, DatasetSplits data, ImageDataset pool, System.Text.RegularExpressions.Regex groupBy,
        FoldAssignment assignment, ulong seed)
    {
        var subjects = SubjectFolds.SubjectsOf(pool, groupBy);
        var folds = new JsonArray();
        foreach (var split in assignment.Splits)
        {
            var test = new HashSet<string>(split.TestSubjects, StringComparer.Ordinal);
            var validation = new HashSet<string>(split.ValidationSubjects, StringComparer.Ordinal);
            var counts = new int[3, pool.ClassCount];
            for (int i = 0; i < pool.Count; i++)
                counts[test.Contains(subjects[i]) ? 2 : validation.Contains(subjects[i]) ? 1 : 0, pool.Label(i)]++;
            JsonArray Row(int part) => JsonOutput.Numbers(Enumerable.Range(0, pool.ClassCount).Select(c => counts[part, c]));
            folds.Add(new JsonObject
            {
                ["fold"] = split.Fold, ["run"] = $"fold-{split.Fold}",
                ["test_subjects"] = JsonOutput.Strings(split.TestSubjects), ["validation_subjects"] = JsonOutput.Strings(split.ValidationSubjects),
                ["train_per_class"] = Row(0), ["validation_per_class"] = Row(1), ["test_per_class"] = Row(2),
            });
        }
        var subjectFolds = new JsonObject();
        foreach (var (subject, fold) in assignment.Subjects.OrderBy(kv => kv.Key, StringComparer.Ordinal)) subjectFolds[subject] = fold;
        var document = new JsonObject
        {
            ["format"] = "dicc-folds-1", ["folds"] = assignment.Splits.Count, ["seed"] = seed, ["group_by"] = groupBy.ToString(),
            ["group_by_as_given"] = settings.GroupBy, ["source"] = settings.Data, ["source_path"] = Path.GetFullPath(settings.Data!),
            ["fingerprint"] = data.Fingerprint, ["images"] = pool.Count, ["classes"] = JsonOutput.Strings(pool.ClassNames),
            ["validation_fraction"] = FoldValidationFraction, ["subjects"] = subjectFolds, ["fold_splits"] = folds,
        };
        AtomicFile.WriteAllText(path, document.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
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
        if (File.Exists(Path.Combine(dir, FoldsFileName)) && !File.Exists(Path.Combine(dir, "config.json")))
            return ResumeFolds(settings, dir, cancel);
        var run = new RunDirectory(dir);
        using var runLock = LockRun(run);
        var config = run.ReadConfig();
        var d = config.Dataset;
        string source = settings.Data ?? RunData.Source(d);
        using var data = RunData.Load(d, source, settings.Validation ?? RunData.ValidationSource(d),
            settings.Test ?? RunData.TestSource(d), RunData.LoadOptions(d));
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
