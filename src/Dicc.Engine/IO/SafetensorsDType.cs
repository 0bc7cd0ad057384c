namespace Dicc.Engine.IO;

/// <summary>
/// Element types of the safetensors format that are whole bytes wide. The declaration order is the
/// reference implementation's (huggingface/safetensors, <c>Dtype</c>), which its writer uses to order
/// tensors (widest alignment first), so <see cref="SafetensorsWriter"/> writes the same layout.
/// </summary>
public enum SafetensorsDType
{
    /// <summary>BOOL (one byte, 0 or 1).</summary>
    Bool,
    /// <summary>U8.</summary>
    UInt8,
    /// <summary>I8.</summary>
    Int8,
    /// <summary>I16.</summary>
    Int16,
    /// <summary>U16.</summary>
    UInt16,
    /// <summary>F16.</summary>
    Float16,
    /// <summary>BF16.</summary>
    BFloat16,
    /// <summary>I32.</summary>
    Int32,
    /// <summary>U32.</summary>
    UInt32,
    /// <summary>F32.</summary>
    Float32,
    /// <summary>F64.</summary>
    Float64,
    /// <summary>I64.</summary>
    Int64,
    /// <summary>U64.</summary>
    UInt64,
}

/// <summary>Names and sizes of the safetensors element types.</summary>
public static class SafetensorsDTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool or SafetensorsDType.UInt8 or SafetensorsDType.Int8 => 1,
        SafetensorsDType.Int16 or SafetensorsDType.UInt16 or SafetensorsDType.Float16 or SafetensorsDType.BFloat16 => 2,
        SafetensorsDType.Int32 or SafetensorsDType.UInt32 or SafetensorsDType.Float32 => 4,
        SafetensorsDType.Float64 or SafetensorsDType.Int64 or SafetensorsDType.UInt64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors element type."),
    };

    /// <summary>The name the format uses in its JSON header ("F32", "I64", "BOOL", ...).</summary>
    public static string FormatName(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool => "BOOL",
        SafetensorsDType.UInt8 => "U8",
        SafetensorsDType.Int8 => "I8",
        SafetensorsDType.Int16 => "I16",
        SafetensorsDType.UInt16 => "U16",
        SafetensorsDType.Float16 => "F16",
        SafetensorsDType.BFloat16 => "BF16",
        SafetensorsDType.Int32 => "I32",
        SafetensorsDType.UInt32 => "U32",
        SafetensorsDType.Float32 => "F32",
        SafetensorsDType.Float64 => "F64",
        SafetensorsDType.Int64 => "I64",
        SafetensorsDType.UInt64 => "U64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors element type."),
    };

    /// <summary>Parses a header dtype name; false for names this reader does not support (F8, F4, C64, ...).</summary>
    public static bool TryParse(string name, out SafetensorsDType dtype)
    {
        foreach (SafetensorsDType candidate in Enum.GetValues<SafetensorsDType>())
        {
            if (candidate.FormatName() == name)
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>The element type that holds .NET values of type <typeparamref name="T"/>.</summary>
    public static SafetensorsDType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? SafetensorsDType.Float32 :
        typeof(T) == typeof(double) ? SafetensorsDType.Float64 :
        typeof(T) == typeof(int) ? SafetensorsDType.Int32 :
        typeof(T) == typeof(long) ? SafetensorsDType.Int64 :
        typeof(T) == typeof(byte) ? SafetensorsDType.UInt8 :
        typeof(T) == typeof(bool) ? SafetensorsDType.Bool :
        typeof(T) == typeof(sbyte) ? SafetensorsDType.Int8 :
        typeof(T) == typeof(short) ? SafetensorsDType.Int16 :
        typeof(T) == typeof(ushort) ? SafetensorsDType.UInt16 :
        typeof(T) == typeof(uint) ? SafetensorsDType.UInt32 :
        typeof(T) == typeof(ulong) ? SafetensorsDType.UInt64 :
        typeof(T) == typeof(Half) ? SafetensorsDType.Float16 :
        throw new NotSupportedException($"No safetensors element type holds {typeof(T).Name} values.");
}
