using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>An ordered queue of device work. Work on one stream runs in order; streams run concurrently.</summary>
internal sealed class CudaStream : CudaResource
{
    private nint _handle;

    internal CudaStream(CudaContext context, bool nonBlocking) : base(context)
    {
        context.Bind();
        ThrowIfFailed(CudaDriver.cuStreamCreate(out _handle, nonBlocking ? CudaDriver.StreamNonBlocking : 0));
    }

    private CudaStream(CudaContext context, nint handle) : base(context, owned: false) => _handle = handle;

    /// <summary>
    /// A view of a stream created elsewhere, e.g. an application's <c>cudaStream_t</c> on the same device (the
    /// CUDA runtime uses the primary context too); 0 is the legacy default stream. Disposing the view leaves
    /// the stream alone.
    /// </summary>
    public static CudaStream Wrap(CudaContext context, nint handle)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new CudaStream(context, handle);
    }

    /// <summary>The CUstream handle (for cuBLAS, cuDNN, or an embedding application).</summary>
    public nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return _handle;
        }
    }

    /// <summary>Blocks until everything queued so far has finished.</summary>
    public void Synchronize()
    {
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuStreamSynchronize(Handle));
    }

    /// <summary>True when all queued work has finished (does not block).</summary>
    public bool IsIdle
    {
        get
        {
            Context.Bind();
            var r = CudaDriver.cuStreamQuery(Handle);
            if (r == CuResult.NotReady) return false;
            ThrowIfFailed(r);
            return true;
        }
    }

    /// <summary>Makes later work on this stream wait until <paramref name="evt"/> has completed (no host wait).</summary>
    public void Wait(CudaEvent evt)
    {
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuStreamWaitEvent(Handle, evt.Handle, 0));
    }

    internal override int DisposalRank => 7;

    private protected override void Release()
    {
        if (_handle == 0 || !IsOwned) return;
        CudaDriver.cuStreamDestroy_v2(_handle);
        _handle = 0;
    }
}
