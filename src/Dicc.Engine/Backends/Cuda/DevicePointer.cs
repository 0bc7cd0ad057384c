namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// A device address (a <c>CUdeviceptr</c>, or a <c>cudaMalloc</c> pointer): 8 bytes, passed to kernels as a pointer
/// argument. It converts implicitly from <see cref="ulong"/> and <see cref="nint"/>, so an application passes the
/// addresses it already holds (<c>clustering.Assign(featuresPtr, labelsPtr, pseudoPtr, n, stream)</c>) while the
/// signature still says which arguments are device memory and which one is the stream. Arithmetic is in bytes.
/// </summary>
/// <param name="Address">The address in the device's (unified) virtual address space; 0 is null.</param>
public readonly record struct DevicePointer(ulong Address)
{
    /// <summary>The null address.</summary>
    public static readonly DevicePointer Null = default;

    /// <summary>True for address 0.</summary>
    public bool IsNull => Address == 0;

    /// <summary>The address <paramref name="bytes"/> further on.</summary>
    public DevicePointer Offset(long bytes) => new((ulong)((long)Address + bytes));

    /// <summary>The address of element <paramref name="index"/> of a <typeparamref name="T"/> array starting here.</summary>
    public unsafe DevicePointer Element<T>(long index) where T : unmanaged => Offset(index * sizeof(T));

    /// <summary>A <c>CUdeviceptr</c> value (e.g. ManagedCuda's <c>CUdeviceptr.Pointer</c>, or a 64-bit address from another API).</summary>
    public static implicit operator DevicePointer(ulong address) => new(address);

    /// <summary>A pointer held as a native integer (a <c>cudaMalloc</c> result marshalled as <c>IntPtr</c>).</summary>
    public static implicit operator DevicePointer(nint address) => new(unchecked((ulong)address));

    /// <summary>The address in hexadecimal.</summary>
    public override string ToString() => $"0x{Address:x}";
}
