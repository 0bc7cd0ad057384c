using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dicc.Engine.Evaluation;

/// <summary>
/// Writes a number array on one line even in indented JSON, so that a PR curve with thousands of points or a
/// confusion-matrix row stays one line of report.json instead of one line per number.
/// </summary>
internal abstract class CompactArrayConverter<T> : JsonConverter<T[]>
{
    protected abstract void Append(StringBuilder sb, T value);
    protected abstract T ReadElement(ref Utf8JsonReader reader);

    public override T[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException($"Expected an array of numbers, found {reader.TokenType}.");
        var values = new List<T>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number) throw new JsonException($"Expected a number, found {reader.TokenType}.");
            values.Add(ReadElement(ref reader));
        }
        return values.ToArray();
    }

    public override void Write(Utf8JsonWriter writer, T[] value, JsonSerializerOptions options)
    {
        var sb = new StringBuilder(value.Length * 8 + 2).Append('[');
        for (int i = 0; i < value.Length; i++)
        {
            if (i > 0) sb.Append(',');
            Append(sb, value[i]);
        }
        writer.WriteRawValue(sb.Append(']').ToString(), skipInputValidation: true);
    }
}

internal sealed class CompactDoubleArrayConverter : CompactArrayConverter<double>
{
    protected override void Append(StringBuilder sb, double value)
    {
        // Every double in a report is a finite ratio, score or threshold; anything else is a bug upstream.
        if (!double.IsFinite(value)) throw new JsonException($"Cannot write the non-finite number {value} as JSON.");
        sb.Append(value.ToString("R", CultureInfo.InvariantCulture));
    }

    protected override double ReadElement(ref Utf8JsonReader reader) => reader.GetDouble();
}

internal sealed class CompactInt64ArrayConverter : CompactArrayConverter<long>
{
    protected override void Append(StringBuilder sb, long value) => sb.Append(value.ToString(CultureInfo.InvariantCulture));
    protected override long ReadElement(ref Utf8JsonReader reader) => reader.GetInt64();
}
