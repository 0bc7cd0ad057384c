using System.Globalization;
using System.Text;
using System.Text.Json;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Training;

namespace Dicc.Cli.Sweep;

/// <summary>
/// One cell of a sweep: one seed of one configuration, trained into one run directory.
/// <paramref name="Directory"/> is relative to the sweep folder ('/'-separated); <paramref name="Arguments"/> are the
/// <c>dicc train</c> arguments that define it (without --out); <paramref name="Labels"/> name what tells it apart
/// (dataset, method, rule, the settings that differ, seed), in that order.
/// </summary>
internal sealed record SweepCell(int Index, string Directory, string[] Arguments, IReadOnlyList<KeyValuePair<string, string>> Labels)
{
    public string Label(string key) => Labels.FirstOrDefault(l => l.Key == key).Value ?? "";

    /// <summary>The run directory under the sweep folder <paramref name="root"/>.</summary>
    public string RunPath(string root) => Path.Combine(root, Directory.Replace('/', Path.DirectorySeparatorChar));
}

/// <summary>
/// A sweep's grid file (docs/cli.md, "dicc sweep"): a JSON object whose keys are <c>dicc train</c> options without
/// their dashes. A value is a setting of every cell; an array is an axis, one value per cell; "datasets",
/// "methods" and "rules" are the axes of "data", "method" and "rule"; "seeds" (a count, or a list) is the
/// innermost axis. An entry of an axis may be an object holding its value (e.g. {"method": "dicc", ...}) and
/// settings or further axes that apply to that entry's cells only (a dataset's subclass preset, DICC's plans).
/// </summary>
internal static class SweepGrid
{
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["datasets"] = "data", ["methods"] = "method", ["rules"] = "rule",
    };

    /// <summary>Keys that are paths, read relative to the grid file's folder.</summary>
    private static readonly string[] PathKeys = ["data", "val", "test"];

    /// <summary>Keys shown in a cell's directory name in their own places (dataset/method-rule/seed-N), not as key=value.</summary>
    private static readonly string[] PlacedKeys = ["data", "val", "test", "dataset-name", "method", "rule", "seed"];

    private static readonly JsonDocumentOptions JsonOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>A setting as one cell receives it: its value (null: not given) and where it came from.</summary>
    private sealed record Assigned(string? Value, string Origin, bool FromEntry);

    private sealed record Axis(string Key, JsonElement[] Values, string Origin);

    /// <summary>Reads and expands a grid file into its cells, each checked by <c>dicc train</c>'s own parser.</summary>
    /// <exception cref="UsageException">The file is not a valid grid; the message names the file and the key or cell.</exception>
    public static List<SweepCell> Load(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (FileNotFoundException)
        {
            throw new UsageException($"--grid: file '{file}' does not exist.");
        }
        catch (DirectoryNotFoundException)
        {
            throw new UsageException($"--grid: file '{file}' does not exist.");
        }
        return Expand(text, file, Path.GetDirectoryName(Path.GetFullPath(file))!);
    }

    /// <summary>Expands grid text; <paramref name="name"/> names it in messages, <paramref name="baseDirectory"/> anchors relative paths.</summary>
    public static List<SweepCell> Expand(string text, string name, string baseDirectory)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, JsonOptions);
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line ? $"{name}:{line + 1}" : name;
            string message = e.Message.Split(" LineNumber:", 2)[0].Trim().TrimEnd('.');
            throw new UsageException($"{where}: not valid JSON ({message}).");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new UsageException($"{name}: a grid is a JSON object of dicc train settings (e.g. {{\"datasets\": [...], \"methods\": [...], \"seeds\": 3}}).");

            var order = new List<string>(); // keys in the order the file names them (for directory names)
            var fixedSettings = new Dictionary<string, Assigned>(StringComparer.Ordinal);
            var axes = new List<Axis>();
            long[]? seeds = null;
            JsonElement? seedsElement = null;
            foreach (var property in root.EnumerateObject())
            {
                string key = CheckKey(property.Name, name, $"\"{property.Name}\"");
                if (key == "seeds")
                {
                    seedsElement = property.Value;
                    continue;
                }
                if (fixedSettings.ContainsKey(key) || axes.Any(a => a.Key == key))
                    throw new UsageException($"{name}: \"{property.Name}\" sets {key} a second time.");
                if (!order.Contains(key)) order.Add(key);
                if (property.Value.ValueKind == JsonValueKind.Array)
                    axes.Add(new Axis(key, property.Value.EnumerateArray().ToArray(), $"\"{property.Name}\""));
                else fixedSettings[key] = new Assigned(Scalar(key, property.Value, name, $"\"{property.Name}\"", baseDirectory), $"\"{property.Name}\"", false);
            }
            if (axes.Any(a => a.Key == "seed"))
                throw new UsageException($"{name}: \"seed\" is one number (the first seed); give several as \"seeds\": [1, 2, 3] or \"seeds\": 3.");
            if (!fixedSettings.ContainsKey("data") && !axes.Any(a => a.Key == "data"))
                throw new UsageException($"{name}: no data: give \"datasets\": [\"path\", {{\"data\": \"path\", \"name\": \"FER2013\"}}, ...] (or \"data\": \"path\").");
            seeds = Seeds(seedsElement, fixedSettings.GetValueOrDefault("seed")?.Value, name);
            fixedSettings.Remove("seed");

            foreach (var a in axes) if (a.Values.Length == 0) throw new UsageException($"{name}: {a.Origin} is an empty list; give at least one value.");
            var configurations = new List<Dictionary<string, Assigned>>();
            ExpandAxes(axes, fixedSettings, configurations, order, name, baseDirectory);

            var cells = new List<SweepCell>();
            var names = Name(configurations, order);
            foreach (long seed in seeds)
                for (int c = 0; c < configurations.Count; c++)
                {
                    var configuration = configurations[c];
                    var arguments = new List<string>();
                    foreach (string key in order)
                    {
                        if (!configuration.TryGetValue(key, out var assigned) || assigned.Value is null) continue;
                        var option = TrainArguments.Options[key];
                        if (option.IsSwitch)
                        {
                            if (assigned.Value == "true") arguments.Add(option.Flag);
                        }
                        else arguments.AddRange([option.Flag, assigned.Value]);
                    }
                    string seedText = seed.ToString(CultureInfo.InvariantCulture);
                    arguments.AddRange(["--seed", seedText]);
                    var labels = new List<KeyValuePair<string, string>>(names[c].Labels) { new("seed", seedText) };
                    cells.Add(new SweepCell(cells.Count, $"{names[c].Directory}/seed-{seedText}", arguments.ToArray(), labels));
                }
            CheckDistinct(cells, name);
            foreach (var cell in cells) Check(cell, name);
            return cells;
        }
    }

    /// <summary>Checks a cell's arguments with <c>dicc train</c>'s parser and option checks; a failure names the grid and the cell.</summary>
    internal static TrainSettings Check(SweepCell cell, string name)
    {
        try
        {
            var settings = TrainArguments.Parse(cell.Arguments);
            settings.ToOptions();
            settings.ToLoadOptions();
            return settings;
        }
        catch (UsageException e)
        {
            throw new UsageException($"{name}, cell {cell.Directory}: {e.Message}");
        }
        catch (Engine.InputException e)
        {
            throw new UsageException($"{name}, cell {cell.Directory}: {ParameterFlags.Translate(e)}");
        }
    }

    /// <summary>The option a grid key names (aliases resolved), or a usage error naming the file and the key.</summary>
    private static string CheckKey(string raw, string name, string where)
    {
        string key = Aliases.GetValueOrDefault(raw, raw);
        if (key == "seeds") return key;
        if (TrainArguments.Reserved.TryGetValue(key, out var why)) throw new UsageException($"{name}: {where}: a grid cannot set {key}: {why}.");
        if (!TrainArguments.Options.ContainsKey(key))
            throw new UsageException($"{name}: {where}: '{raw}' is not a dicc train option (grid keys are its options without the dashes, " +
                                     "e.g. \"ema-decay\"; dicc train --help lists them).");
        return key;
    }

    /// <summary>A setting's value as the argument <c>dicc train</c> receives; null: left unset (JSON null, or a switch that is false).</summary>
    private static string? Scalar(string key, JsonElement value, string name, string where, string baseDirectory)
    {
        var option = TrainArguments.Options[key];
        switch (value.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.True or JsonValueKind.False:
                if (!option.IsSwitch) throw new UsageException($"{name}: {where}: {key} takes a value, not {value.GetRawText()}.");
                return value.ValueKind == JsonValueKind.True ? "true" : null;
            case JsonValueKind.Number:
            case JsonValueKind.String:
                if (option.IsSwitch) throw new UsageException($"{name}: {where}: {key} is a switch: give true or false.");
                string text = value.ValueKind == JsonValueKind.Number ? value.GetRawText() : value.GetString()!;
                if (text.Length == 0) throw new UsageException($"{name}: {where}: {key} is empty.");
                if (PathKeys.Contains(key) && !DataArguments.IsSynthetic(text) && !Path.IsPathRooted(text))
                    text = Path.GetFullPath(Path.Combine(baseDirectory, text));
                return text;
            default:
                throw new UsageException($"{name}: {where}: {key} must be a string, a number, true/false or a list of them, not {value.ValueKind.ToString().ToLowerInvariant()}.");
        }
    }

    private static long[] Seeds(JsonElement? element, string? first, string name)
    {
        long start = 1;
        if (first is not null && (!long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out start)))
            throw new UsageException($"{name}: \"seed\": '{first}' is not a whole number >= 0.");
        if (element is not { } e) return [start];
        if (e.ValueKind == JsonValueKind.Number)
        {
            if (!e.TryGetInt32(out int count) || count < 1) throw new UsageException($"{name}: \"seeds\": {e.GetRawText()} is not a count >= 1.");
            return Enumerable.Range(0, count).Select(i => start + i).ToArray();
        }
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() == 0)
            throw new UsageException($"{name}: \"seeds\" is a count (3: seeds 1, 2, 3) or a list of seeds ([1, 2, 3]).");
        var seeds = new List<long>();
        foreach (var s in e.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out long v) || v < 0)
                throw new UsageException($"{name}: \"seeds\": {s.GetRawText()} is not a whole number >= 0.");
            if (seeds.Contains(v)) throw new UsageException($"{name}: \"seeds\": {v} is listed twice.");
            seeds.Add(v);
        }
        return seeds.ToArray();
    }

    /// <summary>
    /// The cartesian product of the axes in file order; an entry object's settings apply to its own cells (they
    /// override the grid's top-level values), its lists are further axes of those cells.
    /// </summary>
    private static void ExpandAxes(List<Axis> pending, Dictionary<string, Assigned> assigned, List<Dictionary<string, Assigned>> into,
        List<string> order, string name, string baseDirectory)
    {
        if (pending.Count == 0)
        {
            into.Add(assigned);
            return;
        }
        var axis = pending[0];
        var rest = pending.Skip(1).ToList();
        for (int i = 0; i < axis.Values.Length; i++)
        {
            var value = axis.Values[i];
            string where = $"{axis.Origin}[{i}]";
            var next = new Dictionary<string, Assigned>(assigned, StringComparer.Ordinal);
            var nextPending = new List<Axis>();
            var restHere = rest;
            if (value.ValueKind == JsonValueKind.Object)
            {
                bool hasOwnValue = false;
                foreach (var property in value.EnumerateObject())
                {
                    string key = property.Name == "name" && axis.Key == "data" ? "dataset-name" : CheckKey(property.Name, name, $"{where}.\"{property.Name}\"");
                    if (key == "dataset-name") CheckKey("dataset-name", name, $"{where}.\"{property.Name}\"");
                    if (key is "seeds" or "seed") throw new UsageException($"{name}: {where}: seeds are set for the whole grid, at its top level.");
                    if (!order.Contains(key)) order.Add(key);
                    if (key == axis.Key)
                    {
                        if (property.Value.ValueKind == JsonValueKind.Array) throw new UsageException($"{name}: {where}: \"{property.Name}\" must be one value here.");
                        hasOwnValue = true;
                    }
                    if (next.TryGetValue(key, out var earlier) && earlier.FromEntry && key != axis.Key)
                        throw new UsageException($"{name}: {where} sets {key}, which {earlier.Origin} already sets for these cells; set it in one place.");
                    if (property.Value.ValueKind == JsonValueKind.Array)
                    {
                        // This entry's own axis: it replaces a top-level value or axis of the same key for its cells.
                        next.Remove(key);
                        restHere = restHere.Where(a => a.Key != key).ToList();
                        nextPending.Add(new Axis(key, property.Value.EnumerateArray().ToArray(), $"{where}.\"{property.Name}\""));
                    }
                    else
                    {
                        restHere = restHere.Where(a => a.Key != key).ToList();
                        next[key] = new Assigned(Scalar(key, property.Value, name, $"{where}.\"{property.Name}\"", baseDirectory), where, key != axis.Key);
                    }
                }
                if (!hasOwnValue)
                    throw new UsageException($"{name}: {where}: an entry of {axis.Origin} is a value or an object with \"{(axis.Key == "method" ? "method" : axis.Key)}\" in it.");
            }
            else if (value.ValueKind == JsonValueKind.Array)
            {
                throw new UsageException($"{name}: {where}: a list inside a list; give an object with the setting's own list.");
            }
            else
            {
                next[axis.Key] = new Assigned(Scalar(axis.Key, value, name, where, baseDirectory), where, false);
            }
            foreach (var a in nextPending) if (a.Values.Length == 0) throw new UsageException($"{name}: {a.Origin} is an empty list; give at least one value.");
            ExpandAxes([.. nextPending, .. restHere], next, into, order, name, baseDirectory);
        }
    }

    /// <summary>
    /// Each configuration's directory (dataset/method-rule[,key=value...]) and labels: the dataset by its name (or
    /// its file's name when names repeat), then the method and rule, then every other setting whose value differs
    /// among the configurations of the same dataset, method and rule.
    /// </summary>
    private static List<(string Directory, List<KeyValuePair<string, string>> Labels)> Name(List<Dictionary<string, Assigned>> configurations, List<string> order)
    {
        string? V(Dictionary<string, Assigned> c, string key) => c.TryGetValue(key, out var a) ? a.Value : null;
        string DataKey(Dictionary<string, Assigned> c) => $"{V(c, "data")}\n{V(c, "val")}\n{V(c, "test")}";

        // Dataset labels: its name when that tells the datasets apart, else its file's name, else a number.
        var datasets = configurations.Select(DataKey).Distinct().ToList();
        var first = datasets.Select(k => configurations.First(c => DataKey(c) == k)).ToList();
        string Stem(Dictionary<string, Assigned> c)
        {
            string data = V(c, "data")!;
            return DataArguments.IsSynthetic(data) ? data : Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(data));
        }
        var byName = first.Select(c => V(c, "dataset-name") ?? (DataArguments.IsSynthetic(V(c, "data")!) ? DataArguments.SyntheticPrefix : Stem(c))).ToList();
        var byStem = first.Select(Stem).ToList();
        var datasetLabel = new Dictionary<string, string>();
        for (int i = 0; i < datasets.Count; i++)
            datasetLabel[datasets[i]] = byName.Count(n => n == byName[i]) == 1 ? byName[i]
                : byStem.Count(n => n == byStem[i]) == 1 ? byStem[i]
                : $"{byName[i]}-{i + 1}";

        var result = new List<(string, List<KeyValuePair<string, string>>)>();
        var groups = configurations.GroupBy(c => (DataKey(c), V(c, "method") ?? "baseline", V(c, "rule") ?? "none")).ToList();
        foreach (var c in configurations)
        {
            string dataset = datasetLabel[DataKey(c)], method = V(c, "method") ?? "baseline", rule = V(c, "rule") ?? "none";
            var group = groups.First(g => g.Key == (DataKey(c), method, rule)).ToList();
            var labels = new List<KeyValuePair<string, string>> { new("dataset", dataset), new("method", method), new("rule", rule) };
            foreach (string key in order)
            {
                if (PlacedKeys.Contains(key)) continue;
                if (group.Select(g => V(g, key)).Distinct().Count() > 1) labels.Add(new(key, V(c, key) ?? "-"));
            }
            var directory = new StringBuilder(Safe(dataset)).Append('/').Append(Safe(method)).Append('-').Append(Safe(rule));
            foreach (var label in labels.Skip(3)) directory.Append(',').Append(Safe(label.Key)).Append('=').Append(Safe(label.Value));
            result.Add((directory.ToString(), labels));
        }
        return result;
    }

    /// <summary>A folder name: letters, digits and . _ + = - kept, anything else (a path separator, a comma, a space) as '_'.</summary>
    internal static string Safe(string text)
    {
        var s = new StringBuilder(text.Length);
        foreach (char ch in text) s.Append(char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '+' or '=' or '-' ? ch : '_');
        string result = s.ToString().Trim('.');
        return result.Length == 0 ? "_" : result;
    }

    private static void CheckDistinct(List<SweepCell> cells, string name)
    {
        var seen = new Dictionary<string, SweepCell>(StringComparer.Ordinal);
        foreach (var cell in cells)
        {
            if (seen.TryGetValue(cell.Directory, out var other))
            {
                string how = other.Arguments.SequenceEqual(cell.Arguments)
                    ? "the same settings twice (a value listed twice in an axis?)"
                    : "two configurations whose settings differ only in characters a folder name cannot hold";
                throw new UsageException($"{name}: cells {other.Index} and {cell.Index} are both {cell.Directory}: {how}.");
            }
            seen[cell.Directory] = cell;
        }
    }
}
