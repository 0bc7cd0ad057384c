using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Dicc.Cli.Infrastructure;

/// <summary>--json output: one JSON document written raw to the console's writer (the console would wrap long lines).</summary>
internal static class JsonOutput
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Write(IAnsiConsole console, JsonNode node) =>
        console.Profile.Out.Writer.WriteLine(node.ToJsonString(Indented));

    /// <summary>A JSON array of numbers (NaN and infinities become null, which strict JSON readers accept).</summary>
    public static JsonArray Numbers(IEnumerable<double> values) =>
        new(values.Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null).ToArray<JsonNode?>());

    public static JsonArray Numbers(IEnumerable<int> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    public static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
}
