using System.Runtime.InteropServices;

namespace Dicc.Engine.IO;

/// <summary>
/// One tensor as the safetensors format stores it: element type, shape (row-major, C order) and the raw
/// little-endian bytes. Independent of the engine's device tensors; a scalar has an empty shape.
/// </summary>
public sealed class SafetensorsTensor
{
    private readonly long[] _shape;

    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions, each at least 0; empty for a scalar.</param>
    /// <param name="data">Exactly <c>product(shape) * dtype size</c> bytes, row-major, little-endian.</param>
    public SafetensorsTensor(SafetensorsDType dtype, ReadOnlySpan<long> shape, ReadOnlyMemory<byte> data)
    {
        long bytes = ByteCount(dtype, shape);
        if (data.Length != bytes)
            throw new ArgumentException(
                $"A {dtype.FormatName()} tensor of shape {FormatShape(shape)} needs {bytes} bytes; {data.Length} were given.",
                nameof(data));
        DType = dtype;
        _shape = shape.ToArray();
        Data = data;
    }

    /// <summary>The element type.</summary>
    public SafetensorsDType DType { get; }

    /// <summary>Dimensions (a copy is returned, the tensor is immutable).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in _shape) n *= d;
            return n;
        }
    }

    /// <summary>The raw bytes, row-major and little-endian.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>A tensor holding a copy of <paramref name="values"/>; the element type follows from <typeparamref name="T"/>.</summary>
    public static SafetensorsTensor From<T>(ReadOnlySpan<T> values, params ReadOnlySpan<long> shape) where T : unmanaged
    {
        RequireLittleEndian();
        SafetensorsDType dtype = SafetensorsDTypeExtensions.Of<T>();
        byte[] bytes = MemoryMarshal.AsBytes(values).ToArray();
        return new SafetensorsTensor(dtype, shape, bytes);
    }

    /// <summary>A tensor holding a copy of <paramref name="values"/>; the element type follows from <typeparamref name="T"/>.</summary>
    public static SafetensorsTensor From<T>(T[] values, params ReadOnlySpan<long> shape) where T : unmanaged =>
        From((ReadOnlySpan<T>)values, shape);

    /// <summary>The elements viewed as <typeparamref name="T"/>, which must match <see cref="DType"/>.</summary>
    public ReadOnlySpan<T> AsSpan<T>() where T : unmanaged
    {
        RequireLittleEndian();
        SafetensorsDType wanted = SafetensorsDTypeExtensions.Of<T>();
        if (wanted != DType)
            throw new InvalidOperationException(
                $"This tensor holds {DType.FormatName()} elements; it cannot be read as {typeof(T).Name} ({wanted.FormatName()}).");
        return MemoryMarshal.Cast<byte, T>(Data.Span);
    }

    /// <summary>A copy of the elements as <typeparamref name="T"/>, which must match <see cref="DType"/>.</summary>
    public T[] ToArray<T>() where T : unmanaged => AsSpan<T>().ToArray();

    /// <inheritdoc/>
    public override string ToString() => $"{DType.FormatName()}{FormatShape(_shape)}";

    internal ReadOnlySpan<long> ShapeSpan => _shape;

    /// <summary>Bytes that a tensor of this type and shape occupies; throws on negative dimensions or overflow.</summary>
    internal static long ByteCount(SafetensorsDType dtype, ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0)
                throw new ArgumentOutOfRangeException(nameof(shape), $"Shape {FormatShape(shape)} has a negative dimension.");
            n = checked(n * d);
        }
        return checked(n * dtype.SizeInBytes());
    }

    internal static string FormatShape(ReadOnlySpan<long> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    // The format is little-endian; reinterpreting memory is only right on a little-endian machine.
    private static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Safetensors element access needs a little-endian machine.");
    }
}
