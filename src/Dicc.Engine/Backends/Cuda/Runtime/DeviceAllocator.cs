using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>A block of device memory handed out by an <see cref="IDeviceAllocator"/>; disposing returns it.</summary>
internal class DeviceAllocation : IDisposable
{
    private Action<DeviceAllocation>? _release;

    internal DeviceAllocation(DevicePointer pointer, long bytes, Action<DeviceAllocation> release)
    {
        Pointer = pointer;
        Bytes = bytes;
        _release = release;
    }

    public DevicePointer Pointer { get; }
    public long Bytes { get; }
    public bool IsDisposed => _release is null;

    public void Dispose()
    {
        var release = _release;
        _release = null;
        release?.Invoke(this);
    }
}

/// <summary>
/// Where a component gets device memory: the context directly (cuMemAlloc), or a backend's pool. Every block
/// comes zero-filled, the zeroing ordered before any later work on <see cref="Stream"/>.
/// </summary>
internal interface IDeviceAllocator
{
    /// <summary>The stream the allocator's zero-fills (and its users' set-up copies) are ordered on.</summary>
    CudaStream Stream { get; }

    DeviceAllocation Allocate(long bytes);
}

/// <summary>
/// Plain cuMemAlloc allocations on a context, zeroed with an asynchronous memset on <see cref="Stream"/>
/// (freeing waits for the device, as cuMemFree does).
/// </summary>
internal sealed class ContextAllocator(CudaContext context, CudaStream? stream = null) : IDeviceAllocator
{
    public CudaStream Stream { get; } = stream ?? context.Stream;

    public DeviceAllocation Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        var memory = context.Allocate<byte>(bytes);
        memory.MemsetAsync((byte)0, Stream);
        return new DeviceAllocation(memory.DevicePointer, bytes, _ => memory.Dispose());
    }
}

/// <summary>Asynchronous copies between host arrays and device addresses on a stream (set-up and state transfers).</summary>
internal static unsafe class DeviceCopy
{
    /// <summary>Queues a copy of <paramref name="source"/> to <paramref name="destination"/>; the host array may be reused on return.</summary>
    public static void ToDevice<T>(CudaStream stream, DevicePointer destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        if (source.IsEmpty) return;
        stream.Context.Bind();
        fixed (T* p = source)
            ThrowIfFailed(CudaDriver.cuMemcpyHtoDAsync_v2(destination.Address, p, (nuint)(source.Length * sizeof(T)), stream.Handle));
    }

    /// <summary>Copies <paramref name="destination"/>.Length values from <paramref name="source"/> after the stream's earlier work; waits for it.</summary>
    public static void ToHost<T>(CudaStream stream, DevicePointer source, Span<T> destination) where T : unmanaged
    {
        if (destination.IsEmpty) return;
        stream.Context.Bind();
        fixed (T* p = destination)
            ThrowIfFailed(CudaDriver.cuMemcpyDtoHAsync_v2(p, source.Address, (nuint)(destination.Length * sizeof(T)), stream.Handle));
        stream.Synchronize();
    }
}
