using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Dicc.Engine.IO;

namespace Dicc.Engine.Training;

/// <summary>
/// What a run was trained on (part of config.json). <paramref name="Source"/> (and the optional separate
/// validation and test sources) are what the user passed, so a run can be resumed or re-evaluated; the
/// <c>...Path</c> properties hold the same sources as absolute paths, so that this works from another working
/// directory too.
/// </summary>
public sealed record DatasetDescription(
    string Name,
    string Source,
    string? Fingerprint,
    double? Beta,
    string[] ClassNames,
    int[] TrainCounts,
    int ValidationCount,
    int TestCount,
    string? ValidationSource = null,
    string? TestSource = null,
    int ImageSize = Data.ImageDataset.DefaultSize)
{
    /// <summary><see cref="Source"/> as an absolute path (null for built-in synthetic data).</summary>
    public string? SourcePath { get; init; }

    /// <summary><see cref="ValidationSource"/> as an absolute path, or null.</summary>
    public string? ValidationSourcePath { get; init; }

    /// <summary><see cref="TestSource"/> as an absolute path, or null.</summary>
    public string? TestSourcePath { get; init; }

    /// <summary>How the data was loaded (bad-image policy, class list and map, hold-outs): reused by resume and evaluation.</summary>
    public DataSettings? Settings { get; init; }

    /// <summary>Inputs left out under the skip policy ("path: reason" or "path, line N: reason").</summary>
    public string[]? Skipped { get; init; }

    /// <summary>The validation split was held out of train (the source has none).</summary>
    public bool ValidationHeldOut { get; init; }

    /// <summary>The test split was held out of train (the source has none).</summary>
    public bool TestHeldOut { get; init; }

    /// <summary>
    /// The run is one fold of a subject-independent k-fold split of the source (all its images pooled): which
    /// subjects it tests and validates on. Resume and evaluation make the same split from it. Null otherwise.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Data.FoldSplit? Fold { get; init; }

    /// <summary>
    /// Where a source named in config.json is now: the absolute path when it exists, else the path as typed
    /// (relative to the current folder), else the absolute path (whose absence the loader then reports).
    /// </summary>
    public static string? Locate(string? typed, string? absolute)
    {
        if (typed is null) return absolute;
        if (absolute is null) return typed;
        if (File.Exists(absolute) || Directory.Exists(absolute)) return absolute;
        return File.Exists(typed) || Directory.Exists(typed) ? typed : absolute;
    }
}

/// <summary>
/// The loader settings a run's data was read with (config.json, <c>dataset.settings</c>): what resume and
/// evaluation need to read the same images with the same labels and splits.
/// </summary>
public sealed record DataSettings
{
    /// <summary>What the loader did with unreadable images (fail or skip).</summary>
    public Data.BadInputPolicy OnBadImage { get; init; } = Data.BadInputPolicy.Fail;

    /// <summary>The class list given explicitly (null: the seven expressions).</summary>
    public string[]? Classes { get; init; }

    /// <summary>Folder name → class name, or null.</summary>
    public Dictionary<string, string>? ClassMap { get; init; }

    /// <summary>The part of each train class held out as validation when the source had no validation split.</summary>
    public double ValidationFraction { get; init; }
    /// <summary>The part of each train class held out as the test split when the source had no test split.</summary>
    public double TestFraction { get; init; }
    /// <summary>The seed of the stratified hold-outs.</summary>
    public ulong HoldOutSeed { get; init; }
    /// <summary>The side images were resized to.</summary>
    public int ImageSize { get; init; } = Data.ImageDataset.DefaultSize;
    /// <summary>Whether a class without images was accepted.</summary>
    public bool AllowMissingClasses { get; init; }

    /// <summary>Faces were cropped out of whole images by this detector, or null (the images are face crops).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public FaceCropSettings? FaceCrop { get; init; }

    /// <summary>The settings of <paramref name="options"/> that config.json records.</summary>
    public static DataSettings From(Data.DatasetLoadOptions options) => new()
    {
        FaceCrop = options.FaceCrop is { } f ? new FaceCropSettings(f.Detector.Name, f.Detector.ModelPath, f.Margin, f.Detector.Description) : null,
        OnBadImage = options.OnBadImage,
        Classes = options.ClassNames?.ToArray(),
        ClassMap = options.ClassMap?.ToDictionary(kv => kv.Key, kv => kv.Value),
        ValidationFraction = options.ValidationFraction,
        TestFraction = options.TestFraction,
        HoldOutSeed = options.HoldOutSeed,
        ImageSize = options.ImageSize,
        AllowMissingClasses = options.AllowMissingClasses,
    };

    /// <summary>
    /// <paramref name="options"/> (cache and thread settings) with these settings in place. A detector cannot be
    /// written to a file: with <see cref="FaceCrop"/> set, the caller creates it again (from its name and model
    /// file) and gives it in <paramref name="options"/>.
    /// </summary>
    public Data.DatasetLoadOptions ApplyTo(Data.DatasetLoadOptions options) => options with
    {
        OnBadImage = OnBadImage,
        ClassNames = Classes,
        ClassMap = ClassMap,
        ValidationFraction = ValidationFraction,
        TestFraction = TestFraction,
        HoldOutSeed = HoldOutSeed,
        ImageSize = ImageSize,
        AllowMissingClasses = AllowMissingClasses,
    };
}

/// <summary>How faces were cropped out of whole images (config.json, <c>dataset.settings.face_crop</c>).</summary>
/// <param name="Detector">The detector's name (<see cref="Data.IFaceDetector.Name"/>).</param>
/// <param name="Model">The file it read its model from, or null.</param>
/// <param name="Margin">Part of the face box's side added on each side.</param>
/// <param name="Description">The detector and its settings, in words.</param>
public sealed record FaceCropSettings(string Detector, string? Model, double Margin, string Description);

/// <summary>config.json: every setting of a run, the data it saw, and the engine that ran it.</summary>
public sealed record RunConfig(
    string EngineVersion,
    TrainingOptions Options,
    DatasetDescription Dataset,
    int[]? SubclassCounts,
    string Device,
    DateTimeOffset Created);

/// <summary>
/// One line of metrics.jsonl, and the object <c>dicc train --json</c> prints per epoch: the same names and the
/// same numbering everywhere (docs/evaluation.md, "metrics.jsonl"). Non-finite values (no validation split) are
/// written as null. Fields added later are optional, so older files still load.
/// </summary>
/// <param name="Epoch">The epoch, counting from 1 as printed.</param>
/// <param name="LearningRate">The epoch's learning rate.</param>
/// <param name="TrainLoss">Mean training loss of the epoch (DICC: the subclass loss; in a warm-up epoch the class loss).</param>
/// <param name="MappingLoss">DICC's mean phase-2 (mapping) loss; null without a trained mapping.</param>
/// <param name="ValidationAccuracy">Validation top-1 accuracy (NaN without a validation split).</param>
/// <param name="ValidationBalancedAccuracy">Validation balanced accuracy.</param>
/// <param name="ValidationMacroF1">Validation macro-F1.</param>
/// <param name="Best">Whether this epoch's model is the selected one so far (<see cref="TrainingOptions.SelectOn"/>).</param>
/// <param name="Seconds">Training time of the epoch (without validation).</param>
/// <param name="ImagesPerSecond">Training throughput.</param>
/// <param name="ValidationPredictions">Validation images predicted as each class (the prediction histogram).</param>
/// <param name="MappingPriorEntropy">DICC with a trained mapping: the loss a mapping that ignores its input reaches
/// (<see cref="DiccInstruments.MappingPriorEntropy"/>); compare <paramref name="MappingLoss"/> with it.</param>
/// <param name="Dicc">DICC's clustering instruments; null for the baseline and in warm-up epochs.</param>
public sealed record EpochMetrics(
    [property: JsonPropertyName("epoch")] int Epoch,
    [property: JsonPropertyName("lr"), JsonConverter(typeof(FiniteOrNullConverter))] double LearningRate,
    [property: JsonPropertyName("loss"), JsonConverter(typeof(FiniteOrNullConverter))] double TrainLoss,
    [property: JsonPropertyName("map_loss")] double? MappingLoss,
    [property: JsonPropertyName("val_acc"), JsonConverter(typeof(FiniteOrNullConverter))] double ValidationAccuracy,
    [property: JsonPropertyName("val_bal_acc"), JsonConverter(typeof(FiniteOrNullConverter))] double ValidationBalancedAccuracy,
    [property: JsonPropertyName("val_f1"), JsonConverter(typeof(FiniteOrNullConverter))] double ValidationMacroF1,
    [property: JsonPropertyName("best")] bool Best,
    [property: JsonPropertyName("seconds"), JsonConverter(typeof(FiniteOrNullConverter))] double Seconds,
    [property: JsonPropertyName("img_per_s"), JsonConverter(typeof(FiniteOrNullConverter))] double ImagesPerSecond,
    [property: JsonPropertyName("val_pred")] long[]? ValidationPredictions = null,
    [property: JsonPropertyName("map_prior")] double? MappingPriorEntropy = null,
    [property: JsonPropertyName("dicc")] DiccEpochInstruments? Dicc = null)
{
    /// <summary>Two lines are equal when they write the same JSON: arrays (the histogram, the instruments) by their values.</summary>
    public bool Equals(EpochMetrics? other) =>
        other is not null && (ReferenceEquals(this, other) || RunDirectory.ToJsonLines([this]) == RunDirectory.ToJsonLines([other]));

    /// <summary>Consistent with <see cref="Equals(EpochMetrics?)"/>.</summary>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(RunDirectory.ToJsonLines([this]));
}

/// <summary>Doubles as JSON numbers, NaN and infinities as null (strict JSON has no literal for them); null reads back as NaN.</summary>
public sealed class FiniteOrNullConverter : JsonConverter<double>
{
    /// <summary>Reads a number (or a number written as a string), or null as NaN.</summary>
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => double.NaN,
        JsonTokenType.String when double.TryParse(reader.GetString(), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out double v) => v,
        JsonTokenType.Number => reader.GetDouble(),
        _ => throw new JsonException($"expected a number or null, found {reader.TokenType}"),
    };

    /// <summary>Writes a finite number, or null for NaN and infinities.</summary>
    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteNullValue();
    }
}

/// <summary>The files of a run directory (docs/evaluation.md) and how they are read and written.</summary>
public sealed class RunDirectory(string path)
{
    /// <summary>The run directory's full path.</summary>
    public string Path { get; } = System.IO.Path.GetFullPath(path);
    /// <summary>config.json: every setting of the run.</summary>
    public string ConfigFile => System.IO.Path.Combine(Path, "config.json");
    /// <summary>metrics.jsonl: one line per epoch.</summary>
    public string MetricsFile => System.IO.Path.Combine(Path, "metrics.jsonl");
    /// <summary>report.json: the test evaluation of the model selected on validation.</summary>
    public string ReportFile => System.IO.Path.Combine(Path, "report.json");
    /// <summary>report-validation.json: the validation evaluation of that model.</summary>
    public string ValidationReportFile => System.IO.Path.Combine(Path, "report-validation.json");
    /// <summary>result.json: the run's headline figures (for dicc compare).</summary>
    public string ResultFile => System.IO.Path.Combine(Path, "result.json");
    /// <summary>checkpoints/.</summary>
    public string CheckpointDirectory => System.IO.Path.Combine(Path, "checkpoints");
    /// <summary>checkpoints/last.safetensors: the latest epoch's state.</summary>
    public string LastCheckpoint => System.IO.Path.Combine(CheckpointDirectory, "last.safetensors");
    /// <summary>checkpoints/best.safetensors: the state with the best validation accuracy.</summary>
    public string BestCheckpoint => System.IO.Path.Combine(CheckpointDirectory, "best.safetensors");
    /// <summary>run.lock: held while a process trains or resumes the run.</summary>
    public string LockFile => System.IO.Path.Combine(Path, RunLock.FileName);

    /// <summary>The lock this object holds on the directory (<see cref="Lock"/>), or null.</summary>
    public RunLock? HeldLock { get; private set; }

    /// <summary>
    /// Takes the directory's exclusive lock (creating the directory) until the returned lock is disposed; a
    /// <see cref="Trainer"/> given this object then runs under it instead of taking its own, so that a caller can
    /// hold the directory across the training and what it writes afterwards.
    /// </summary>
    /// <exception cref="RunDirectoryInUseException">Another running process holds it.</exception>
    public RunLock Lock()
    {
        if (HeldLock is not null) throw new InvalidOperationException($"{Path} is already locked by this object.");
        var held = RunLock.Acquire(Path);
        held.OnRelease = () =>
        {
            if (ReferenceEquals(HeldLock, held)) HeldLock = null;
        };
        HeldLock = held;
        return held;
    }

    /// <summary>Whether the directory holds a run (its config.json).</summary>
    public bool HoldsRun => File.Exists(ConfigFile);

    /// <summary>Entries of the directory other than its lock file (empty when it does not exist).</summary>
    public IReadOnlyList<string> OtherEntries() =>
        Directory.Exists(Path)
            ? Directory.EnumerateFileSystemEntries(Path).Where(e => System.IO.Path.GetFileName(e) != RunLock.FileName).ToList()
            : [];

    /// <summary>Writes config.json atomically (creating the directory).</summary>
    public void WriteConfig(RunConfig config)
    {
        Directory.CreateDirectory(Path);
        AtomicFile.WriteAllText(ConfigFile, JsonSerializer.Serialize(config, RunJson.Default.RunConfig));
    }

    /// <summary>Reads config.json; throws an <see cref="InputException"/> naming the file when it is missing or invalid.</summary>
    public RunConfig ReadConfig()
    {
        if (!File.Exists(ConfigFile)) throw new InputException($"{ConfigFile}: not found; is '{Path}' a run directory?");
        try
        {
            string text = File.ReadAllText(ConfigFile);
            var root = JsonNode.Parse(text) as JsonObject ?? throw new InputException($"{ConfigFile}: not a run configuration (not a JSON object).");
            // A setting the file does not name (it was written before the setting existed) takes its default: the
            // generated deserializer would otherwise give init-only properties their type's zero (an LDAM scale of 0).
            bool selectOnNamed = false;
            if (root["options"] is JsonObject options)
            {
                selectOnNamed = options.ContainsKey("select_on");
                var defaults = JsonSerializer.SerializeToNode(new TrainingOptions(), RunJson.Default.TrainingOptions)!.AsObject();
                foreach (var (name, value) in defaults)
                    if (!options.ContainsKey(name)) options[name] = value?.DeepClone();
            }
            var config = root.Deserialize(RunJson.Default.RunConfig) ?? throw new InputException($"{ConfigFile}: empty.");
            if (config.Options is null || config.Dataset is null)
                throw new InputException($"{ConfigFile}: not a run configuration (it has no options or no dataset).");
            // Runs written before select_on existed selected their model on validation accuracy.
            if (!selectOnNamed) config = config with { Options = config.Options with { SelectOn = ModelSelection.Accuracy } };
            return config;
        }
        catch (JsonException e)
        {
            throw new InputException($"{ConfigFile}: not a valid run configuration ({e.Message}).");
        }
    }

    /// <summary>Rewrites metrics.jsonl with the given lines (atomically).</summary>
    public void WriteMetrics(IEnumerable<EpochMetrics> lines) => AtomicFile.WriteAllText(MetricsFile, ToJsonLines(lines));

    /// <summary>metrics.jsonl's lines; empty when the file does not exist.</summary>
    public List<EpochMetrics> ReadMetrics() => File.Exists(MetricsFile) ? ParseJsonLines(File.ReadAllText(MetricsFile), MetricsFile) : [];

    /// <summary>One JSON object per line, as in metrics.jsonl.</summary>
    public static string ToJsonLines(IEnumerable<EpochMetrics> lines) => string.Concat(lines.Select(l => Serialize(l) + "\n"));

    /// <summary>Parses metrics lines; <paramref name="source"/> names them in errors.</summary>
    public static List<EpochMetrics> ParseJsonLines(string text, string source)
    {
        var result = new List<EpochMetrics>();
        int line = 0;
        foreach (var item in text.Split('\n'))
        {
            line++;
            if (string.IsNullOrWhiteSpace(item)) continue;
            EpochMetrics? metrics;
            try
            {
                metrics = JsonSerializer.Deserialize(item, RunJsonLines.Default.EpochMetrics);
            }
            catch (JsonException e)
            {
                throw new InputException($"{source}:{line}: not a metrics line ({e.Message}).");
            }
            if (metrics is null || metrics.Epoch < 1)
                throw new InputException($"{source}:{line}: not a metrics line of this engine version (no epoch counted from 1).");
            result.Add(metrics);
        }
        return result;
    }

    /// <summary>One metrics line as JSON.</summary>
    public static string Serialize(EpochMetrics m) => JsonSerializer.Serialize(m, RunJsonLines.Default.EpochMetrics);
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RunConfig))]
[JsonSerializable(typeof(TrainingOptions))]
internal sealed partial class RunJson : JsonSerializerContext;

/// <summary>One object per line (metrics.jsonl).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(EpochMetrics))]
internal sealed partial class RunJsonLines : JsonSerializerContext;
