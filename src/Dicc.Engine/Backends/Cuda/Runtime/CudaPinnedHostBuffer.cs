using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// Page-locked host memory (cuMemHostAlloc): the device reads and writes it by DMA, so copies to and from it
/// are truly asynchronous. The memory must not be touched while a copy that uses it is in flight.
/// </summary>
internal sealed unsafe class CudaPinnedHostBuffer<T> : CudaResource where T : unmanaged
{
    private nint _pointer;

    internal CudaPinnedHostBuffer(CudaContext context, long count) : base(context)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (count > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(count), count, "A pinned buffer is indexed by a span (at most 2^31 - 1 elements).");
        Count = (int)count;
        context.Bind();
        ThrowIfFailed(CudaDriver.cuMemHostAlloc(out _pointer, (nuint)(count * sizeof(T)), CudaDriver.MemHostAllocPortable));
    }

    public int Count { get; }

    public Span<T> Span
    {
        get
        {
            ThrowIfDisposed();
            return new Span<T>((void*)_pointer, Count);
        }
    }

    internal override int DisposalRank => 8;

    private protected override void Release()
    {
        if (_pointer == 0) return;
        CudaDriver.cuMemFreeHost(_pointer);
        _pointer = 0;
    }
}
