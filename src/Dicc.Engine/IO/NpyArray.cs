using System.Runtime.InteropServices;

namespace Dicc.Engine.IO;

/// <summary>The element types Dicc reads and writes in <c>.npy</c> files (always little endian).</summary>
public enum NpyDType
{
    /// <summary><c>|u1</c>: images, masks.</summary>
    UInt8,
    /// <summary><c>&lt;i4</c>.</summary>
    Int32,
    /// <summary><c>&lt;i8</c>: NumPy's default integer, so labels usually arrive as this.</summary>
    Int64,
    /// <summary><c>&lt;f4</c>: features, centres.</summary>
    Float32,
    /// <summary><c>&lt;f8</c>: NumPy's default float.</summary>
    Float64,
}

/// <summary>
/// An array read from (or about to be written to) a <c>.npy</c> file: a shape, an element type and the
/// raw little-endian bytes in C order. The typed accessors convert where the conversion is exact or
/// conventional (any number to float; integers to int32 with a range check) and otherwise throw an
/// <see cref="NpyFormatException"/> that names the file.
/// </summary>
public sealed class NpyArray
{
    private readonly long[] _shape;
    private readonly byte[] _data;

    internal NpyArray(string source, NpyDType dtype, long[] shape, byte[] data)
    {
        Source = source;
        DType = dtype;
        _shape = shape;
        _data = data;
        long n = 1;
        foreach (long d in shape) n = checked(n * d);
        ElementCount = n;
    }

    /// <summary>Wraps a copy of <paramref name="data"/> with the given shape (for writing).</summary>
    public static NpyArray From<T>(ReadOnlySpan<T> data, params long[] shape) where T : unmanaged
    {
        var dtype = NpyDTypes.Of<T>();
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape ({string.Join(", ", shape)}).", nameof(shape));
            n = checked(n * d);
        }
        if (n != data.Length)
            throw new ArgumentException($"Shape ({string.Join(", ", shape)}) holds {n} elements but {data.Length} were given.", nameof(shape));
        return new NpyArray("(in memory)", dtype, (long[])shape.Clone(), MemoryMarshal.AsBytes(data).ToArray());
    }

    /// <summary>The file (or other source) the array came from; used in error messages.</summary>
    public string Source { get; }

    /// <summary>The element type.</summary>
    public NpyDType DType { get; }

    /// <summary>Dimensions, outermost first; empty for a 0-d (scalar) array.</summary>
    public ReadOnlySpan<long> Shape => _shape;

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements.</summary>
    public long ElementCount { get; }

    /// <summary>The raw little-endian element bytes in C order.</summary>
    public ReadOnlySpan<byte> RawBytes => _data;

    /// <summary>The shape as NumPy prints it: <c>(3, 4)</c>, <c>(5,)</c>, <c>()</c>.</summary>
    public string ShapeText => NpyDTypes.ShapeText(_shape);

    /// <summary>Checks that the array is 1-D and returns its length.</summary>
    public int RequireVector(string what)
    {
        if (Rank != 1)
            throw new NpyFormatException(Source, $"{what} must be a 1-D array, got shape {ShapeText}.");
        return checked((int)_shape[0]);
    }

    /// <summary>Checks that the array is 2-D and returns (rows, columns).</summary>
    public (int Rows, int Columns) RequireMatrix(string what)
    {
        if (Rank != 2)
            throw new NpyFormatException(Source, $"{what} must be a 2-D array [rows, columns], got shape {ShapeText}.");
        return (checked((int)_shape[0]), checked((int)_shape[1]));
    }

    /// <summary>The elements as float32: float64 is rounded to nearest, integers are converted.</summary>
    public float[] ToSingleArray()
    {
        var result = new float[checked((int)ElementCount)];
        switch (DType)
        {
            case NpyDType.Float32: MemoryMarshal.Cast<byte, float>(_data).CopyTo(result); break;
            case NpyDType.Float64: Convert(MemoryMarshal.Cast<byte, double>(_data), result, static v => (float)v); break;
            case NpyDType.Int32: Convert(MemoryMarshal.Cast<byte, int>(_data), result, static v => v); break;
            case NpyDType.Int64: Convert(MemoryMarshal.Cast<byte, long>(_data), result, static v => v); break;
            case NpyDType.UInt8: Convert<byte, float>(_data, result, static v => v); break;
        }
        return result;
    }

    /// <summary>The elements as float64 (exact for every supported type).</summary>
    public double[] ToDoubleArray()
    {
        var result = new double[checked((int)ElementCount)];
        switch (DType)
        {
            case NpyDType.Float32: Convert(MemoryMarshal.Cast<byte, float>(_data), result, static v => v); break;
            case NpyDType.Float64: MemoryMarshal.Cast<byte, double>(_data).CopyTo(result); break;
            case NpyDType.Int32: Convert(MemoryMarshal.Cast<byte, int>(_data), result, static v => v); break;
            case NpyDType.Int64: Convert(MemoryMarshal.Cast<byte, long>(_data), result, static v => v); break;
            case NpyDType.UInt8: Convert<byte, double>(_data, result, static v => v); break;
        }
        return result;
    }

    /// <summary>
    /// The elements as int32 (labels, indices). Integer types only: int64 values outside the int32 range
    /// and floating-point arrays are errors naming the file, since silently truncating a label is worse.
    /// </summary>
    public int[] ToInt32Array()
    {
        var result = new int[checked((int)ElementCount)];
        switch (DType)
        {
            case NpyDType.Int32: MemoryMarshal.Cast<byte, int>(_data).CopyTo(result); break;
            case NpyDType.UInt8: Convert<byte, int>(_data, result, static v => v); break;
            case NpyDType.Int64:
                var longs = MemoryMarshal.Cast<byte, long>(_data);
                for (int i = 0; i < longs.Length; i++)
                {
                    long v = longs[i];
                    if (v < int.MinValue || v > int.MaxValue)
                        throw new NpyFormatException(Source, $"element {i} ({v}) does not fit in a 32-bit integer.");
                    result[i] = (int)v;
                }
                break;
            default:
                throw new NpyFormatException(Source,
                    $"expected integers, got {NpyDTypes.Name(DType)}; save them with an integer dtype (e.g. a.astype(np.int64)).");
        }
        return result;
    }

    private static void Convert<TIn, TOut>(ReadOnlySpan<TIn> source, Span<TOut> destination, Func<TIn, TOut> convert)
    {
        for (int i = 0; i < source.Length; i++) destination[i] = convert(source[i]);
    }
}

/// <summary>Mapping between <see cref="NpyDType"/>, .NET element types and NumPy's <c>descr</c> strings.</summary>
public static class NpyDTypes
{
    /// <summary>Bytes per element of a .npy type.</summary>
    public static int SizeInBytes(NpyDType t) => t switch
    {
        NpyDType.UInt8 => 1,
        NpyDType.Int32 or NpyDType.Float32 => 4,
        _ => 8,
    };

    /// <summary>The <c>descr</c> NumPy writes for the type (<c>&lt;f4</c>, <c>|u1</c>, ...).</summary>
    public static string Descr(NpyDType t) => t switch
    {
        NpyDType.UInt8 => "|u1",
        NpyDType.Int32 => "<i4",
        NpyDType.Int64 => "<i8",
        NpyDType.Float32 => "<f4",
        _ => "<f8",
    };

    /// <summary>NumPy's name for the type (<c>float32</c>, ...), for messages.</summary>
    public static string Name(NpyDType t) => t.ToString().ToLowerInvariant();

    /// <summary>The <see cref="NpyDType"/> of a .NET element type; float, double, int, long and byte are supported.</summary>
    public static NpyDType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? NpyDType.Float32
        : typeof(T) == typeof(double) ? NpyDType.Float64
        : typeof(T) == typeof(int) ? NpyDType.Int32
        : typeof(T) == typeof(long) ? NpyDType.Int64
        : typeof(T) == typeof(byte) ? NpyDType.UInt8
        : throw new NotSupportedException($".npy files of {typeof(T).Name} are not supported; use float, double, int, long or byte.");

    internal static string ShapeText(ReadOnlySpan<long> shape) => shape.Length switch
    {
        0 => "()",
        1 => $"({shape[0]},)",
        _ => "(" + string.Join(", ", shape.ToArray()) + ")",
    };
}

/// <summary>A <c>.npy</c> file that cannot be read as asked; the message starts with the file name.</summary>
public sealed class NpyFormatException(string path, string message) : InputException($"{path}: {message}")
{
    /// <summary>The file (or stream name) at fault.</summary>
    public string Path { get; } = path;
}
