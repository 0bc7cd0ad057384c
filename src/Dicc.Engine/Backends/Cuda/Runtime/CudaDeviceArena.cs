namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// One device allocation handed out as aligned, non-owning views by bumping an offset: a training step's
/// parameters, gradients and activations are planned into a few arenas once, so nothing is allocated (and
/// cuMemAlloc, which synchronises the device, is never called) inside the step. <see cref="Reset"/> reuses
/// the whole arena; views handed out before must not be used after it.
/// </summary>
public sealed class CudaDeviceArena : IDisposable
{
    /// <summary>Default alignment: 256 bytes, what cuMemAlloc guarantees and what cuBLAS/cuDNN like best.</summary>
    public const int DefaultAlignment = 256;

    private readonly CudaDeviceVariable<byte> _memory;

    internal CudaDeviceArena(CudaContext context, long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        _memory = context.Allocate<byte>(capacityBytes);
    }

    public long CapacityBytes => _memory.SizeInBytes;
    public long UsedBytes { get; private set; }
    public DevicePointer BasePointer => _memory.DevicePointer;

    /// <summary>A view of <paramref name="count"/> elements at the next <paramref name="alignment"/>-byte boundary.</summary>
    public unsafe CudaDeviceVariable<T> Allocate<T>(long count, int alignment = DefaultAlignment) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "Alignment must be a power of two.");
        long start = Align(UsedBytes, alignment);
        long bytes = checked(count * sizeof(T));
        if (start + bytes > CapacityBytes)
            throw new InvalidOperationException(
                $"The device arena is full: {bytes} bytes requested at offset {start}, capacity {CapacityBytes} (planned too little).");
        UsedBytes = start + bytes;
        return CudaDeviceVariable<T>.Wrap(_memory.Context, _memory.DevicePointer.Offset(start), count);
    }

    /// <summary>Bytes an arena needs for the given allocation sizes (in bytes), in order, at an alignment.</summary>
    public static long RequiredBytes(IEnumerable<long> sizes, int alignment = DefaultAlignment)
    {
        long used = 0;
        foreach (long s in sizes) used = Align(used, alignment) + s;
        return Math.Max(used, 1);
    }

    public void Reset() => UsedBytes = 0;

    public void Dispose() => _memory.Dispose();

    private static long Align(long offset, int alignment) => (offset + alignment - 1) & ~(long)(alignment - 1);
}
