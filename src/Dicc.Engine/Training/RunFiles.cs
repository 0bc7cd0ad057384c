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

/// <summary>One line of metrics.jsonl.</summary>
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
    double ImagesPerSecond);

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
            return JsonSerializer.Deserialize(File.ReadAllText(ConfigFile), RunJson.Default.RunConfig)
                   ?? throw new InputException($"{ConfigFile}: empty.");
        }
        catch (JsonException e)
        {
            throw new InputException($"{ConfigFile}: not a valid run configuration ({e.Message}).");
        }
    }

    /// <summary>Rewrites metrics.jsonl with the given lines (atomic; used when resuming).</summary>
    public void WriteMetrics(IEnumerable<EpochMetrics> lines) =>
        AtomicFile.WriteAllText(MetricsFile, string.Concat(lines.Select(l => JsonSerializer.Serialize(l, RunJsonLines.Default.EpochMetrics) + "\n")));

    /// <summary>Reads metrics.jsonl (empty when absent); throws an <see cref="InputException"/> naming the line that is not valid.</summary>
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

    /// <summary>One metrics line as JSON.</summary>
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
