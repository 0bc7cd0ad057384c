using System.Runtime.InteropServices;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>64-byte aligned native host memory (cache-line and AVX-512 aligned, never moved by the GC).</summary>
internal sealed unsafe class CpuStorage : Storage
{
    private void* _pointer;

    public CpuStorage(CpuBackend backend, long sizeInBytes) : base(backend, sizeInBytes)
    {
        if (sizeInBytes <= 0) throw new ArgumentOutOfRangeException(nameof(sizeInBytes));
        _pointer = NativeMemory.AlignedAlloc((nuint)sizeInBytes, 64);
        if (_pointer == null) throw new OutOfMemoryException($"Could not allocate {sizeInBytes} bytes of host memory.");
        NativeMemory.Clear(_pointer, (nuint)sizeInBytes);
        GC.AddMemoryPressure(sizeInBytes);
    }

    public void* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(CpuStorage));

    protected override void Free()
    {
        if (_pointer == null) return;
        NativeMemory.AlignedFree(_pointer);
        _pointer = null;
        GC.RemoveMemoryPressure(SizeInBytes);
    }

    // Host memory is safe to release from the finalizer (unlike device memory).
    ~CpuStorage() => Free();
}
