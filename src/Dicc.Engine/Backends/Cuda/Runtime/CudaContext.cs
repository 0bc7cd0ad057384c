using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// One GPU's primary context (the one the CUDA runtime, cuBLAS and cuDNN use too, so they share memory and
/// streams with us) and everything created through it. The context owns its streams, events, buffers,
/// modules, graphs and library handles and frees them when it is disposed. Calls bind the context to the
/// calling thread when needed, so it may be used from any thread (one at a time per stream).
/// </summary>
internal sealed class CudaContext : IDisposable
{
    [ThreadStatic] private static CudaContext? t_bound;

    private readonly object _gate = new();
    private readonly List<CudaResource> _resources = [];
    private readonly int _device;
    private nint _handle;
    private CudaStream? _stream;

    private CudaContext(int ordinal)
    {
        _device = CudaDevices.Handle(ordinal);
        Device = CudaDevices.Get(ordinal);
        ThrowIfFailed(CudaDriver.cuDevicePrimaryCtxRetain(out _handle, _device));
        Bind();
    }

    /// <summary>
    /// Opens device <paramref name="ordinal"/>. Throws <see cref="GpuUnavailableException"/> when the driver
    /// library is missing or no device is present, with a message that says which.
    /// </summary>
    public static CudaContext Create(int ordinal = 0)
    {
        int count = CudaDevices.Count;
        if (count == 0) throw new GpuUnavailableException("The NVIDIA driver is loaded but reports no CUDA device.");
        if (ordinal < 0 || ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal, $"CUDA device ordinals are 0..{count - 1}.");
        return new CudaContext(ordinal);
    }

    public CudaDeviceInfo Device { get; }

    /// <summary>The CUcontext handle (for interop with other CUDA code).</summary>
    public nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(CudaContext));

    public bool IsDisposed => _handle == 0;

    /// <summary>A non-blocking stream created with the context: where work goes unless a stream is named.</summary>
    public CudaStream Stream
    {
        get
        {
            if (_stream is not null) return _stream;
            lock (_gate) return _stream ??= CreateStream();
        }
    }

    /// <summary>Makes this context current on the calling thread (cheap when it already is).</summary>
    public void Bind()
    {
        if (ReferenceEquals(t_bound, this)) return;
        ThrowIfFailed(CudaDriver.cuCtxSetCurrent(Handle));
        t_bound = this;
    }

    /// <summary>Waits for all work on all streams of the device.</summary>
    public void Synchronize()
    {
        Bind();
        ThrowIfFailed(CudaDriver.cuCtxSynchronize());
    }

    /// <summary>Free and total device memory in bytes.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        Bind();
        ThrowIfFailed(CudaDriver.cuMemGetInfo_v2(out nuint free, out nuint total));
        return ((long)free, (long)total);
    }

    // ---- factories (planning time) ------------------------------------------------------------------

    /// <summary>A new stream; non-blocking streams do not synchronise with the legacy default stream.</summary>
    public CudaStream CreateStream(bool nonBlocking = true) => new(this, nonBlocking);

    /// <summary>A new event; timing events can measure elapsed time, others are cheaper for pure ordering.</summary>
    public CudaEvent CreateEvent(bool timing = true) => new(this, timing);

    /// <summary>Device memory for <paramref name="count"/> elements (uninitialised; see <see cref="CudaDeviceVariable{T}.Memset"/>).</summary>
    public CudaDeviceVariable<T> Allocate<T>(long count) where T : unmanaged => CudaDeviceVariable<T>.Allocate(this, count);

    /// <summary>Page-locked host memory, for truly asynchronous copies.</summary>
    public CudaPinnedHostBuffer<T> AllocatePinned<T>(long count) where T : unmanaged => new(this, count);

    /// <summary>Loads a module from PTX (NUL-terminated text), a cubin or a fatbin image.</summary>
    public CudaModule LoadModule(ReadOnlySpan<byte> image, string name) => new(this, image, name);

    // ---- ownership ----------------------------------------------------------------------------------

    internal void Register(CudaResource resource)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_handle == 0, this);
            _resources.Add(resource);
        }
    }

    internal void Unregister(CudaResource resource)
    {
        lock (_gate)
        {
            int i = _resources.LastIndexOf(resource);
            if (i >= 0) _resources.RemoveAt(i);
        }
    }

    internal int ResourceCount
    {
        get { lock (_gate) return _resources.Count; }
    }

    /// <summary>
    /// Waits for the device, frees every resource still owned (graphs, library handles, modules, events,
    /// streams, then memory; newest first within each kind) and releases the primary context.
    /// </summary>
    public void Dispose()
    {
        CudaResource[] left;
        lock (_gate)
        {
            if (_handle == 0) return;
            left = [.. _resources];
            _resources.Clear();
        }
        try
        {
            CudaDriver.cuCtxSetCurrent(_handle);
            t_bound = this;
            CudaDriver.cuCtxSynchronize(); // best effort: after a device fault this fails, and freeing goes on
            var ordered = left.Select((r, i) => (r, i)).OrderBy(p => p.r.DisposalRank).ThenByDescending(p => p.i);
            foreach (var (r, _) in ordered) r.ReleaseFromContext();
        }
        finally
        {
            CudaDriver.cuDevicePrimaryCtxRelease_v2(_device);
            _handle = 0;
            if (ReferenceEquals(t_bound, this)) t_bound = null;
        }
    }

    public override string ToString() => Device.ToString();
}
