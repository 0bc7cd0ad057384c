using System.Buffers.Binary;

namespace Dicc.Engine.Data;

/// <summary>
/// Structural completeness checks that the decoders do not make: ImageSharp decodes a truncated JPEG, GIF or
/// BMP without complaint (filling the missing part with grey), which would silently put half-images into a
/// dataset. Each check walks the file's own structure, so it is cheap and does not decode pixels.
/// </summary>
internal static class ImageIntegrity
{
    /// <summary>Null when the file is structurally complete (or of a format that needs no check); else the problem.</summary>
    public static string? Problem(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return Jpeg(data);
        if (data.StartsWith("GIF87a"u8) || data.StartsWith("GIF89a"u8)) return Gif(data);
        if (data.StartsWith("BM"u8)) return Bmp(data);
        return null;
    }

    /// <summary>True for a JPEG whose frame header declares one component (grayscale), found by walking the segments before the first scan.</summary>
    public static bool IsGrayscaleJpeg(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4 || data[0] != 0xFF || data[1] != 0xD8) return false;
        int pos = 2;
        while (pos + 4 <= data.Length)
        {
            if (data[pos] != 0xFF) return false;
            byte marker = data[pos + 1];
            if (marker == 0xFF) { pos++; continue; }
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width, then the component count.
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
                return pos + 9 < data.Length && data[pos + 9] == 1;
            if (marker == 0xDA || length < 2) return false;
            pos += 2 + length;
        }
        return false;
    }

    /// <summary>Walks the marker segments and entropy-coded scans; the end-of-image marker must be reached.</summary>
    private static string? Jpeg(ReadOnlySpan<byte> data)
    {
        const string truncated = "corrupt or truncated JPEG (no end-of-image marker)";
        int pos = 2;
        while (true)
        {
            // Tolerate extraneous bytes between segments (as libjpeg does): find the next 0xFF.
            while (pos < data.Length && data[pos] != 0xFF) pos++;
            while (pos < data.Length && data[pos] == 0xFF) pos++; // fill bytes
            if (pos >= data.Length) return truncated;
            byte marker = data[pos++];
            if (marker == 0xD9) return null;
            if (marker == 0x01 || marker is >= 0xD0 and <= 0xD7) continue; // markers without a length
            if (pos + 2 > data.Length) return truncated;
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[pos..]);
            if (length < 2) return $"corrupt JPEG (segment of length {length} at byte {pos})";
            if (pos + length > data.Length) return truncated;
            pos += length;
            if (marker != 0xDA) continue;
            // Entropy-coded data runs to the next marker that is not a stuffed 0x00 or a restart marker.
            while (true)
            {
                if (pos + 1 >= data.Length) return truncated;
                if (data[pos] != 0xFF) { pos++; continue; }
                byte next = data[pos + 1];
                if (next == 0x00 || next is >= 0xD0 and <= 0xD7) { pos += 2; continue; }
                if (next == 0xFF) { pos++; continue; }
                break;
            }
        }
    }

    /// <summary>Walks the blocks up to the end of the first image's data (the only frame the loader reads).</summary>
    private static string? Gif(ReadOnlySpan<byte> data)
    {
        const string truncated = "truncated GIF (the first image's data ends early)";
        if (data.Length < 13) return truncated;
        int pos = 13;
        if ((data[10] & 0x80) != 0) pos += 3 << ((data[10] & 7) + 1);
        while (true)
        {
            if (pos >= data.Length) return truncated;
            byte block = data[pos++];
            switch (block)
            {
                case 0x3B:
                    return "GIF holds no image";
                case 0x21:
                    pos++; // extension label
                    if (!SkipSubBlocks(data, ref pos)) return truncated;
                    break;
                case 0x2C:
                    if (pos + 9 > data.Length) return truncated;
                    byte flags = data[pos + 8];
                    pos += 9;
                    if ((flags & 0x80) != 0) pos += 3 << ((flags & 7) + 1);
                    pos++; // LZW minimum code size
                    return SkipSubBlocks(data, ref pos) ? null : truncated;
                default:
                    return $"corrupt GIF (unknown block 0x{block:X2} at byte {pos - 1})";
            }
        }
    }

    private static bool SkipSubBlocks(ReadOnlySpan<byte> data, ref int pos)
    {
        while (true)
        {
            if (pos >= data.Length) return false;
            int size = data[pos++];
            if (size == 0) return true;
            pos += size;
        }
    }

    /// <summary>An uncompressed bitmap must hold all its rows; any bitmap must be as long as its header says.</summary>
    private static string? Bmp(ReadOnlySpan<byte> data)
    {
        if (data.Length < 30) return "truncated BMP (header incomplete)";
        long declared = BinaryPrimitives.ReadUInt32LittleEndian(data[2..]);
        long pixelOffset = BinaryPrimitives.ReadUInt32LittleEndian(data[10..]);
        long needed = declared;
        int headerSize = BinaryPrimitives.ReadInt32LittleEndian(data[14..]);
        if (headerSize >= 40 && data.Length >= 34)
        {
            long width = BinaryPrimitives.ReadInt32LittleEndian(data[18..]);
            long height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(data[22..]));
            int bitsPerPixel = BinaryPrimitives.ReadUInt16LittleEndian(data[28..]);
            int compression = BinaryPrimitives.ReadInt32LittleEndian(data[30..]);
            if (compression is 0 or 3 or 6 && width > 0 && bitsPerPixel > 0)
                needed = Math.Max(needed, pixelOffset + (width * bitsPerPixel + 31) / 32 * 4 * height);
        }
        return needed > data.Length ? $"truncated BMP (needs {needed} bytes, the file has {data.Length})" : null;
    }
}
