using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// A typed array in device memory: either an allocation the context owns, or a view of memory owned
/// elsewhere (an arena slice, or a buffer of the application embedding the engine). Copies are explicit.
/// The synchronous ones (<see cref="CopyToHost"/>, <see cref="CopyToDevice(ReadOnlySpan{T})"/>, ...) wait for all
/// work queued on the device before and (where the driver returns early) after the transfer, since the engine's
/// streams are non-blocking and would not otherwise be ordered with them; they are for planning, tests and logs.
/// The <c>Async</c> ones are ordered on a stream and, with pinned host memory (<see cref="CudaPinnedHostBuffer{T}"/>),
/// return at once.
/// </summary>
internal sealed unsafe class CudaDeviceVariable<T> : CudaResource where T : unmanaged
{
    private CudaDeviceVariable(CudaContext context, DevicePointer pointer, long count, bool owned) : base(context, owned)
    {
        DevicePointer = pointer;
        Count = count;
    }

    internal static CudaDeviceVariable<T> Allocate(CudaContext context, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        long bytes = checked(count * sizeof(T));
        context.Bind();
        ThrowIfFailed(CudaDriver.cuMemAlloc_v2(out ulong address, (nuint)bytes));
        return new CudaDeviceVariable<T>(context, new DevicePointer(address), count, owned: true);
    }

    /// <summary>A view of <paramref name="count"/> elements at <paramref name="pointer"/> that this object does not own.</summary>
    public static CudaDeviceVariable<T> Wrap(CudaContext context, DevicePointer pointer, long count)
    {
        if (pointer.IsNull) throw new ArgumentException("Cannot wrap a null device pointer.", nameof(pointer));
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return new CudaDeviceVariable<T>(context, pointer, count, owned: false);
    }

    public DevicePointer DevicePointer { get; }

    /// <summary>Number of elements.</summary>
    public long Count { get; }

    public long SizeInBytes => Count * sizeof(T);

    /// <summary>A view of elements [start, start + count) sharing this memory.</summary>
    public CudaDeviceVariable<T> Slice(long start, long count)
    {
        if (start < 0 || count < 0 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"Slice [{start}, {start + count}) outside {Count} elements.");
        return new CudaDeviceVariable<T>(Context, DevicePointer.Element<T>(start), count, owned: false);
    }

    // ---- host <-> device ----------------------------------------------------------------------------

    public void CopyToDevice(ReadOnlySpan<T> source)
    {
        RequireLength(source.Length);
        WaitForDevice();
        fixed (T* p = source) ThrowIfFailed(CudaDriver.cuMemcpyHtoD_v2(DevicePointer.Address, p, Bytes(source.Length)));
        WaitForDevice(); // from pageable memory the copy returns once staged, before the data lands: wait, so any stream sees it
    }

    public void CopyToHost(Span<T> destination)
    {
        RequireLength(destination.Length);
        WaitForDevice();
        fixed (T* p = destination) ThrowIfFailed(CudaDriver.cuMemcpyDtoH_v2(p, DevicePointer.Address, Bytes(destination.Length)));
    }

    /// <summary>Reads the whole array into a new host array (tests and logging; not for a step's hot path).</summary>
    public T[] ToArray()
    {
        var a = new T[checked((int)Count)];
        CopyToHost(a);
        return a;
    }

    /// <summary>
    /// Ordered on <paramref name="stream"/>. From pageable memory the driver stages the data before returning;
    /// from pinned memory it returns at once and the memory must stay untouched until the stream reaches the copy.
    /// </summary>
    public void CopyToDeviceAsync(ReadOnlySpan<T> source, CudaStream stream)
    {
        RequireLength(source.Length);
        Context.Bind();
        fixed (T* p = source) ThrowIfFailed(CudaDriver.cuMemcpyHtoDAsync_v2(DevicePointer.Address, p, Bytes(source.Length), stream.Handle));
    }

    /// <summary>
    /// Ordered on <paramref name="stream"/>. Into pageable memory this waits for the copy; into pinned memory
    /// it returns at once and the data is there once the stream (or an event recorded after it) completes.
    /// </summary>
    public void CopyToHostAsync(Span<T> destination, CudaStream stream)
    {
        RequireLength(destination.Length);
        Context.Bind();
        fixed (T* p = destination) ThrowIfFailed(CudaDriver.cuMemcpyDtoHAsync_v2(p, DevicePointer.Address, Bytes(destination.Length), stream.Handle));
    }

    public void CopyToDeviceAsync(CudaPinnedHostBuffer<T> source, CudaStream stream) => CopyToDeviceAsync(source.Span, stream);
    public void CopyToHostAsync(CudaPinnedHostBuffer<T> destination, CudaStream stream) => CopyToHostAsync(destination.Span, stream);

    // ---- device <-> device, fill --------------------------------------------------------------------

    /// <summary>Copies all of <paramref name="source"/> (same length) into this array.</summary>
    public void CopyToDevice(CudaDeviceVariable<T> source)
    {
        RequireLength(source.Count);
        WaitForDevice();
        ThrowIfFailed(CudaDriver.cuMemcpyDtoD_v2(DevicePointer.Address, source.DevicePointer.Address, Bytes(source.Count)));
        WaitForDevice(); // device-to-device copies are asynchronous to the host
    }

    public void CopyToDeviceAsync(CudaDeviceVariable<T> source, CudaStream stream)
    {
        RequireLength(source.Count);
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuMemcpyDtoDAsync_v2(DevicePointer.Address, source.DevicePointer.Address, Bytes(source.Count), stream.Handle));
    }

    /// <summary>Sets every byte to <paramref name="value"/> (zeroing: 0).</summary>
    public void Memset(byte value)
    {
        ThrowIfDisposed();
        WaitForDevice();
        ThrowIfFailed(CudaDriver.cuMemsetD8_v2(DevicePointer.Address, value, (nuint)SizeInBytes));
        WaitForDevice(); // a memset of device memory is asynchronous to the host
    }

    public void MemsetAsync(byte value, CudaStream stream)
    {
        ThrowIfDisposed();
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuMemsetD8Async(DevicePointer.Address, value, (nuint)SizeInBytes, stream.Handle));
    }

    /// <summary>Sets every 32-bit word to <paramref name="bits"/> (for float: BitConverter.SingleToUInt32Bits(value)).</summary>
    public void MemsetAsync(uint bits, CudaStream stream)
    {
        ThrowIfDisposed();
        if (SizeInBytes % 4 != 0) throw new InvalidOperationException($"A 32-bit fill needs a multiple of 4 bytes; this array has {SizeInBytes}.");
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuMemsetD32Async(DevicePointer.Address, bits, (nuint)(SizeInBytes / 4), stream.Handle));
    }

    /// <summary>Orders a synchronous (legacy-stream) operation after everything queued on any stream.</summary>
    private void WaitForDevice()
    {
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuCtxSynchronize());
    }

    private void RequireLength(long length)
    {
        ThrowIfDisposed();
        if (length != Count)
            throw new ArgumentException($"Copying {length} elements to or from a device array of {Count} {typeof(T).Name}.");
    }

    private static nuint Bytes(long count) => (nuint)(count * sizeof(T));

    internal override int DisposalRank => 9;

    private protected override void Release() => CudaDriver.cuMemFree_v2(DevicePointer.Address);

    public override string ToString() => $"{typeof(T).Name}[{Count}] at {DevicePointer}";
}
