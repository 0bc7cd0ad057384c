namespace Dicc.Engine.Backends;

/// <summary>
/// A block of memory owned by a backend (host memory for the CPU backend, device memory for CUDA).
/// Disposed by its backend; tensors are views of it.
/// </summary>
public abstract class Storage : IDisposable
{
    /// <summary>Memory of <paramref name="sizeInBytes"/> bytes owned by <paramref name="backend"/>.</summary>
    protected Storage(Backend backend, long sizeInBytes)
    {
        Backend = backend;
        SizeInBytes = sizeInBytes;
    }

    /// <summary>The backend that owns the memory.</summary>
    public Backend Backend { get; }
    /// <summary>The size in bytes.</summary>
    public long SizeInBytes { get; }
    /// <summary>True once the memory has been freed.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Frees the memory (once; later calls do nothing).</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the memory (called once by <see cref="Dispose"/>).</summary>
    protected abstract void Free();
}
