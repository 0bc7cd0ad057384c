using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Dicc.Engine.Data;

/// <summary>
/// A packed cache of a decoded dataset: one binary file holding a small header, the class names and
/// provenance (JSON), the labels (int32) and the images (uint8 [count, height, width], train then
/// validation then test, 4 KiB aligned), plus the fingerprint of the source it was made from. It is opened
/// by memory-mapping, so loading costs what reading the header costs, and each split's images are one
/// contiguous block that a GPU backend can upload in one copy.
/// <para>Layout (little-endian): 0 "DICCPACK"; 8 u32 version (1); 12 u32 header size (128); 16 i32 height;
/// 20 i32 width; 24 i32 classes; 28/32/36 i32 train/validation/test counts; 40 i64 metadata offset; 48 i64
/// metadata length; 56 i64 labels offset; 64 i64 pixels offset; 72 i64 file length; 80 32-byte SHA-256
/// source fingerprint (zero when none); 112 u8 origin; the rest zero.</para>
/// </summary>
public static class DatasetPack
{
    /// <summary>The file extension of packs.</summary>
    public const string Extension = ".diccpack";
    private const int Version = 1;
    private const int HeaderSize = 128;
    private const int PixelAlignment = 4096;
    private static ReadOnlySpan<byte> Magic => "DICCPACK"u8;

    private sealed class Metadata
    {
        public string[] ClassNames { get; set; } = [];
        public string Source { get; set; } = "";
        public string? SourceRoot { get; set; }
        public string[]? Sources { get; set; }
        public SkippedInput[] Skipped { get; set; } = [];
        public bool ValidationHeldOut { get; set; }
        public bool TestHeldOut { get; set; }
    }

    internal static bool HasMagic(ReadOnlySpan<byte> start) => start.StartsWith(Magic);

    /// <summary>
    /// Writes <paramref name="data"/> to <paramref name="path"/> (atomically: a temporary file then a rename).
    /// <paramref name="sourceRoot"/> is the folder that image sources are stored relative to (null: as they are).
    /// </summary>
    public static void Write(DatasetSplits data, string path, string? sourceRoot = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        var splits = new[] { data.Train, data.Validation, data.Test };
        long count = splits.Sum(s => (long)s.Count);
        bool hasSources = splits.All(s => s.Sources is not null) && count > 0;
        var metadata = new Metadata
        {
            ClassNames = data.ClassNames.ToArray(),
            Source = data.Source,
            SourceRoot = sourceRoot is null ? null : Path.GetFullPath(sourceRoot),
            Sources = hasSources
                ? splits.SelectMany(s => s.Sources!).Select(p => sourceRoot is null ? p : Path.GetRelativePath(sourceRoot, p)).ToArray()
                : null,
            Skipped = data.Skipped.ToArray(),
            ValidationHeldOut = data.ValidationHeldOut,
            TestHeldOut = data.TestHeldOut,
        };
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(metadata);
        long metadataOffset = HeaderSize;
        long labelsOffset = Align(metadataOffset + json.Length, 64);
        long pixelsOffset = Align(labelsOffset + count * sizeof(int), PixelAlignment);
        long fileLength = pixelsOffset + count * data.Height * data.Width;

        var header = new byte[HeaderSize];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), HeaderSize);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), data.Height);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(20), data.Width);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(24), data.ClassNames.Count);
        for (int s = 0; s < 3; s++) BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(28 + 4 * s), splits[s].Count);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(40), metadataOffset);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(48), json.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(56), labelsOffset);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(64), pixelsOffset);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(72), fileLength);
        if (data.Fingerprint is { } fingerprint) Convert.FromHexString(fingerprint).CopyTo(header.AsSpan(80, 32));
        header[112] = (byte)data.Origin;

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                stream.Write(header);
                stream.Write(json);
                stream.Write(new byte[labelsOffset - stream.Position]);
                foreach (var split in splits) stream.Write(MemoryMarshal.AsBytes(split.Labels));
                stream.Write(new byte[pixelsOffset - stream.Position]);
                foreach (var split in splits) stream.Write(split.Pixels.Span);
                if (stream.Position != fileLength) throw new InvalidOperationException("Pack layout arithmetic is wrong.");
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>The fingerprint recorded in a pack's header, or null when the file is not a readable pack.</summary>
    public static string? ReadFingerprint(string path)
    {
        try
        {
            Span<byte> header = stackalloc byte[HeaderSize];
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (RandomAccess.Read(handle, header, 0) != HeaderSize || !HasMagic(header)) return null;
            if (BinaryPrimitives.ReadUInt32LittleEndian(header[8..]) != Version) return null;
            if (BinaryPrimitives.ReadInt64LittleEndian(header[72..]) != RandomAccess.GetLength(handle)) return null;
            return Convert.ToHexStringLower(header.Slice(80, 32));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Opens a pack by memory-mapping it. Dispose the result to unmap.</summary>
    public static DatasetSplits Open(string path) => Open(path, sourceRootOverride: null);

    /// <summary>As <see cref="Open(string)"/>; stored relative sources are joined to <paramref name="sourceRootOverride"/> (the root as the caller named it) when given.</summary>

    internal static DatasetSplits Open(string path, string? sourceRootOverride)
    {
        byte[] header = new byte[HeaderSize];
        long actualLength;
        int[] labels;
        Metadata metadata;
        int height, width, classCount;
        int[] counts = new int[3];
        long pixelsOffset;
        string fingerprint;
        DatasetOrigin origin;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            actualLength = RandomAccess.GetLength(handle);
            if (RandomAccess.Read(handle, header, 0) != HeaderSize || !HasMagic(header))
                throw new DataFormatException(path, "not a dataset pack (no DICCPACK header)");
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
            if (version != Version) throw new DataFormatException(path, $"pack version {version} is not supported (expected {Version}); rebuild it with dicc pack");
            height = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(16));
            width = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(20));
            classCount = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(24));
            for (int s = 0; s < 3; s++) counts[s] = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(28 + 4 * s));
            long metadataOffset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(40));
            long metadataLength = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(48));
            long labelsOffset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(56));
            pixelsOffset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(64));
            long fileLength = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(72));
            fingerprint = Convert.ToHexStringLower(header.AsSpan(80, 32));
            origin = (DatasetOrigin)header[112];

            if (fileLength != actualLength)
                throw new DataFormatException(path, $"truncated or damaged pack: the header says {fileLength} bytes, the file has {actualLength}");
            if (height is < 1 or > 4096 || width is < 1 or > 4096 || classCount is < 1 or > 100_000 || counts.Any(c => c < 0) ||
                !Enum.IsDefined(origin))
                throw new DataFormatException(path, "damaged pack header");
            long count = counts.Sum(c => (long)c);
            long pixelBytes = count * height * width;
            if (pixelBytes > int.MaxValue)
                throw new DataFormatException(path, $"pack of {pixelBytes} image bytes is larger than one mapping can expose (2 GiB)");
            if (metadataOffset < HeaderSize || metadataLength is < 0 or > int.MaxValue || metadataOffset + metadataLength > labelsOffset ||
                labelsOffset + count * sizeof(int) > pixelsOffset || pixelsOffset + pixelBytes != fileLength)
                throw new DataFormatException(path, "damaged pack header (sections do not fit the file)");

            var json = new byte[metadataLength];
            RandomAccess.Read(handle, json, metadataOffset);
            try
            {
                metadata = JsonSerializer.Deserialize<Metadata>(json) ?? throw new JsonException("null");
            }
            catch (JsonException e)
            {
                throw new DataFormatException(path, $"damaged pack metadata ({e.Message})");
            }
            // JSON can say null where the types say otherwise; a damaged file must not become a NullReferenceException.
            if (metadata.ClassNames is null || metadata.ClassNames.Any(n => n is null) || metadata.Source is null ||
                metadata.Skipped is null || metadata.Skipped.Any(x => x?.Path is null || x.Reason is null) || metadata.Sources?.Any(x => x is null) == true)
                throw new DataFormatException(path, "damaged pack metadata (missing values)");
            if (metadata.ClassNames.Length != classCount || metadata.Sources is { } s0 && s0.Length != count)
                throw new DataFormatException(path, "damaged pack metadata (class or source counts disagree with the header)");

            labels = new int[count];
            RandomAccess.Read(handle, MemoryMarshal.AsBytes(labels.AsSpan()), labelsOffset);
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Packs are little-endian.");
            foreach (int label in labels)
                if ((uint)label >= (uint)classCount) throw new DataFormatException(path, $"damaged pack: label {label} outside 0..{classCount - 1}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot read: {e.Message}");
        }

        int total = labels.Length;
        var memory = new MappedFileMemory(path, pixelsOffset, total * height * width);
        string[]? sources = metadata.Sources;
        var root = sourceRootOverride ?? metadata.SourceRoot;
        if (sources is not null && root is not null)
            sources = sources.Select(p => Path.Join(root, p)).ToArray();
        var datasets = new ImageDataset[3];
        int start = 0;
        foreach (var split in SplitNames.All)
        {
            int n = counts[(int)split];
            datasets[(int)split] = new ImageDataset(memory.Memory.Slice(start * height * width, n * height * width),
                labels[start..(start + n)], metadata.ClassNames, height, width, split, sources?[start..(start + n)]);
            start += n;
        }
        return new DatasetSplits(datasets[0], datasets[1], datasets[2], origin, metadata.Source, metadata.Skipped,
            fingerprint.All(c => c == '0') ? null : fingerprint, owner: memory)
        {
            PackPath = path,
            SourceRoot = sources is null ? null : root,
            ValidationHeldOut = metadata.ValidationHeldOut,
            TestHeldOut = metadata.TestHeldOut,
        };
    }

    /// <summary>
    /// What <c>dicc pack</c> does: loads <paramref name="dataPath"/> (any format, never from a cache) and
    /// writes it as a pack to <paramref name="outPath"/>. A pack named <c>&lt;data&gt;.diccpack</c> beside the
    /// data is then used by <see cref="DatasetLoader.Load"/> automatically while the data is unchanged.
    /// </summary>
    public static DatasetSplits Create(string dataPath, string outPath, DatasetLoadOptions? options = null)
    {
        var data = DatasetLoader.Load(dataPath, (options ?? DatasetLoadOptions.Default) with { Cache = PackCacheMode.Off });
        return DataOutput.Writing(outPath, () =>
        {
            Write(data, outPath, data.SourceRoot);
            return data;
        });
    }

    private static long Align(long value, long alignment) => (value + alignment - 1) / alignment * alignment;
}
