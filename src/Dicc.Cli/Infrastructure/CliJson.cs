using System.Text.Json.Serialization;

namespace Dicc.Cli.Infrastructure;

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(Dictionary<string, string>), TypeInfoPropertyName = "DictionaryStringString")]
internal sealed partial class CliJson : JsonSerializerContext;
