using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>A marker in a stream: for ordering between streams, waiting from the host, and GPU-side timing.</summary>
internal sealed class CudaEvent : CudaResource
{
    private nint _handle;

    internal CudaEvent(CudaContext context, bool timing) : base(context)
    {
        HasTiming = timing;
        context.Bind();
        ThrowIfFailed(CudaDriver.cuEventCreate(out _handle, timing ? CudaDriver.EventDefault : CudaDriver.EventDisableTiming));
    }

    public bool HasTiming { get; }

    public nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return _handle;
        }
    }

    /// <summary>Completes when all work queued on <paramref name="stream"/> before it has completed.</summary>
    public void Record(CudaStream stream)
    {
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuEventRecord(Handle, stream.Handle));
    }

    public void Synchronize()
    {
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuEventSynchronize(Handle));
    }

    public bool IsComplete
    {
        get
        {
            Context.Bind();
            var r = CudaDriver.cuEventQuery(Handle);
            if (r == CuResult.NotReady) return false;
            ThrowIfFailed(r);
            return true;
        }
    }

    /// <summary>GPU time from <paramref name="start"/> to this event in milliseconds (both recorded and complete).</summary>
    public float ElapsedMillisecondsSince(CudaEvent start)
    {
        if (!HasTiming || !start.HasTiming) throw new InvalidOperationException("Both events must be created with timing enabled.");
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuEventElapsedTime(out float ms, start.Handle, Handle));
        return ms;
    }

    internal override int DisposalRank => 6;

    private protected override void Release()
    {
        if (_handle == 0) return;
        CudaDriver.cuEventDestroy_v2(_handle);
        _handle = 0;
    }
}
