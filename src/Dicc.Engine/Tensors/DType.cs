namespace Dicc.Engine.Tensors;

/// <summary>Element types. Everything numeric is float32; labels are int32; images travel as uint8.</summary>
public enum DType
{
    /// <summary>32-bit float.</summary>
    Float32,
    /// <summary>32-bit signed integer.</summary>
    Int32,
    /// <summary>8-bit unsigned integer (pixels).</summary>
    UInt8,
}

/// <summary>Sizes and CLR types of the element types.</summary>
public static class DTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this DType t) => t switch
    {
        DType.Float32 => 4,
        DType.Int32 => 4,
        DType.UInt8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>The element type of the CLR type <typeparamref name="T"/> (float, int or byte).</summary>
    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.Float32 :
        typeof(T) == typeof(int) ? DType.Int32 :
        typeof(T) == typeof(byte) ? DType.UInt8 :
        throw new NotSupportedException($"No tensor element type for {typeof(T).Name}.");
}
