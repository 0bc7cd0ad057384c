using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Dicc.Engine.IO;

/// <summary>A tensor's entry in a safetensors header: where its bytes lie, relative to the end of the header.</summary>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>The tensor's size in bytes.</summary>
    public long ByteCount => End - Begin;
}

/// <summary>The header of a safetensors file: metadata and tensor entries in file (offset) order.</summary>
public sealed record SafetensorsHeader(
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<SafetensorsTensorInfo> Tensors,
    long HeaderLength)
{
    /// <summary>Where the data section starts in the file: 8 + header length.</summary>
    public long DataStart => 8 + HeaderLength;

    /// <summary>Length of the data section: the end of the last tensor.</summary>
    public long DataLength => Tensors.Count == 0 ? 0 : Tensors[^1].End;
}

/// <summary>A safetensors file read into memory: metadata and tensors by name, and the names in file order.</summary>
public sealed class SafetensorsContent
{
    internal SafetensorsContent(
        IReadOnlyDictionary<string, string> metadata,
        IReadOnlyList<string> names,
        IReadOnlyDictionary<string, SafetensorsTensor> tensors)
    {
        Metadata = metadata;
        Names = names;
        Tensors = tensors;
    }

    /// <summary>The <c>__metadata__</c> strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in the order their bytes appear in the file.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The tensors by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensor> Tensors { get; }

    /// <summary>The tensor called <paramref name="name"/>; a <see cref="KeyNotFoundException"/> names it when absent.</summary>
    public SafetensorsTensor this[string name] =>
        Tensors.TryGetValue(name, out var t) ? t
            : throw new KeyNotFoundException($"No tensor named '{name}' (the file holds {Names.Count}: {string.Join(", ", Names.Take(8))}{(Names.Count > 8 ? ", ..." : "")}).");
}

/// <summary>A file that is not valid safetensors. The message names the file and the violated rule.</summary>
public sealed class SafetensorsFormatException(string source, string problem)
    : InputException($"{source}: not a valid safetensors file: {problem}")
{
    /// <summary>The file path (or stream description) that was read.</summary>
    public string SourceName { get; } = source;
}

/// <summary>
/// Reads and validates the safetensors format. Every rule of the reference reader is enforced, with a
/// message that names the file: header length within the file and at most 100 MB; header valid UTF-8 JSON
/// object; <c>__metadata__</c> a string-to-string map; each tensor a known dtype, non-negative integer shape
/// and <c>data_offsets</c> <c>[begin, end]</c> whose span equals elements x element size; offsets that tile
/// the data section from 0 with no gap or overlap; and a file that ends exactly at the last tensor.
/// BOOL bytes must be 0 or 1.
/// </summary>
public static class SafetensorsReader
{
    /// <summary>Reads only the header of <paramref name="source"/> and checks it (against the stream length where known).</summary>
    public static SafetensorsHeader ReadHeader(Stream source, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sourceName);
        long? totalLength = source.CanSeek ? source.Length - source.Position : null;

        Span<byte> prefix = stackalloc byte[8];
        int got = ReadAtMost(source, prefix);
        if (got < 8)
            throw new SafetensorsFormatException(sourceName, $"it has {got} bytes, fewer than the 8-byte header length.");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > SafetensorsWriter.MaxHeaderLength)
            throw new SafetensorsFormatException(sourceName,
                $"the header length is {headerLength} bytes, more than the {SafetensorsWriter.MaxHeaderLength} allowed.");
        if (totalLength is long total && 8 + (long)headerLength > total)
            throw new SafetensorsFormatException(sourceName,
                $"the header length is {headerLength} bytes but the file has only {total - 8} bytes after the length.");

        byte[] headerBytes = new byte[headerLength];
        got = ReadAtMost(source, headerBytes);
        if (got < headerBytes.Length)
            throw new SafetensorsFormatException(sourceName,
                $"the header length is {headerLength} bytes but the file ends after {got} header bytes.");

        var header = ParseHeader(headerBytes, sourceName);
        if (totalLength is long all)
        {
            long expected = header.DataStart + header.DataLength;
            if (all < expected)
                throw new SafetensorsFormatException(sourceName,
                    $"the file is truncated: the header describes {expected} bytes, the file has {all}.");
            if (all > expected)
                throw new SafetensorsFormatException(sourceName,
                    $"{all - expected} bytes follow the last tensor (the header describes {expected} bytes, the file has {all}).");
        }
        return header;
    }

    /// <summary>Reads and checks the whole of <paramref name="source"/>; tensors are copied into memory.</summary>
    public static SafetensorsContent Read(Stream source, string sourceName)
    {
        var header = ReadHeader(source, sourceName);
        var tensors = new Dictionary<string, SafetensorsTensor>(header.Tensors.Count, StringComparer.Ordinal);
        var names = new List<string>(header.Tensors.Count);
        foreach (var info in header.Tensors)
        {
            if (info.ByteCount > Array.MaxLength)
                throw new SafetensorsFormatException(sourceName,
                    $"tensor '{info.Name}' has {info.ByteCount} bytes, more than one array can hold.");
            byte[] data = new byte[info.ByteCount];
            int got = ReadAtMost(source, data);
            if (got < data.Length)
                throw new SafetensorsFormatException(sourceName,
                    $"the file is truncated inside tensor '{info.Name}' ({got} of its {data.Length} bytes are present).");
            if (info.DType == SafetensorsDType.Bool && Array.FindIndex(data, b => b > 1) is int bad and >= 0)
                throw new SafetensorsFormatException(sourceName,
                    $"BOOL tensor '{info.Name}' holds the byte {data[bad]} at element {bad}; only 0 and 1 are booleans.");
            tensors.Add(info.Name, new SafetensorsTensor(info.DType, info.Shape, data));
            names.Add(info.Name);
        }
        if (!source.CanSeek && source.ReadByte() >= 0)
            throw new SafetensorsFormatException(sourceName, "bytes follow the last tensor.");
        return new SafetensorsContent(header.Metadata, names, tensors);
    }

    /// <summary>Parses and validates a header's JSON (the bytes after the 8-byte length).</summary>
    internal static SafetensorsHeader ParseHeader(byte[] headerBytes, string sourceName)
    {
        JsonDocument document;
        try
        {
            // Strict UTF-8 first: the JSON parser would otherwise report a bad byte as a JSON syntax error.
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(headerBytes);
            document = JsonDocument.Parse(headerBytes);
        }
        catch (DecoderFallbackException)
        {
            throw new SafetensorsFormatException(sourceName, "the header is not valid UTF-8.");
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(sourceName, $"the header is not valid JSON ({e.Message}).");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(sourceName, $"the header is a JSON {root.ValueKind}, not an object.");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var infos = new List<SafetensorsTensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafetensorsFormatException(sourceName, $"the header names '{property.Name}' twice.");
                if (property.Name == SafetensorsWriter.MetadataKey)
                    ReadMetadata(property.Value, metadata, sourceName);
                else
                    infos.Add(ReadTensorInfo(property.Name, property.Value, sourceName));
            }

            // Offsets must tile [0, end) in order: sort by (begin, end) and walk.
            infos.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long expectedBegin = 0;
            string? previous = null;
            foreach (var info in infos)
            {
                if (info.Begin > expectedBegin)
                    throw new SafetensorsFormatException(sourceName, previous is null
                        ? $"the first tensor '{info.Name}' starts at data offset {info.Begin}, not 0."
                        : $"{info.Begin - expectedBegin} unused bytes lie between tensor '{previous}' (ends at {expectedBegin}) and tensor '{info.Name}' (starts at {info.Begin}).");
                if (info.Begin < expectedBegin)
                    throw new SafetensorsFormatException(sourceName,
                        $"tensor '{info.Name}' [{info.Begin}, {info.End}) overlaps tensor '{previous}' (ends at {expectedBegin}).");
                expectedBegin = info.End;
                previous = info.Name;
            }
            return new SafetensorsHeader(metadata, infos, headerBytes.LongLength);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string sourceName)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(sourceName, $"'__metadata__' is a JSON {value.ValueKind}, not an object of strings.");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsFormatException(sourceName,
                    $"metadata entry '{entry.Name}' is a JSON {entry.Value.ValueKind}; metadata values must be strings.");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafetensorsFormatException(sourceName, $"metadata key '{entry.Name}' appears twice.");
        }
    }

    private static SafetensorsTensorInfo ReadTensorInfo(string name, JsonElement value, string sourceName)
    {
        string Where() => $"tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(sourceName, $"{Where()} is a JSON {value.ValueKind}, not an object.");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(sourceName, $"{Where()} has no \"dtype\" string.");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDTypeExtensions.TryParse(dtypeName, out var dtype))
            throw new SafetensorsFormatException(sourceName,
                $"{Where()} has dtype \"{dtypeName}\", which this reader does not support (supported: {string.Join(", ", Enum.GetValues<SafetensorsDType>().Select(d => d.FormatName()))}).");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(sourceName, $"{Where()} has no \"shape\" array.");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new SafetensorsFormatException(sourceName,
                    $"{Where()} has shape {shapeElement.GetRawText()}; dimensions must be non-negative integers.");
            shape[i++] = dim;
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2)
            throw new SafetensorsFormatException(sourceName, $"{Where()} has no \"data_offsets\" array [begin, end].");
        long[] pair = new long[2];
        i = 0;
        foreach (var o in offsets.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long v) || v < 0)
                throw new SafetensorsFormatException(sourceName,
                    $"{Where()} has data_offsets {offsets.GetRawText()}; offsets must be non-negative integers.");
            pair[i++] = v;
        }
        if (pair[1] < pair[0])
            throw new SafetensorsFormatException(sourceName,
                $"{Where()} has data_offsets [{pair[0]}, {pair[1]}]: the end lies before the begin.");

        long bytes;
        try { bytes = SafetensorsTensor.ByteCount(dtype, shape); }
        catch (OverflowException)
        {
            throw new SafetensorsFormatException(sourceName,
                $"{Where()} has shape {shapeElement.GetRawText()}, whose byte size overflows 64 bits.");
        }
        if (pair[1] - pair[0] != bytes)
            throw new SafetensorsFormatException(sourceName,
                $"{Where()} is {dtypeName} of shape {SafetensorsTensor.FormatShape(shape)}, which needs {bytes} bytes, but its data_offsets [{pair[0]}, {pair[1]}] span {pair[1] - pair[0]}.");
        return new SafetensorsTensorInfo(name, dtype, shape, pair[0], pair[1]);
    }

    private static int ReadAtMost(Stream source, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = source.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
