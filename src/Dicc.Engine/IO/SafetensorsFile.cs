namespace Dicc.Engine.IO;

/// <summary>Safetensors files on disk: atomic saves (see <see cref="AtomicFile"/>) and validated loads.</summary>
public static class SafetensorsFile
{
    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/>; the previous file survives any failure.</summary>
    public static void Save(
        string path,
        IEnumerable<KeyValuePair<string, SafetensorsTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        AtomicFile.Write(path, stream => SafetensorsWriter.Write(stream, list, metadata));
    }

    /// <summary>Streaming save: see <see cref="SafetensorsWriter.Write(Stream, IEnumerable{KeyValuePair{string, SafetensorsTensorSpec}}, IReadOnlyDictionary{string, string}?, Action{string, Stream})"/>.</summary>
    public static void Save(
        string path,
        IEnumerable<KeyValuePair<string, SafetensorsTensorSpec>> tensors,
        IReadOnlyDictionary<string, string>? metadata,
        Action<string, Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        AtomicFile.Write(path, stream => SafetensorsWriter.Write(stream, list, metadata, writeData));
    }

    /// <summary>Reads and validates the whole file; throws <see cref="SafetensorsFormatException"/> naming it on any violation.</summary>
    public static SafetensorsContent Load(string path)
    {
        using var stream = OpenRead(path);
        return SafetensorsReader.Read(stream, path);
    }

    /// <summary>Reads and validates only the header (names, types, shapes, offsets, metadata).</summary>
    public static SafetensorsHeader ReadHeader(string path)
    {
        using var stream = OpenRead(path);
        return SafetensorsReader.ReadHeader(stream, path);
    }

    private static FileStream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
    }
}
