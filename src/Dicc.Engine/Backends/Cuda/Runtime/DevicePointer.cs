namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// A device address (CUdeviceptr): 8 bytes, so it is passed to kernels as a pointer argument. Arithmetic is
/// in bytes; typed views come from <see cref="CudaDeviceVariable{T}"/>.
/// </summary>
public readonly record struct DevicePointer(ulong Address)
{
    public static readonly DevicePointer Null = default;

    public bool IsNull => Address == 0;

    /// <summary>The address <paramref name="bytes"/> further on.</summary>
    public DevicePointer Offset(long bytes) => new((ulong)((long)Address + bytes));

    /// <summary>The address of element <paramref name="index"/> of a <typeparamref name="T"/> array starting here.</summary>
    public unsafe DevicePointer Element<T>(long index) where T : unmanaged => Offset(index * sizeof(T));

    public override string ToString() => $"0x{Address:x}";
}
