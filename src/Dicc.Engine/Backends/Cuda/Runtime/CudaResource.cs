namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// Something a <see cref="CudaContext"/> created and owns (a stream, event, buffer, module, graph, library
/// handle). Disposing it frees it at once; disposing the context frees whatever is left, newest first.
/// There is no finalizer: native resources are never released from the finalizer thread, where the context
/// may already be gone and CUDA calls are unsafe.
/// </summary>
internal abstract class CudaResource : IDisposable
{
    private protected CudaResource(CudaContext context, bool owned = true)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
        if (owned) context.Register(this);
        IsOwned = owned;
    }

    public CudaContext Context { get; }
    public bool IsDisposed { get; private set; }

    /// <summary>False for views of memory owned elsewhere (arena slices, a caller's buffers): disposing frees nothing.</summary>
    internal bool IsOwned { get; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        if (!IsOwned) return;
        Context.Unregister(this);
        Context.Bind();
        Release();
    }

    /// <summary>Called by the context while it is being disposed (it is current on this thread).</summary>
    internal void ReleaseFromContext()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
    }

    /// <summary>
    /// When the context frees what is left: lower first (graphs, then library handles, modules, events,
    /// streams, memory), newest first within a rank, so nothing is freed while something still uses it.
    /// </summary>
    internal virtual int DisposalRank => 5;

    /// <summary>Frees the native resource; best effort, never throws (disposal must not fail after a device error).</summary>
    private protected abstract void Release();

    private protected void ThrowIfDisposed()
    {
        if (IsDisposed) throw new ObjectDisposedException(GetType().Name);
    }
}
