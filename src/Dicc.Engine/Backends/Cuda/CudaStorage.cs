using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>Device memory of the CUDA backend: a block of its pool, returned to the pool when disposed.</summary>
internal sealed class CudaStorage : Storage
{
    private readonly DeviceAllocation _allocation;

    public CudaStorage(CudaBackend backend, DeviceAllocation allocation) : base(backend, allocation.Bytes) => _allocation = allocation;

    public DevicePointer Pointer => !IsDisposed ? _allocation.Pointer : throw new ObjectDisposedException(nameof(CudaStorage));

    // Returning a block to the pool is bookkeeping only: later users of the memory are ordered after earlier ones
    // on the backend's single stream, so no device work is needed (and no finalizer: the pool belongs to the backend).
    protected override void Free() => _allocation.Dispose();
}
