using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// One kernel argument by value, as cuLaunchKernel wants it: the bytes of the value, their count and their
/// kind ('f' float, 'd' double, 'i' integer or pointer, 'b' a struct). Only the types a kernel parameter can
/// have convert to it (implicitly: <see cref="DevicePointer"/>, int, uint, long, ulong, float, double; structs
/// through <see cref="Struct{T}"/>), so a launch cannot pass a bool or a reference by mistake. A launch takes
/// them as <c>params ReadOnlySpan</c>, which the compiler builds on the stack: nothing is boxed or allocated.
/// </summary>
internal readonly struct KernelArgument
{
    /// <summary>The largest argument: kernels/clustering.cu's DiccClusterWork (eight pointers).</summary>
    public const int MaxBytes = 64;

    private readonly Bytes _value;

    private KernelArgument(Bytes value, int size, byte kind)
    {
        _value = value;
        Size = size;
        Kind = kind;
    }

    public int Size { get; }

    public byte Kind { get; }

    /// <summary>A struct argument (a mirror of a struct of kernels/*.cu, sequential layout).</summary>
    public static unsafe KernelArgument Struct<T>(in T value) where T : unmanaged
    {
        if (sizeof(T) > MaxBytes) throw new ArgumentException($"A {typeof(T).Name} of {sizeof(T)} bytes exceeds the {MaxBytes}-byte argument limit.");
        Bytes bytes = default;
        Unsafe.WriteUnaligned(ref Unsafe.As<Bytes, byte>(ref bytes), value);
        return new KernelArgument(bytes, sizeof(T), (byte)'b');
    }

    private static unsafe KernelArgument Scalar<T>(T value, char kind) where T : unmanaged
    {
        Bytes bytes = default;
        Unsafe.WriteUnaligned(ref Unsafe.As<Bytes, byte>(ref bytes), value);
        return new KernelArgument(bytes, sizeof(T), (byte)kind);
    }

    public static implicit operator KernelArgument(DevicePointer value) => Scalar(value.Address, 'i');
    public static implicit operator KernelArgument(int value) => Scalar(value, 'i');
    public static implicit operator KernelArgument(uint value) => Scalar(value, 'i');
    public static implicit operator KernelArgument(long value) => Scalar(value, 'i');
    public static implicit operator KernelArgument(ulong value) => Scalar(value, 'i');
    public static implicit operator KernelArgument(float value) => Scalar(value, 'f');
    public static implicit operator KernelArgument(double value) => Scalar(value, 'd');

    [InlineArray(MaxBytes / sizeof(ulong))]
    private struct Bytes
    {
        private ulong _element; // 8-byte aligned, as every kernel parameter's alignment divides 8
    }

    /// <summary>Fills cuLaunchKernel's parameter array with pointers to each argument's bytes (valid while <paramref name="arguments"/> is pinned).</summary>
    internal static unsafe void Pack(KernelArgument* arguments, int count, void** pointers, int* sizes, byte* kinds)
    {
        for (int i = 0; i < count; i++)
        {
            pointers[i] = Unsafe.AsPointer(ref Unsafe.AsRef(in arguments[i]._value));
            sizes[i] = arguments[i].Size;
            kinds[i] = arguments[i].Kind;
        }
    }
}
