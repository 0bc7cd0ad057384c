using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Tensors;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>How the CUDA backend chooses cuDNN's convolution algorithms (once per geometry).</summary>
public enum ConvolutionSearch
{
    /// <summary>cuDNN's heuristic ranking (cudnnGet*_v7): no timing, so every run of a geometry gets the same algorithms and results.</summary>
    Heuristic,

    /// <summary>cuDNN times the algorithms (cudnnFind*Ex, like PyTorch's cudnn.benchmark): faster, but the choice may vary between runs.</summary>
    Measure,
}

/// <summary>Settings of a <see cref="CudaBackend"/>.</summary>
public sealed record CudaBackendOptions
{
    /// <summary>How convolution algorithms are chosen (default: cuDNN's heuristic, the same choice every run).</summary>
    public ConvolutionSearch ConvolutionSearch { get; init; } = ConvolutionSearch.Heuristic;

    /// <summary>Most workspace one convolution may use; null: 1 GiB or an eighth of the device's memory, whichever is less.</summary>
    public long? ConvolutionWorkspaceLimitBytes { get; init; }

    /// <summary>Size of the pool's cuMemAlloc chunks.</summary>
    public long PoolChunkBytes { get; init; } = 256L << 20;

    /// <summary>Where kernel modules come from (default: prebuilt fatbins, the kernel cache, NVRTC).</summary>
    internal KernelModuleLoader? KernelLoader { get; init; }

    /// <summary>
    /// Our own kernels only, no cuBLAS or cuDNN: convolution and linear ops then throw. For the emulated device
    /// (tests/EmulatedDevice), which runs our kernels on the CPU but has no vendor libraries.
    /// </summary>
    internal bool WithoutVendorLibraries { get; init; }
}

/// <summary>
/// The backend contract on one NVIDIA GPU: cuDNN convolutions (full float32 math, no TF32), cuBLAS linear layers
/// (pedantic float32), and the engine's own kernels (kernels/*.cu) for batch normalisation, pooling, bias terms,
/// softmax and cross-entropy, dropout, SGD, batch cropping and DICC clustering, each with the CPU backend's
/// semantics. All work goes to one stream in issue order, so ops return at once; <see cref="Backend.CopyOut{T}"/>
/// and <see cref="Synchronize"/> wait, and are where a failed device-side check (a label out of range) is thrown
/// as the CPU backend would throw it. Memory comes from a pool of a few large allocations (<see cref="DeviceAllocationCount"/>
/// stops growing once the first training step has planned everything).
/// </summary>
public sealed unsafe partial class CudaBackend : Backend
{
    /// <summary>
    /// Volta (7.0) or newer: the oldest generation that both CUDA 12 and cuDNN 9 fully support and that NVRTC 12
    /// compiles for; the kernels use warp intrinsics with explicit masks and 64-bit shared-memory atomics.
    /// </summary>
    public const int MinimumComputeCapability = 70;

    private readonly CudaContext _context;
    private readonly CudaStream _stream;
    private readonly DeviceMemoryPool _pool;
    private readonly HostStaging _staging;
    private readonly DeviceStatusMonitor _status;
    private readonly CublasContext? _blasContext;
    private readonly CudnnContext? _dnnContext;
    private readonly DeviceKernels _kernels;
    private readonly DeviceAllocation? _blasWorkspace;
    private readonly DeviceAllocation _crossEntropyStatus;
    private readonly Dictionary<ConvolutionGeometry, CudnnConvolutionPlan> _convolutionPlans = [];
    private readonly GrowOnlyBuffer _workspace, _normalizationScratch, _crossEntropyScratch, _biasScratch;
    private readonly long _workspaceLimit;
    private bool _disposed;

    private CudaBackend(CudaContext context, int ordinal, CudaBackendOptions options)
    {
        _context = context;
        Ordinal = ordinal;
        Options = options;
        _stream = context.CreateStream();
        _pool = new DeviceMemoryPool(context, _stream, options.PoolChunkBytes);
        _staging = new HostStaging(context);
        _status = new DeviceStatusMonitor(context, _pool);
        _crossEntropyStatus = _pool.Allocate(sizeof(int));

        if (!options.WithoutVendorLibraries)
        {
            _blasContext = new CublasContext(context, _stream) { MathMode = CublasMathMode.Pedantic };
            // cuBLAS allocates a workspace on first use unless given one; cublasSetStream (in the constructor) resets it,
            // so it is set afterwards. 32 MiB is cuBLAS's recommendation for Hopper (4 MiB before).
            _blasWorkspace = _pool.Allocate(context.Device.ComputeCapabilityMajor >= 9 ? 32L << 20 : 4L << 20);
            ThrowIfFailed(Cublas.cublasSetWorkspace_v2(_blasContext.Handle, _blasWorkspace.Pointer.Address, (nuint)_blasWorkspace.Bytes));
            _dnnContext = new CudnnContext(context, _stream);
        }

        _kernels = DeviceKernels.Load(context, options.KernelLoader);

        _workspaceLimit = options.ConvolutionWorkspaceLimitBytes ?? Math.Min(1L << 30, context.Device.TotalMemoryBytes / 8);
        _workspace = new GrowOnlyBuffer(this);
        _normalizationScratch = new GrowOnlyBuffer(this);
        _crossEntropyScratch = new GrowOnlyBuffer(this);
        _biasScratch = new GrowOnlyBuffer(this);
        _stream.Synchronize();
    }

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/>, loads the libraries and kernels, and plans nothing yet. Throws a
    /// <see cref="GpuUnavailableException"/> (an input error) saying why when this machine cannot run the backend.
    /// </summary>
    public static CudaBackend Create(int ordinal = 0, CudaBackendOptions? options = null)
    {
        options ??= new CudaBackendOptions();
        // Messages start with "device cuda[:N]" (the parameter and its value) so that a front end can name its own option.
        string device = ordinal == 0 ? "device cuda" : $"device cuda:{ordinal}";
        GpuUnavailableException Unusable(string problem, Exception? inner = null) => new($"{device}: {problem}", inner) { Parameter = "device" };
        int count;
        CudaContext context;
        try
        {
            count = CudaDevices.Count;
        }
        catch (GpuUnavailableException e)
        {
            throw Unusable($"CUDA cannot be used on this machine. {e.Message} Use the CPU instead.", e);
        }
        if (count == 0) throw Unusable("the NVIDIA driver reports no CUDA device. Use the CPU instead.");
        if (ordinal < 0 || ordinal >= count)
            throw Unusable($"this machine has {count} CUDA device{(count == 1 ? "" : "s")} (cuda:0{(count > 1 ? $" to cuda:{count - 1}" : "")}).");
        string? problem = SupportProblem(CudaDevices.Get(ordinal));
        if (problem is not null) throw Unusable(problem);
        try
        {
            context = CudaContext.Create(ordinal);
        }
        catch (GpuUnavailableException e)
        {
            throw Unusable($"CUDA cannot be used on this machine. {e.Message} Use the CPU instead.", e);
        }

        try
        {
            if (!options.WithoutVendorLibraries)
                RequireLibrary(CudaLibrary.Cublas, Unusable, "cuBLAS (libcublas.so.12 or .13, e.g. from the CUDA toolkit or the nvidia-cublas wheel)");
            if (!options.WithoutVendorLibraries)
                RequireLibrary(CudaLibrary.Cudnn, Unusable, "cuDNN 9 (libcudnn.so.9, e.g. from the nvidia-cudnn wheel PyTorch installs)");
            return new CudaBackend(context, ordinal, options);
        }
        catch (Exception e)
        {
            var info = context.Device;
            long free = -1, total = info.TotalMemoryBytes;
            if (IsOutOfDeviceMemory(e))
            {
                try { (free, total) = context.MemoryInfo(); }
                catch (CudaException) { } // report what is known
            }
            context.Dispose();
            Exception? mapped = e switch
            {
                GpuUnavailableException => Unusable($"{e.Message} Use the CPU instead.", e),
                NotSupportedException when e.Message.Contains("NVRTC", StringComparison.Ordinal) => Unusable(
                    $"the kernels cannot be compiled for {info}: {e.Message} " +
                    "Use an NVRTC that supports this GPU (DICC_NVRTC_PATH), prebuilt kernels (build-kernels.ps1), or the CPU.", e),
                _ when IsOutOfDeviceMemory(e) => new GpuOutOfMemoryException(info.ToString(), 0, free, total, 0, e),
                CudaException c when c.Api.StartsWith("cudnn", StringComparison.Ordinal) || c.Api.StartsWith("cublas", StringComparison.Ordinal) =>
                    Unusable($"{(c.Api.StartsWith("cudnn", StringComparison.Ordinal) ? "cuDNN" : "cuBLAS")} could not be " +
                        $"initialised on {info} ({c.Message}). Check that its version matches the driver (dicc info), or use the CPU.", e),
                _ => null, // our own input errors as they are, and anything else is a bug to report as one
            };
            if (mapped is null) throw;
            throw mapped;
        }
    }

    /// <summary>A driver call (not NVRTC's, cuBLAS's or cuDNN's, whose status numbers mean other things) ran out of device memory.</summary>
    internal static bool IsOutOfDeviceMemory(Exception e) =>
        e is CudaException { StatusCode: (int)CuResult.OutOfMemory } c
        && !c.Api.StartsWith("nvrtc", StringComparison.Ordinal) && !c.Api.StartsWith("cudnn", StringComparison.Ordinal)
        && !c.Api.StartsWith("cublas", StringComparison.Ordinal);

    /// <summary>Why a device cannot run the backend, or null when it can.</summary>
    internal static string? SupportProblem(CudaDeviceInfo device) =>
        device.ComputeCapability < MinimumComputeCapability
            ? $"{device.Name} has compute capability {device.ComputeCapabilityMajor}.{device.ComputeCapabilityMinor}; the CUDA backend needs " +
              $"{MinimumComputeCapability / 10}.{MinimumComputeCapability % 10} or newer (Volta or later). Use the CPU instead."
            : null;

    private static void RequireLibrary(CudaLibrary library, Func<string, Exception?, GpuUnavailableException> unusable, string what)
    {
        var r = CudaLibraries.TryLoad(library);
        if (!r.IsLoaded) throw unusable($"needs {what}, which was not found: {r.Error} Use the CPU instead.", null);
    }

    /// <summary>Whether <see cref="Create"/> would find a driver, a supported device 0 and every library (never throws).</summary>
    public static bool IsAvailable()
    {
        try
        {
            if (!CudaLibraries.TryLoad(CudaLibrary.Driver).IsLoaded || CudaDevices.Count == 0) return false;
            if (SupportProblem(CudaDevices.Get(0)) is not null) return false;
            return CudaLibraries.TryLoad(CudaLibrary.Cublas).IsLoaded && CudaLibraries.TryLoad(CudaLibrary.Cudnn).IsLoaded
                && CudaLibraries.TryLoad(CudaLibrary.Nvrtc).IsLoaded;
        }
        catch (Exception e) when (e is CudaException or DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The GPU's ordinal (cuda:N).</summary>
    public int Ordinal { get; }
    /// <summary>The options the backend was created with.</summary>
    public CudaBackendOptions Options { get; }
    internal CudaContext Context => _context;

    /// <summary>The one stream every op of this backend is queued on (for events and timing).</summary>
    internal CudaStream Stream => _stream;

    /// <inheritdoc/>
    public override string Name => $"cuda:{Ordinal}";

    /// <inheritdoc/>
    public override string Description =>
        $"{_context.Device.Name} (cuda:{Ordinal}, compute capability {_context.Device.ComputeCapabilityMajor}.{_context.Device.ComputeCapabilityMinor}, " +
        $"{_context.Device.TotalMemoryBytes / (double)(1L << 30):F0} GiB), " +
        (HasVendorLibraries ? $"cuDNN {CudnnContext.FormatVersion(CudnnContext.Version)}, float32 without TF32" : "our kernels only (no cuBLAS or cuDNN)");

    /// <summary>cuMemAlloc calls so far: constant once a training step has planned its memory.</summary>
    public long DeviceAllocationCount => _pool.DeviceAllocations;

    /// <summary>Blocks handed out by the pool so far (storages and scratch), also constant after the first step.</summary>
    public long AllocationCount => _pool.BlockAllocations;

    /// <summary>Device memory the backend holds.</summary>
    public long ReservedBytes => _pool.ReservedBytes;

    /// <summary>The convolution algorithms chosen so far, one line per geometry (for logs and benchmarks).</summary>
    public IEnumerable<string> ConvolutionPlans => _convolutionPlans.Values.Select(p => p.ToString());

    internal DeviceMemoryPool Pool => _pool;

    /// <summary>Whether cuBLAS and cuDNN are loaded (always, except on the emulated device).</summary>
    internal bool HasVendorLibraries => _blasContext is not null;

    private CublasContext Blas => _blasContext ?? throw VendorLibraryMissing("cuBLAS", "linear layers");
    private CudnnContext Dnn => _dnnContext ?? throw VendorLibraryMissing("cuDNN", "convolutions");

    private static NotSupportedException VendorLibraryMissing(string library, string what) =>
        new($"This CUDA backend was created without {library} (the emulated device), so it cannot run {what}.");
    internal DeviceStatusMonitor Status => _status;
    internal ClusteringKernels ClusteringKernels => _kernels.Clustering;

    // ---- memory -----------------------------------------------------------------------------------

    /// <inheritdoc/>
    public override Storage Allocate(long sizeInBytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new CudaStorage(this, _pool.Allocate(Math.Max(1, sizeInBytes)));
    }

    /// <summary>The device address of a tensor's first element.</summary>
    internal static DevicePointer Pointer(Tensor t) => ((CudaStorage)t.Storage).Pointer.Offset(t.Offset * t.DType.SizeInBytes());

    private static DevicePointer P(Tensor t) => Pointer(t);

    /// <summary>The device address of a grow-only scratch buffer of at least <paramref name="bytes"/> bytes.</summary>
    private static DevicePointer Scratch(GrowOnlyBuffer buffer, long bytes) => ((CudaStorage)buffer.Ensure(bytes)).Pointer;
    private static DevicePointer PointerOrNull(Tensor? t) => t is null ? DevicePointer.Null : Pointer(t);

    /// <inheritdoc/>
    protected override void CopyInCore(Tensor dst, ReadOnlySpan<byte> src)
    {
        if (!_staging.TryCopy(src, P(dst), _stream)) DeviceCopy.ToDevice(_stream, P(dst), src);
    }

    /// <inheritdoc/>
    protected override void CopyOutCore(Tensor src, Span<byte> dst)
    {
        if (dst.IsEmpty)
        {
            Synchronize();
            return;
        }
        _status.EnqueueRead(_stream);
        DeviceCopy.ToHost(_stream, P(src), dst);
        _status.ThrowIfFailed(_stream);
    }

    /// <inheritdoc/>
    protected override void CopyCore(Tensor src, Tensor dst)
    {
        long bytes = src.ElementCount * src.DType.SizeInBytes();
        if (bytes == 0) return;
        _context.Bind();
        ThrowIfFailed(CudaDriver.cuMemcpyDtoDAsync_v2(P(dst).Address, P(src).Address, (nuint)bytes, _stream.Handle));
    }

    /// <inheritdoc/>
    protected override void FillCore(Tensor dst, float value) => _kernels.Elementwise.Fill(_stream, P(dst), value, dst.ElementCount);

    /// <summary>Waits for every op issued so far; throws a failed device-side check as the CPU backend would.</summary>
    public override void Synchronize() => _status.Check(_stream);

    // ---- elementwise and optimiser --------------------------------------------------------------------

    /// <inheritdoc/>
    protected override void ReluForwardCore(Tensor x, Tensor y) => _kernels.Elementwise.ReluForward(_stream, P(x), P(y), x.ElementCount);

    /// <inheritdoc/>
    protected override void ReluBackwardCore(Tensor y, Tensor dy, Tensor dx) => _kernels.Elementwise.ReluBackward(_stream, P(y), P(dy), P(dx), y.ElementCount);

    /// <inheritdoc/>
    protected override void DropoutForwardCore(Tensor x, Tensor y, Tensor mask, float p, ulong seed, ulong offset) =>
        _kernels.Dropout.Forward(_stream, P(x), P(y), P(mask), x.ElementCount, p, seed, offset);

    /// <inheritdoc/>
    protected override void MultiplyCore(Tensor a, Tensor b, Tensor result) => _kernels.Elementwise.Multiply(_stream, P(a), P(b), P(result), a.ElementCount);

    /// <inheritdoc/>
    protected override void SgdStepCore(Tensor weights, Tensor grads, Tensor momentum, float learningRate, float momentumFactor,
        float weightDecay, bool nesterov) =>
        _kernels.Optimizer.SgdStep(_stream, P(weights), P(grads), P(momentum), weights.ElementCount, learningRate, momentumFactor, weightDecay, nesterov);

    // ---- lifetime -----------------------------------------------------------------------------------

    /// <summary>Waits for the device and frees everything the backend holds (its tensors become unusable).</summary>
    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _stream.Synchronize(); }
        catch (CudaException) { } // after a device fault: free what can be freed
        foreach (var plan in _convolutionPlans.Values) plan.Dispose();
        _convolutionPlans.Clear();
        _staging.Dispose();
        _status.Dispose();
        _pool.Dispose();
        _context.Dispose(); // handles, modules, events, the stream and anything else the context owns
        base.Dispose();
    }
}
