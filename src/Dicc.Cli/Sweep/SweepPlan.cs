using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Training;
using Dicc.Engine;
using Dicc.Engine.Data;
using Dicc.Engine.IO;
using Dicc.Engine.Training;

namespace Dicc.Cli.Sweep;

/// <summary>
/// A sweep folder (docs/cli.md, "dicc sweep"): <c>sweep.json</c> (every cell: its index, run directory and
/// <c>dicc train</c> arguments), one run directory per cell, <c>logs/</c> (each cell's output and attempts) and
/// <c>slurm/</c> (job scripts and submissions). The cell list only grows: a cell keeps its index and directory,
/// so array tasks already queued still find theirs.
/// </summary>
internal sealed class SweepPlan
{
    public const string FileName = "sweep.json";
    public const string Format = "dicc-sweep-1";

    private SweepPlan(string root, string? grid, List<SweepCell> cells)
    {
        Root = root;
        Grid = grid;
        Cells = cells;
    }

    /// <summary>The sweep folder (absolute).</summary>
    public string Root { get; }

    /// <summary>The grid file the cells came from (absolute), when known.</summary>
    public string? Grid { get; private set; }

    public List<SweepCell> Cells { get; }
    public string PlanFile => Path.Combine(Root, FileName);
    public string LogDirectory => Path.Combine(Root, "logs");
    public string SlurmDirectory => Path.Combine(Root, "slurm");
    public string LogFile(int index) => Path.Combine(LogDirectory, $"cell-{index.ToString(CultureInfo.InvariantCulture)}.log");
    public string AttemptsFile(int index) => Path.Combine(LogDirectory, $"cell-{index.ToString(CultureInfo.InvariantCulture)}.attempts.jsonl");
    public string RunPath(SweepCell cell) => cell.RunPath(Root);

    /// <summary>A sweep of these cells in <paramref name="root"/> that is not written (what --dry-run shows).</summary>
    public static SweepPlan Unsaved(string root, List<SweepCell> cells) => new(Path.GetFullPath(root), null, cells);

    /// <summary>The sweep in <paramref name="root"/>, or null when it has no sweep.json.</summary>
    /// <exception cref="UsageException">sweep.json exists but cannot be read.</exception>
    public static SweepPlan? Read(string root)
    {
        root = Path.GetFullPath(root);
        string file = Path.Combine(root, FileName);
        if (!File.Exists(file)) return null;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(file));
        }
        catch (JsonException e)
        {
            throw new UsageException($"{file}: not a sweep file ({e.Message.Split(" LineNumber:", 2)[0].Trim()}).");
        }
        if (node is not JsonObject o || (string?)o["format"] != Format || o["cells"] is not JsonArray array)
            throw new UsageException($"{file}: not a sweep file of this version (format {Format}).");
        var cells = new List<SweepCell>();
        foreach (var item in array)
        {
            if (item is not JsonObject c || c["index"] is null || c["directory"] is null || c["arguments"] is not JsonArray args)
                throw new UsageException($"{file}: cell {cells.Count} is incomplete.");
            var labels = (c["labels"] as JsonObject)?.Select(kv => new KeyValuePair<string, string>(kv.Key, (string?)kv.Value ?? "")).ToList() ?? [];
            cells.Add(new SweepCell((int)c["index"]!, (string)c["directory"]!, args.Select(a => (string)a!).ToArray(), labels));
        }
        if (cells.Select((c, i) => c.Index != i).Any(bad => bad)) throw new UsageException($"{file}: cells are not numbered 0, 1, 2, ...");
        return new SweepPlan(root, (string?)o["grid"], cells);
    }

    /// <summary>
    /// The sweep for <paramref name="expanded"/> cells in <paramref name="root"/>: a new one, or the existing one
    /// extended by the cells the grid adds. A cell of the existing sweep must come out of the grid unchanged: a
    /// changed or missing one is an error (its run directory holds results of other settings; nothing is overwritten).
    /// </summary>
    public static SweepPlan Merge(string root, string grid, List<SweepCell> expanded)
    {
        root = Path.GetFullPath(root);
        var existing = Read(root);
        if (existing is null)
        {
            if (File.Exists(root)) throw new UsageException($"--out {root} is a file; a sweep folder is expected.");
            if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
                throw new UsageException($"--out {root} is a folder that is not empty and holds no sweep (no {FileName}); choose a new or empty folder (nothing is overwritten).");
            return new SweepPlan(root, Path.GetFullPath(grid), expanded);
        }
        var byDirectory = expanded.ToDictionary(c => c.Directory, StringComparer.Ordinal);
        foreach (var cell in existing.Cells)
        {
            if (!byDirectory.TryGetValue(cell.Directory, out var again))
                throw new UsageException($"{grid}: the sweep in {root} has cell {cell.Index} ({cell.Directory}), which this grid no longer has; " +
                                         "give the changed grid a new --out (nothing is overwritten), or put the cell back.");
            if (!again.Arguments.SequenceEqual(cell.Arguments))
                throw new UsageException($"{grid}: cell {cell.Index} ({cell.Directory}) of the sweep in {root} was prepared with " +
                                         $"'{string.Join(' ', cell.Arguments)}', the grid now gives '{string.Join(' ', again.Arguments)}'; " +
                                         "give the changed grid a new --out (nothing is overwritten).");
        }
        var known = existing.Cells.Select(c => c.Directory).ToHashSet(StringComparer.Ordinal);
        foreach (var cell in expanded.Where(c => !known.Contains(c.Directory)))
            existing.Cells.Add(cell with { Index = existing.Cells.Count });
        existing.Grid = Path.GetFullPath(grid);
        return existing;
    }

    /// <summary>Writes sweep.json (atomically: array tasks may be reading it).</summary>
    public void Write()
    {
        var cells = new JsonArray();
        foreach (var cell in Cells)
        {
            var labels = new JsonObject();
            foreach (var (k, v) in cell.Labels) labels[k] = v;
            cells.Add(new JsonObject
            {
                ["index"] = cell.Index,
                ["directory"] = cell.Directory,
                ["labels"] = labels,
                ["arguments"] = new JsonArray(cell.Arguments.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray()),
            });
        }
        var root = new JsonObject { ["format"] = Format, ["grid"] = Grid, ["engine_version"] = EngineInfo.Version, ["cells"] = cells };
        Directory.CreateDirectory(Root);
        AtomicFile.WriteAllText(PlanFile, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The cell with this index, or a usage error naming the range.</summary>
    public SweepCell Cell(int index, string option) =>
        index >= 0 && index < Cells.Count ? Cells[index]
        : throw new UsageException($"{option} {index}: the sweep in {Root} has cells 0..{Cells.Count - 1}.");

    /// <summary>"3,7,9-12": cell indices, each one of the sweep's.</summary>
    public List<int> ParseCells(string text, string option)
    {
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-', 2);
            if (!int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int from) ||
                !int.TryParse(range.Length == 2 ? range[1] : range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int to) || to < from)
                throw new UsageException($"{option}: '{part}' is not a cell number or a range like 3-7.");
            for (int i = from; i <= to; i++)
            {
                Cell(i, option);
                if (!result.Contains(i)) result.Add(i);
            }
        }
        return result;
    }

    /// <summary>
    /// Writes each cell's config.json before anything trains: its settings as <c>dicc train</c> reads them, checked
    /// against its data (loaded once per dataset), so that a cell that could not train is found now, not after the
    /// others have trained for days. A cell that already holds a run is checked to have the same settings and data.
    /// </summary>
    /// <returns>The number of cells prepared now.</returns>
    public int Prepare(ErrorConsole errors)
    {
        string name = Grid ?? PlanFile;
        var loaded = new Dictionary<string, (DatasetSplits Data, string Name)>(StringComparer.Ordinal);
        int prepared = 0;
        try
        {
            foreach (var cell in Cells)
            {
                var settings = SweepGrid.Check(cell, name);
                var options = settings.ToOptions();
                var loadOptions = settings.ToLoadOptions();
                var run = new RunDirectory(RunPath(cell));
                if (run.HoldsRun)
                {
                    if (Difference(run, settings, options, loadOptions) is { } difference)
                        throw new UsageException($"{name}, cell {cell.Index} ({cell.Directory}): {difference}; give the changed grid a new --out (nothing is overwritten).");
                    continue;
                }
                if (run.OtherEntries().Count > 0)
                    throw new UsageException($"{run.Path}: the run directory of cell {cell.Index} holds files but no run (no config.json); move them away.");
                string key = $"{settings.Data}\n{settings.Validation}\n{settings.Test}\n{JsonSerializer.Serialize(DataSettings.From(loadOptions), SweepJson.Default.DataSettings)}";
                if (!loaded.TryGetValue(key, out var data))
                {
                    DatasetSplits splits;
                    string dataName;
                    try
                    {
                        splits = DataArguments.Load(settings.Data!, settings.Validation, settings.Test, loadOptions, out dataName);
                    }
                    catch (UsageException e)
                    {
                        throw new UsageException($"{name}, cell {cell.Index} ({cell.Directory}): {e.Message}");
                    }
                    catch (InputException e)
                    {
                        throw new UsageException($"{name}, cell {cell.Index} ({cell.Directory}): {ParameterFlags.Translate(e)}");
                    }
                    loaded[key] = data = (splits, dataName);
                    if (splits.Skipped.Count > 0)
                        errors.Warning($"{settings.Data}: skipped {splits.Skipped.Count} bad input(s) (listed in each cell's config.json).");
                    if (splits.Test.Count == 0)
                        errors.Warning($"{settings.Data} has no test split: its cells select their models on validation but write no test report, " +
                                       "so the sweep's table will not have them; give one with \"test\", or hold one out with \"test-fraction\".");
                }
                try
                {
                    Trainer.CheckSetup(data.Data, options);
                }
                catch (InputException e)
                {
                    throw new UsageException($"{name}, cell {cell.Index} ({cell.Directory}): {ParameterFlags.Translate(e)}");
                }
                var description = RunData.Describe(data.Data, settings.DatasetName ?? data.Name, settings.Data!, settings.Validation, settings.Test, loadOptions);
                var counts = ModelFactory.SubclassCounts(options, data.Data.ClassNames.Count, data.Data.Train.ClassCounts());
                using var held = run.Lock();
                if (run.HoldsRun) continue; // prepared meanwhile by another sweep process
                run.WriteConfig(new RunConfig(EngineInfo.Version, options, description, counts, NotStartedDevice, DateTimeOffset.UtcNow));
                prepared++;
            }
        }
        finally
        {
            foreach (var d in loaded.Values) d.Data.Dispose();
        }
        return prepared;
    }

    /// <summary>The device config.json names until the cell's training starts (the trainer then writes its own).</summary>
    public const string NotStartedDevice = "none yet (prepared by dicc sweep)";

    /// <summary>How a run directory's settings differ from a cell's, or null when they do not.</summary>
    private static string? Difference(RunDirectory run, TrainSettings settings, TrainingOptions options, DatasetLoadOptions loadOptions)
    {
        var config = run.ReadConfig();
        if (config.Options is null || config.Dataset is null) return $"{run.ConfigFile} lacks the options or the dataset";
        foreach (var property in typeof(TrainingOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is not null || property.GetIndexParameters().Length > 0) continue;
            object? had = property.GetValue(config.Options), wants = property.GetValue(options);
            if (Equals(had, wants)) continue;
            string camel = char.ToLowerInvariant(property.Name[0]) + property.Name[1..];
            string setting = ParameterFlags.Flags.GetValueOrDefault(camel, camel);
            return $"its {run.ConfigFile} has {setting} {Text(had)}, the grid gives {Text(wants)}";
        }
        var d = config.Dataset;
        string? Absolute(string? source) => source is null || DataArguments.IsSynthetic(source) ? source : Path.GetFullPath(source);
        if (Absolute(d.SourcePath ?? d.Source) != Absolute(settings.Data))
            return $"its {run.ConfigFile} has the data {d.SourcePath ?? d.Source}, the grid gives {settings.Data}";
        if (Absolute(d.ValidationSourcePath ?? d.ValidationSource) != Absolute(settings.Validation))
            return $"its {run.ConfigFile} has the validation data {d.ValidationSourcePath ?? d.ValidationSource ?? "(none)"}, the grid gives {settings.Validation ?? "(none)"}";
        if (Absolute(d.TestSourcePath ?? d.TestSource) != Absolute(settings.Test))
            return $"its {run.ConfigFile} has the test data {d.TestSourcePath ?? d.TestSource ?? "(none)"}, the grid gives {settings.Test ?? "(none)"}";
        string expectedName = settings.DatasetName ?? DataArguments.NameOf(settings.Data!);
        if (d.Name != expectedName) return $"its {run.ConfigFile} names the dataset {d.Name}, the grid {expectedName}";
        if (d.Settings is { } recorded)
        {
            string had = JsonSerializer.Serialize(recorded, SweepJson.Default.DataSettings);
            string wants = JsonSerializer.Serialize(DataSettings.From(loadOptions), SweepJson.Default.DataSettings);
            if (had != wants) return $"its {run.ConfigFile} read the data with the settings {had}, the grid gives {wants}";
        }
        return null;
    }

    private static string Text(object? value) => value switch
    {
        null => "(none)",
        string s => s,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture).ToLowerInvariant(),
        _ => value.ToString()!.ToLowerInvariant(),
    };
}

[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(DataSettings))]
internal sealed partial class SweepJson : JsonSerializerContext;
