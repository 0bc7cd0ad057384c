using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dicc.Engine.Evaluation;

/// <summary>
/// JSON for evaluation records through a source-generated context (no reflection, safe to trim).
/// Undefined values are nullable and written as null, so the files are strict JSON that any parser reads.
/// Number arrays (curves, confusion rows, seeds) are written one array per line.
/// </summary>
public static class EvaluationJson
{
    /// <summary>report.json's text for an evaluation report.</summary>
    public static string Serialize(EvaluationReport report) =>
        JsonSerializer.Serialize(report, EvaluationJsonContext.Default.EvaluationReport);

    /// <summary>result.json's text for a run result.</summary>
    public static string Serialize(RunResult run) =>
        JsonSerializer.Serialize(run, EvaluationJsonContext.Compact.RunResult);

    /// <summary>The JSON text of an aggregated result table.</summary>
    public static string Serialize(ResultTable table) =>
        JsonSerializer.Serialize(table, EvaluationJsonContext.Default.ResultTable);

    /// <summary>Reads a report; a malformed one is an <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    public static EvaluationReport DeserializeReport(string json, string source) =>
        Deserialize(json, source, EvaluationJsonContext.Default.EvaluationReport);

    /// <summary>Reads a run result (one line of a results .jsonl file, for instance).</summary>
    public static RunResult DeserializeRunResult(string json, string source) =>
        Deserialize(json, source, EvaluationJsonContext.Default.RunResult);

    private static T Deserialize<T>(string json, string source, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return JsonSerializer.Deserialize(json, type)
                ?? throw new InvalidDataException($"{source}: holds JSON null, not a {typeof(T).Name}.");
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line ? $" (line {line + 1}, {e.Path})" : "";
            throw new InvalidDataException($"{source}: not a valid {typeof(T).Name}{where}: {e.Message}", e);
        }
    }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    UseStringEnumConverter = true,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    Converters = [typeof(CompactDoubleArrayConverter), typeof(CompactInt64ArrayConverter)])]
[JsonSerializable(typeof(EvaluationReport))]
[JsonSerializable(typeof(RunResult))]
[JsonSerializable(typeof(ResultTable))]
internal sealed partial class EvaluationJsonContext : JsonSerializerContext
{
    /// <summary>The same contract on one line, for .jsonl files.</summary>
    public static EvaluationJsonContext Compact => s_compact ??= new(new JsonSerializerOptions(Default.Options) { WriteIndented = false });

    private static EvaluationJsonContext? s_compact;
}
