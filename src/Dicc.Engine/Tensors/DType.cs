namespace Dicc.Engine.Tensors;

/// <summary>Element types. Everything numeric is float32; labels are int32; images travel as uint8.</summary>
public enum DType
{
    Float32,
    Int32,
    UInt8,
}

public static class DTypeExtensions
{
    public static int SizeInBytes(this DType t) => t switch
    {
        DType.Float32 => 4,
        DType.Int32 => 4,
        DType.UInt8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.Float32 :
        typeof(T) == typeof(int) ? DType.Int32 :
        typeof(T) == typeof(byte) ? DType.UInt8 :
        throw new NotSupportedException($"No tensor element type for {typeof(T).Name}.");
}
