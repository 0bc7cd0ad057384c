using System.Text.Json;
using System.Text.Json.Serialization;
using Dicc.Engine.IO;

namespace Dicc.Engine.Training;

/// <summary>
/// What a run was trained on (part of config.json). <paramref name="Source"/> (and the optional separate
/// validation and test sources) are what the user passed, so a run can be resumed or re-evaluated.
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
    int ImageSize = Data.ImageDataset.DefaultSize);

/// <summary>config.json: every setting of a run, the data it saw, and the engine that ran it.</summary>
public sealed record RunConfig(
    string EngineVersion,
    TrainingOptions Options,
    DatasetDescription Dataset,
    int[]? SubclassCounts,
    string Device,
    DateTimeOffset Created);

/// <summary>One line of metrics.jsonl (docs/evaluation.md, "metrics.jsonl"). Fields added later are optional, so old files still load.</summary>
/// <param name="Epoch">0-based epoch.</param>
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
    int Epoch,
    double LearningRate,
    double TrainLoss,
    double? MappingLoss,
    double ValidationAccuracy,
    double ValidationBalancedAccuracy,
    double ValidationMacroF1,
    bool Best,
    double Seconds,
    double ImagesPerSecond,
    long[]? ValidationPredictions = null,
    double? MappingPriorEntropy = null,
    DiccEpochInstruments? Dicc = null);

/// <summary>The files of a run directory (docs/evaluation.md) and how they are read and written.</summary>
public sealed class RunDirectory(string path)
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);
    public string ConfigFile => System.IO.Path.Combine(Path, "config.json");
    public string MetricsFile => System.IO.Path.Combine(Path, "metrics.jsonl");
    public string ReportFile => System.IO.Path.Combine(Path, "report.json");
    public string ValidationReportFile => System.IO.Path.Combine(Path, "report-validation.json");
    public string ResultFile => System.IO.Path.Combine(Path, "result.json");
    public string CheckpointDirectory => System.IO.Path.Combine(Path, "checkpoints");
    public string LastCheckpoint => System.IO.Path.Combine(CheckpointDirectory, "last.safetensors");
    public string BestCheckpoint => System.IO.Path.Combine(CheckpointDirectory, "best.safetensors");

    public void WriteConfig(RunConfig config)
    {
        Directory.CreateDirectory(Path);
        AtomicFile.WriteAllText(ConfigFile, JsonSerializer.Serialize(config, RunJson.Default.RunConfig));
    }

    public RunConfig ReadConfig()
    {
        if (!File.Exists(ConfigFile)) throw new InputException($"{ConfigFile}: not found; is '{Path}' a run directory?");
        try
        {
            string text = File.ReadAllText(ConfigFile);
            var config = JsonSerializer.Deserialize(text, RunJson.Default.RunConfig) ?? throw new InputException($"{ConfigFile}: empty.");
            if (config.Options is null || config.Dataset is null)
                throw new InputException($"{ConfigFile}: not a run configuration (it has no options or no dataset).");
            // Runs written before select_on existed selected their model on validation accuracy.
            using var document = JsonDocument.Parse(text);
            if (!(document.RootElement.TryGetProperty("options", out var options) && options.ValueKind == JsonValueKind.Object &&
                  options.TryGetProperty("select_on", out _)))
                config = config with { Options = config.Options with { SelectOn = ModelSelection.Accuracy } };
            return config;
        }
        catch (JsonException e)
        {
            throw new InputException($"{ConfigFile}: not a valid run configuration ({e.Message}).");
        }
    }

    /// <summary>Rewrites metrics.jsonl with the given lines (atomic; used when resuming).</summary>
    public void WriteMetrics(IEnumerable<EpochMetrics> lines) =>
        AtomicFile.WriteAllText(MetricsFile, string.Concat(lines.Select(l => JsonSerializer.Serialize(l, RunJsonLines.Default.EpochMetrics) + "\n")));

    public List<EpochMetrics> ReadMetrics()
    {
        var result = new List<EpochMetrics>();
        if (!File.Exists(MetricsFile)) return result;
        int line = 0;
        foreach (var text in File.ReadLines(MetricsFile))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                result.Add(JsonSerializer.Deserialize(text, RunJsonLines.Default.EpochMetrics)
                           ?? throw new InputException($"{MetricsFile}:{line}: empty line."));
            }
            catch (JsonException e)
            {
                throw new InputException($"{MetricsFile}:{line}: not a metrics line ({e.Message}).");
            }
        }
        return result;
    }

    public static string Serialize(EpochMetrics m) => JsonSerializer.Serialize(m, RunJsonLines.Default.EpochMetrics);
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RunConfig))]
internal sealed partial class RunJson : JsonSerializerContext;

/// <summary>One object per line (metrics.jsonl).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(EpochMetrics))]
internal sealed partial class RunJsonLines : JsonSerializerContext;
