using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Dicc.Engine.IO;

/// <summary>
/// Reads and writes NumPy's <c>.npy</c> format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// the array interchange of the <c>dicc</c> command (features, labels, centres, predictions).
/// Reads versions 1.0, 2.0 and 3.0; writes 1.0 when the header fits in 65535 bytes, else 2.0, with the
/// header padded so the data starts at a multiple of 64 bytes, exactly as NumPy does.
/// Supported: little-endian float32, float64, int32, int64 and uint8 in C order. Fortran order, big-endian
/// data and other dtypes are rejected with a message that says how to convert the array in NumPy.
/// </summary>
public static class Npy
{
    // 0x93 'N' 'U' 'M' 'P' 'Y' (a u8 string literal would encode U+0093 as two bytes).
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    private const int HeaderAlignment = 64;
    private const int GrowthAxisDigits = 21;

    /// <summary>Reads a whole <c>.npy</c> file.</summary>
    public static NpyArray Read(string path)
    {
        FileStream stream;
        try
        {
            stream = File.OpenRead(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new NpyFormatException(path, "no such file.");
        }
        using (stream) return Read(stream, path);
    }

    /// <summary>Reads one array from <paramref name="stream"/>; <paramref name="source"/> names it in errors.</summary>
    public static NpyArray Read(Stream stream, string source)
    {
        Span<byte> preamble = stackalloc byte[8];
        int got = ReadFully(stream, preamble);
        if (got < 6 || !preamble[..6].SequenceEqual(Magic))
            throw new NpyFormatException(source, "not a .npy file (it does not start with the \\x93NUMPY magic).");
        if (got < 8) throw new NpyFormatException(source, "truncated: the file ends inside the header.");

        int major = preamble[6], minor = preamble[7];
        int headerLength;
        Encoding headerEncoding;
        switch (major)
        {
            case 1:
                headerLength = ReadLength(stream, source, 2);
                headerEncoding = Encoding.Latin1;
                break;
            case 2:
            case 3:
                headerLength = ReadLength(stream, source, 4);
                headerEncoding = major == 3 ? Encoding.UTF8 : Encoding.Latin1;
                break;
            default:
                throw new NpyFormatException(source, $"unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are supported).");
        }

        var headerBytes = new byte[headerLength];
        if (ReadFully(stream, headerBytes) < headerLength)
            throw new NpyFormatException(source, "truncated: the file ends inside the header.");
        var header = NpyHeader.Parse(headerEncoding.GetString(headerBytes), source);

        long elementCount = 1;
        foreach (long d in header.Shape) elementCount = checked(elementCount * d);
        long byteCount = elementCount * NpyDTypes.SizeInBytes(header.DType);
        if (byteCount > Array.MaxLength)
            throw new NpyFormatException(source, $"shape {NpyDTypes.ShapeText(header.Shape)} ({byteCount} bytes) is too large to load into memory.");

        var data = new byte[byteCount];
        int read = ReadFully(stream, data);
        if (read < byteCount)
            throw new NpyFormatException(source,
                $"truncated: the header promises {NpyDTypes.Name(header.DType)} {NpyDTypes.ShapeText(header.Shape)} " +
                $"({byteCount} bytes of data) but only {read} bytes follow.");
        if (stream.ReadByte() >= 0)
            throw new NpyFormatException(source,
                $"unexpected bytes after the data of {NpyDTypes.Name(header.DType)} {NpyDTypes.ShapeText(header.Shape)}; the file is corrupt or not one array.");
        return new NpyArray(source, header.DType, header.Shape, data);
    }

    /// <summary>Writes <paramref name="data"/> (C order) with the given shape; the element type picks the dtype.</summary>
    public static void Write<T>(string path, ReadOnlySpan<T> data, params long[] shape) where T : unmanaged
    {
        using var stream = File.Create(path);
        Write(stream, data, shape);
    }

    /// <summary>Writes an array read earlier (or built with <see cref="NpyArray.From{T}"/>).</summary>
    public static void Write(string path, NpyArray array)
    {
        using var stream = File.Create(path);
        WriteRaw(stream, array.DType, array.Shape, array.RawBytes);
    }

    /// <summary>Writes an array of <typeparamref name="T"/> with the given shape as .npy (C order, little-endian).</summary>
    public static void Write<T>(Stream stream, ReadOnlySpan<T> data, params long[] shape) where T : unmanaged
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape {NpyDTypes.ShapeText(shape)}.", nameof(shape));
            n = checked(n * d);
        }
        if (n != data.Length)
            throw new ArgumentException($"Shape {NpyDTypes.ShapeText(shape)} holds {n} elements but {data.Length} were given.", nameof(shape));
        WriteRaw(stream, NpyDTypes.Of<T>(), shape, MemoryMarshal.AsBytes(data));
    }

    private static void WriteRaw(Stream stream, NpyDType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<byte> data)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException(".npy writing assumes a little-endian machine.");
        // The header NumPy (>= 1.23) writes, byte for byte: the dict with a trailing ", ", spare spaces so
        // the first dimension can grow in place (21 digits in all), then space padding and '\n' so that the
        // data starts at a multiple of 64 (a full 64 spaces when it already would).
        string dict = $"{{'descr': '{NpyDTypes.Descr(dtype)}', 'fortran_order': False, 'shape': {NpyDTypes.ShapeText(shape)}, }}";
        if (shape.Length > 0)
            dict += new string(' ', Math.Max(0, GrowthAxisDigits - shape[0].ToString(CultureInfo.InvariantCulture).Length));
        bool version1 = true;
        int preamble = 10;
        int total = Padded(preamble, dict.Length + 1);
        if (total - preamble > ushort.MaxValue)
        {
            version1 = false;
            preamble = 12;
            total = Padded(preamble, dict.Length + 1);
        }
        int headerLength = total - preamble;
        var header = new byte[total];
        Magic.CopyTo(header);
        header[6] = (byte)(version1 ? 1 : 2);
        header[7] = 0;
        if (version1)
        {
            header[8] = (byte)headerLength;
            header[9] = (byte)(headerLength >> 8);
        }
        else
        {
            for (int i = 0; i < 4; i++) header[8 + i] = (byte)(headerLength >> (8 * i));
        }
        int written = Encoding.ASCII.GetBytes(dict, header.AsSpan(preamble));
        header.AsSpan(preamble + written, total - preamble - written - 1).Fill((byte)' ');
        header[^1] = (byte)'\n';
        stream.Write(header);
        stream.Write(data);
    }

    private static int Padded(int preamble, int headerLength) =>
        preamble + headerLength + HeaderAlignment - (preamble + headerLength) % HeaderAlignment;

    private static int ReadLength(Stream stream, string source, int bytes)
    {
        Span<byte> b = stackalloc byte[4];
        if (ReadFully(stream, b[..bytes]) < bytes)
            throw new NpyFormatException(source, "truncated: the file ends inside the header.");
        long length = 0;
        for (int i = 0; i < bytes; i++) length |= (long)b[i] << (8 * i);
        if (length > int.MaxValue) throw new NpyFormatException(source, $"implausible header length {length}.");
        return (int)length;
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}

/// <summary>The parsed header dict: <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (3, 4), }</c>.</summary>
internal sealed record NpyHeader(NpyDType DType, long[] Shape)
{
    private const string Supported = "float32 (<f4), float64 (<f8), int32 (<i4), int64 (<i8), uint8 (|u1)";

    /// <summary>
    /// Parses the Python dict literal NumPy writes (a small subset of Python: quoted strings, True/False,
    /// tuples of integers). Keys may come in any order; a list-valued descr (structured dtype) is rejected.
    /// </summary>
    public static NpyHeader Parse(string text, string source)
    {
        var reader = new LiteralReader(text, source);
        string? descr = null;
        bool? fortran = null;
        long[]? shape = null;

        reader.Expect('{');
        while (true)
        {
            reader.SkipSpace();
            if (reader.TryTake('}')) break;
            string key = reader.ReadString();
            reader.SkipSpace();
            reader.Expect(':');
            reader.SkipSpace();
            switch (key)
            {
                case "descr":
                    if (reader.Peek() == '[')
                        throw new NpyFormatException(source, $"structured arrays are not supported (supported dtypes: {Supported}).");
                    descr = reader.ReadString();
                    break;
                case "fortran_order": fortran = reader.ReadBool(); break;
                case "shape": shape = reader.ReadIntTuple(); break;
                default: reader.SkipValue(); break;
            }
            reader.SkipSpace();
            if (reader.TryTake(',')) continue;
            reader.Expect('}');
            break;
        }

        if (descr is null) throw new NpyFormatException(source, "the header has no 'descr' entry.");
        if (fortran is null) throw new NpyFormatException(source, "the header has no 'fortran_order' entry.");
        if (shape is null) throw new NpyFormatException(source, "the header has no 'shape' entry.");
        var dtype = ParseDescr(descr, source);
        // A 0-d or 1-d array is laid out the same in either order.
        if (fortran.Value && shape.Length > 1)
            throw new NpyFormatException(source,
                $"the {NpyDTypes.ShapeText(shape)} array is stored in Fortran (column-major) order; save it in C order with np.save(path, np.ascontiguousarray(a)).");
        return new NpyHeader(dtype, shape);
    }

    private static NpyDType ParseDescr(string descr, string source)
    {
        if (descr.Length < 2) throw new NpyFormatException(source, $"unsupported dtype '{descr}' (supported: {Supported}).");
        char order = descr[0];
        string code = order is '<' or '>' or '|' or '=' ? descr[1..] : descr;
        NpyDType? dtype = code switch
        {
            "f4" => NpyDType.Float32,
            "f8" => NpyDType.Float64,
            "i4" => NpyDType.Int32,
            "i8" => NpyDType.Int64,
            "u1" => NpyDType.UInt8,
            _ => null,
        };
        if (dtype is null) throw new NpyFormatException(source, $"unsupported dtype '{descr}' (supported: {Supported}).");
        if (order == '>' && dtype != NpyDType.UInt8)
            throw new NpyFormatException(source,
                $"big-endian data ('{descr}') is not supported; convert it with a.astype('<{code}') before saving.");
        return dtype.Value;
    }

    /// <summary>A cursor over the header text with errors that name the file.</summary>
    private ref struct LiteralReader(string text, string source)
    {
        private int _pos;

        public readonly char Peek() => _pos < text.Length ? text[_pos] : '\0';

        public void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }

        public bool TryTake(char c)
        {
            if (Peek() != c) return false;
            _pos++;
            return true;
        }

        public void Expect(char c)
        {
            SkipSpace();
            if (!TryTake(c)) throw Error($"expected '{c}'");
        }

        public string ReadString()
        {
            char quote = Peek();
            if (quote is not ('\'' or '"')) throw Error("expected a quoted string");
            int end = text.IndexOf(quote, _pos + 1);
            if (end < 0) throw Error("unterminated string");
            string s = text[(_pos + 1)..end];
            _pos = end + 1;
            return s;
        }

        public bool ReadBool()
        {
            if (Match("True")) return true;
            if (Match("False")) return false;
            throw Error("expected True or False");
        }

        public long[] ReadIntTuple()
        {
            if (!TryTake('(')) throw Error("expected a tuple of integers");
            var dims = new List<long>();
            while (true)
            {
                SkipSpace();
                if (TryTake(')')) break;
                int start = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
                if (_pos == start ||
                    !long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out long d))
                    throw Error("expected a non-negative integer dimension");
                if (Peek() == 'L') _pos++; // Python 2 long literal, as old NumPy wrote.
                dims.Add(d);
                SkipSpace();
                if (TryTake(',')) continue;
                if (!TryTake(')')) throw Error("expected ',' or ')' in the shape");
                break;
            }
            return dims.ToArray();
        }

        public void SkipValue()
        {
            char c = Peek();
            if (c is '\'' or '"') { ReadString(); return; }
            int depth = 0;
            while (_pos < text.Length)
            {
                c = text[_pos];
                if (c is '(' or '[' or '{') depth++;
                else if (c is ')' or ']' or '}')
                {
                    if (depth == 0) return;
                    depth--;
                }
                else if (c == ',' && depth == 0) return;
                _pos++;
            }
        }

        private bool Match(string word)
        {
            if (string.CompareOrdinal(text, _pos, word, 0, word.Length) != 0) return false;
            _pos += word.Length;
            return true;
        }

        private readonly NpyFormatException Error(string what) =>
            new(source, $"malformed header ({what} at character {_pos}): {text.TrimEnd()}");
    }
}
