using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// Page-locked slots for small host-to-device copies inside a training step (a batch's indices): the data is
/// copied into a slot and the DMA is queued on the stream, so <see cref="Backend.CopyIn{T}"/> returns at once
/// and never waits for the GPU (a copy from pageable memory may wait for the stream; CUDA's "API
/// synchronization behavior"). A slot is reused only after the copy that last used it has completed, which
/// an event recorded behind that copy tells; with <see cref="SlotCount"/> slots that wait is for a copy
/// issued that many copies ago, i.e. practically never.
/// </summary>
internal sealed unsafe class HostStaging : IDisposable
{
    public const int SlotCount = 32;
    public const int SlotBytes = 64 * 1024;

    private readonly CudaPinnedHostBuffer<byte> _buffer;
    private readonly CudaEvent[] _done = new CudaEvent[SlotCount];
    private readonly bool[] _inFlight = new bool[SlotCount];
    private int _next;

    public HostStaging(CudaContext context)
    {
        _buffer = context.AllocatePinned<byte>((long)SlotCount * SlotBytes);
        for (int i = 0; i < SlotCount; i++) _done[i] = context.CreateEvent(timing: false);
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> in stream order; false when it is too large for a slot.</summary>
    public bool TryCopy(ReadOnlySpan<byte> source, DevicePointer destination, CudaStream stream)
    {
        if (source.Length > SlotBytes) return false;
        if (source.IsEmpty) return true;
        int slot = _next;
        _next = (_next + 1) % SlotCount;
        if (_inFlight[slot]) _done[slot].Synchronize();
        var memory = _buffer.Span.Slice(slot * SlotBytes, source.Length);
        source.CopyTo(memory);
        stream.Context.Bind();
        fixed (byte* p = memory)
            ThrowIfFailed(CudaDriver.cuMemcpyHtoDAsync_v2(destination.Address, p, (nuint)source.Length, stream.Handle));
        _done[slot].Record(stream);
        _inFlight[slot] = true;
        return true;
    }

    public void Dispose()
    {
        foreach (var e in _done) e.Dispose();
        _buffer.Dispose();
    }
}
