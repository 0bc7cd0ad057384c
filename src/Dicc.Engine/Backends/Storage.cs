namespace Dicc.Engine.Backends;

/// <summary>
/// A block of memory owned by a backend (host memory for the CPU backend, device memory for CUDA).
/// Disposed by its backend; tensors are views of it.
/// </summary>
public abstract class Storage : IDisposable
{
    protected Storage(Backend backend, long sizeInBytes)
    {
        Backend = backend;
        SizeInBytes = sizeInBytes;
    }

    public Backend Backend { get; }
    public long SizeInBytes { get; }
    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Free();
        GC.SuppressFinalize(this);
    }

    protected abstract void Free();
}
