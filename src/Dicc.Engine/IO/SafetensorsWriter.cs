using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Dicc.Engine.IO;

/// <summary>What the writer needs to lay out one tensor before its bytes are produced.</summary>
public readonly record struct SafetensorsTensorSpec(SafetensorsDType DType, long[] Shape);

/// <summary>
/// Writes the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON header padded with spaces to a multiple of 8, then every tensor's bytes back to
/// back. The layout is the reference writer's, byte for byte: tensors ordered by element type, widest first
/// (in the reference's dtype order), then by name (UTF-8 byte order); compact JSON with <c>__metadata__</c>
/// first and each tensor as <c>{"dtype":..,"shape":[..],"data_offsets":[begin,end]}</c>. Metadata keys,
/// which the reference writes in hash order, are written in UTF-8 byte order so the output is deterministic.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>The largest header the reference reader accepts (100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    internal const string MetadataKey = "__metadata__";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes <paramref name="tensors"/> (name to tensor) and optional string metadata to <paramref name="destination"/>.</summary>
    public static void Write(
        Stream destination,
        IEnumerable<KeyValuePair<string, SafetensorsTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor, $"tensors[\"{name}\"]");
            if (!byName.TryAdd(name, tensor))
                throw new ArgumentException($"Tensor name '{name}' is given twice.", nameof(tensors));
        }
        var specs = byName.Select(p => new KeyValuePair<string, SafetensorsTensorSpec>(
            p.Key, new SafetensorsTensorSpec(p.Value.DType, p.Value.Shape)));
        Write(destination, specs, metadata, (name, stream) => stream.Write(byName[name].Data.Span));
    }

    /// <summary>
    /// Streaming form: the header is laid out from names, types and shapes alone, then
    /// <paramref name="writeData"/> is called once per tensor, in file order, and must write exactly that
    /// tensor's bytes. Lets a caller copy one device buffer at a time through a reused host buffer.
    /// </summary>
    public static void Write(
        Stream destination,
        IEnumerable<KeyValuePair<string, SafetensorsTensorSpec>> tensors,
        IReadOnlyDictionary<string, string>? metadata,
        Action<string, Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(writeData);
        var layout = Layout(tensors);
        byte[] header = BuildHeader(layout, metadata);

        Span<byte> lengthPrefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthPrefix, (ulong)header.Length);
        destination.Write(lengthPrefix);
        destination.Write(header);
        foreach (var entry in layout)
        {
            var counted = new CountingStream(destination, entry.End - entry.Begin, entry.Name);
            writeData(entry.Name, counted);
            if (counted.Written != entry.End - entry.Begin)
                throw new InvalidOperationException(
                    $"Tensor '{entry.Name}' needs {entry.End - entry.Begin} bytes; its writer wrote {counted.Written}.");
        }
    }

    /// <summary>The whole file as a byte array.</summary>
    public static byte[] Serialize(
        IEnumerable<KeyValuePair<string, SafetensorsTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var buffer = new MemoryStream();
        Write(buffer, tensors, metadata);
        return buffer.ToArray();
    }

    /// <summary>Names, types, shapes and data offsets in file order.</summary>
    internal static List<SafetensorsTensorInfo> Layout(IEnumerable<KeyValuePair<string, SafetensorsTensorSpec>> tensors)
    {
        var entries = new List<(string Name, byte[] Utf8, SafetensorsTensorSpec Spec)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, spec) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name);
            ArgumentNullException.ThrowIfNull(spec.Shape, $"shape of tensor '{name}'");
            if (name == MetadataKey)
                throw new ArgumentException($"'{MetadataKey}' is reserved by the format and cannot name a tensor.", nameof(tensors));
            if (!seen.Add(name))
                throw new ArgumentException($"Tensor name '{name}' is given twice.", nameof(tensors));
            entries.Add((name, EncodeUtf8(name, "tensor name"), spec));
        }
        // The reference writer: descending dtype (widest alignment first), then name.
        entries.Sort((a, b) =>
        {
            int byType = b.Spec.DType.CompareTo(a.Spec.DType);
            return byType != 0 ? byType : a.Utf8.AsSpan().SequenceCompareTo(b.Utf8);
        });
        var layout = new List<SafetensorsTensorInfo>(entries.Count);
        long offset = 0;
        foreach (var (name, _, spec) in entries)
        {
            long bytes = SafetensorsTensor.ByteCount(spec.DType, spec.Shape);
            layout.Add(new SafetensorsTensorInfo(name, spec.DType, (long[])spec.Shape.Clone(), offset, offset + bytes));
            offset = checked(offset + bytes);
        }
        return layout;
    }

    internal static byte[] BuildHeader(IReadOnlyList<SafetensorsTensorInfo> layout, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new ArrayBufferWriter<byte>(256);
        Append(json, "{");
        bool first = true;
        if (metadata is not null)
        {
            Append(json, "\"" + MetadataKey + "\":{");
            var keys = metadata.Keys.Select(k => (Key: k, Utf8: EncodeUtf8(k, "metadata key"))).ToList();
            keys.Sort((a, b) => a.Utf8.AsSpan().SequenceCompareTo(b.Utf8));
            for (int i = 0; i < keys.Count; i++)
            {
                if (i > 0) Append(json, ",");
                string value = metadata[keys[i].Key]
                    ?? throw new ArgumentException($"Metadata value of '{keys[i].Key}' is null.", nameof(metadata));
                AppendJsonString(json, keys[i].Utf8);
                Append(json, ":");
                AppendJsonString(json, EncodeUtf8(value, $"metadata value of '{keys[i].Key}'"));
            }
            Append(json, "}");
            first = false;
        }
        foreach (var info in layout)
        {
            if (!first) Append(json, ",");
            first = false;
            AppendJsonString(json, EncodeUtf8(info.Name, "tensor name"));
            Append(json, ":{\"dtype\":\"" + info.DType.FormatName() + "\",\"shape\":[");
            Append(json, string.Join(",", info.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))));
            Append(json, "],\"data_offsets\":[" + info.Begin.ToString(CultureInfo.InvariantCulture) + "," +
                         info.End.ToString(CultureInfo.InvariantCulture) + "]}");
        }
        Append(json, "}");

        // Pad with spaces so that the data starts 8-byte aligned.
        int padded = (json.WrittenCount + 7) / 8 * 8;
        if (padded > MaxHeaderLength)
            throw new ArgumentException($"The safetensors header would be {padded} bytes; readers refuse more than {MaxHeaderLength}.");
        byte[] header = new byte[padded];
        json.WrittenSpan.CopyTo(header);
        header.AsSpan(json.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static byte[] EncodeUtf8(string text, string what)
    {
        try { return StrictUtf8.GetBytes(text); }
        catch (EncoderFallbackException)
        {
            throw new ArgumentException($"The {what} '{text}' is not valid Unicode (a lone surrogate).");
        }
    }

    private static void Append(ArrayBufferWriter<byte> json, string ascii)
    {
        Span<byte> span = json.GetSpan(ascii.Length);
        int n = Encoding.ASCII.GetBytes(ascii, span);
        json.Advance(n);
    }

    /// <summary>A JSON string escaped as serde_json escapes it: quote, backslash and control characters only.</summary>
    private static void AppendJsonString(ArrayBufferWriter<byte> json, ReadOnlySpan<byte> utf8)
    {
        const string hex = "0123456789abcdef";
        Append(json, "\"");
        foreach (byte b in utf8)
        {
            switch (b)
            {
                case (byte)'"': Append(json, "\\\""); break;
                case (byte)'\\': Append(json, "\\\\"); break;
                case 0x08: Append(json, "\\b"); break;
                case 0x09: Append(json, "\\t"); break;
                case 0x0A: Append(json, "\\n"); break;
                case 0x0C: Append(json, "\\f"); break;
                case 0x0D: Append(json, "\\r"); break;
                case < 0x20: Append(json, "\\u00" + hex[b >> 4] + hex[b & 0xF]); break;
                default:
                    json.GetSpan(1)[0] = b;
                    json.Advance(1);
                    break;
            }
        }
        Append(json, "\"");
    }

    /// <summary>Passes writes through and refuses more than the tensor's size, so a wrong writer is caught at once.</summary>
    private sealed class CountingStream(Stream inner, long limit, string name) : Stream
    {
        public long Written { get; private set; }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Written + buffer.Length > limit)
                throw new InvalidOperationException(
                    $"Tensor '{name}' needs {limit} bytes; its writer tried to write {Written + buffer.Length}.");
            inner.Write(buffer);
            Written += buffer.Length;
        }

        public override void WriteByte(byte value) => Write([value]);
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
