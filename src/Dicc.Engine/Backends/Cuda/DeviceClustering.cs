using Dicc.Engine.Clustering;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// The DICC clustering step on a GPU (kernels/clustering.cu). Its results equal <see cref="IntraClassClustering"/>
/// bit for bit (pseudo-labels and centres). State (EMA centres, seen flags, step counter) lives in device memory
/// owned by this object. Two ways to use it:
/// <list type="bullet">
/// <item>inside the engine, from <see cref="IClustering.Create"/> on a <see cref="CudaBackend"/>: on the backend's
/// tensors and stream, failures thrown at the backend's next sync point;</item>
/// <item>inside another CUDA application (<see cref="Create"/>): on the caller's device buffers (features [n, M]
/// float32, labels [n] int32, pseudo-labels [n] int32, row-major) and the caller's stream, queued without
/// synchronising and without allocating. The engine works in the device's primary context, the one the CUDA
/// runtime uses, so <c>cudaMalloc</c> pointers and <c>cudaStream_t</c> handles can be passed as they are. Invalid
/// input (a label outside [0, C), a non-finite feature) leaves the state unchanged and is reported by the next
/// <see cref="ThrowIfFailed"/>, <see cref="ReadState(nint)"/> or <see cref="WriteState(ClusteringState, nint)"/> on that
/// stream as the exception the reference throws. See docs/gpu.md, "Embedding the clustering module".</item>
/// </list>
/// Not thread-safe; use one per stream.
/// </summary>
public sealed class DeviceClustering : IClustering
{
    private readonly CudaContext _context;
    private readonly CudaContext? _ownedContext;
    private readonly CudaBackend? _backend;
    private readonly ClusteringKernels _kernels;
    private readonly IDeviceAllocator _allocator;
    private readonly DeviceAllocation _state;      // centres [C*M] float, seen [C] int, step (long long), plan counts and offsets [C] int
    private readonly DeviceStatusMonitor? _ownStatus;
    private readonly DeviceStatusMonitor _status;
    private readonly ClusterState _pointers;
    private DeviceAllocation? _work;
    private ClusterWork _workPointers;
    private int _capacity;
    private CudaStream? _wrapped;
    private nint _wrappedHandle;

    /// <summary>
    /// Opens GPU <paramref name="device"/> (its primary context) and creates the module there, loading
    /// kernels/clustering.cu (a prebuilt fatbin, the kernel cache or NVRTC), with scratch for batches of up to
    /// <paramref name="maxBatchSize"/> samples (a larger batch allocates more; see <see cref="EnsureCapacity"/>).
    /// Synchronises the device once. Throws <see cref="GpuUnavailableException"/> where CUDA cannot run.
    /// </summary>
    public static DeviceClustering Create(ClusteringConfig config, int device = 0, int maxBatchSize = 0)
    {
        var context = CudaContext.Create(device);
        try
        {
            return new DeviceClustering(context, config, maxBatchSize, loader: null, ownsContext: true);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>A module on <paramref name="context"/>'s device with its own kernels, memory and status record.</summary>
    internal DeviceClustering(CudaContext context, ClusteringConfig config, int maxBatchSize = 0, KernelModuleLoader? loader = null,
        bool ownsContext = false)
        : this(context, config, ClusteringKernels.Load(context, loader), new ContextAllocator(context), status: null, backend: null)
    {
        if (ownsContext) _ownedContext = context;
        EnsureCapacity(maxBatchSize);
        context.Synchronize();
    }

    /// <summary>The backend's module: its kernels, pool, status record and stream.</summary>
    internal DeviceClustering(CudaBackend backend, ClusteringConfig config, int maxBatchSize)
        : this(backend.Context, config, backend.ClusteringKernels, backend.Pool, backend.Status, backend) =>
        EnsureCapacity(maxBatchSize);

    private DeviceClustering(CudaContext context, ClusteringConfig config, ClusteringKernels kernels, IDeviceAllocator allocator,
        DeviceStatusMonitor? status, CudaBackend? backend)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.ClassCount > ushort.MaxValue) throw new NotSupportedException($"{config.ClassCount} classes: the clustering kernels take at most {ushort.MaxValue}.");
        _context = context;
        _kernels = kernels;
        _allocator = allocator;
        _backend = backend;
        Config = config;
        int c = config.ClassCount;
        long centres = Align((long)c * config.FeatureDim * sizeof(float)), flags = Align(c * sizeof(int)), step = Align(sizeof(long));
        _state = allocator.Allocate(centres + flags + step + 2 * flags);
        var basePointer = _state.Pointer;
        _pointers = new ClusterState
        {
            Centers = basePointer, Seen = basePointer.Offset(centres), Step = basePointer.Offset(centres + flags),
            SubCounts = basePointer.Offset(centres + flags + step), SubOffsets = basePointer.Offset(centres + 2 * flags + step),
        };
        DeviceCopy.ToDevice(allocator.Stream, _pointers.SubCounts, config.Plan.Counts);
        DeviceCopy.ToDevice(allocator.Stream, _pointers.SubOffsets, config.Plan.Offsets);
        _ownStatus = status is null ? new DeviceStatusMonitor(context, allocator) : null;
        _status = status ?? _ownStatus!;
    }

    /// <inheritdoc/>
    public ClusteringConfig Config { get; }

    /// <summary>Scratch is sized for this many samples (only batches that take the multi-block path need any).</summary>
    public int Capacity => _capacity;

    /// <summary>The stream of the engine-side API: the backend's, or the context's for a module of its own.</summary>
    private CudaStream OwnStream => _backend?.Stream ?? _context.Stream;

    /// <summary>Grows the scratch for batches of <paramref name="batchSize"/> samples (planning time; allocates when it grows).</summary>
    public void EnsureCapacity(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchSize);
        int c = Config.ClassCount, m = Config.FeatureDim;
        if (LaunchShapes.UsesFusedClustering(batchSize, c, m) || (_work is not null && batchSize <= _capacity)) return;
        batchSize = Math.Max(batchSize, 1);
        long sums = Align((long)c * m * sizeof(double)), distances = Align((long)batchSize * sizeof(double));
        long perClass8 = Align(c * 8L), perClass4 = Align(c * 4L), order = Align((long)batchSize * sizeof(int));
        var work = _allocator.Allocate(sums + distances + perClass8 + 3 * perClass4 + order + Align(sizeof(int)));
        var p = work.Pointer;
        long o = 0;
        DevicePointer Next(long bytes)
        {
            var at = p.Offset(o);
            o += bytes;
            return at;
        }
        _workPointers = new ClusterWork
        {
            Sums = Next(sums), Distances = Next(distances), ClassMax = Next(perClass8), Counts = Next(perClass4), Starts = Next(perClass4),
            NonFinite = Next(perClass4), Order = Next(order), Abort = Next(Align(sizeof(int))),
        };
        _work?.Dispose();
        _work = work;
        _capacity = batchSize;
    }

    // ---- on the caller's buffers and stream (embedding) ----------------------------------------------

    /// <summary>
    /// One DICC step on <paramref name="stream"/> (a CUstream / cudaStream_t; 0 is the legacy default stream):
    /// features [count, M], labels [count] in [0, C) -> pseudo-labels [count] in [0, K); moves the centres.
    /// Returns at once; the work runs in stream order after whatever the caller queued before.
    /// </summary>
    public void Assign(DevicePointer features, DevicePointer labels, DevicePointer pseudoLabels, int count, nint stream) =>
        Enqueue(features, labels, pseudoLabels, count, StreamOf(stream));

    /// <summary>Waits for <paramref name="stream"/> and throws the first failure its clustering steps recorded (then clears it).</summary>
    public void ThrowIfFailed(nint stream) => _status.Check(StreamOf(stream));

    /// <summary>Waits for <paramref name="stream"/>, checks for failures, and copies the state to the host.</summary>
    public ClusteringState ReadState(nint stream) => ReadStateOn(StreamOf(stream));

    /// <summary>Replaces the state (a checkpoint's, or given centres with every class seen), after the stream's earlier work.</summary>
    public void WriteState(ClusteringState state, nint stream) => WriteStateOn(state, StreamOf(stream));

    // ---- on the backend's tensors and stream (IClustering) -------------------------------------------

    /// <inheritdoc/>
    public void Assign(Tensor features, Tensor labels, Tensor pseudoLabels)
    {
        int n = IClustering.RequireBatch(Config, features, labels, pseudoLabels);
        if (_backend is null || !ReferenceEquals(features.Backend, _backend))
            throw new ArgumentException($"Tensors on '{features.Backend.Name}' given to a clustering module that lives on " +
                $"{(_backend is null ? "the caller's buffers (use the DevicePointer overload)" : $"'{_backend.Name}'")}.", nameof(features));
        Enqueue(CudaBackend.Pointer(features), CudaBackend.Pointer(labels), CudaBackend.Pointer(pseudoLabels), n, _backend.Stream);
    }

    /// <inheritdoc/>
    public ClusteringState ReadState() => ReadStateOn(OwnStream);

    /// <inheritdoc/>
    public void WriteState(ClusteringState state) => WriteStateOn(state, OwnStream);

    // ---- the work -------------------------------------------------------------------------------------

    private void Enqueue(DevicePointer features, DevicePointer labels, DevicePointer pseudoLabels, int count, CudaStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > 0 && (features.IsNull || labels.IsNull || pseudoLabels.IsNull))
            throw new ArgumentException("Clustering needs the device addresses of the features, labels and pseudo-labels.");
        var shape = new ClusterShape
        {
            Keep = Config.EmaDecay, Blend = 1.0 - Config.EmaDecay, N = count, Classes = Config.ClassCount, Dim = Config.FeatureDim,
            Partition = Config.Partition == PartitionMode.Rank ? 1 : 0,
        };
        if (LaunchShapes.UsesFusedClustering(count, Config.ClassCount, Config.FeatureDim))
        {
            _kernels.Fused(stream, features, labels, pseudoLabels, shape, _pointers, _status.Record);
            return;
        }
        EnsureCapacity(count);
        _kernels.MultiBlock(stream, features, labels, pseudoLabels, shape, _pointers, _workPointers, _status.Record);
    }

    private ClusteringState ReadStateOn(CudaStream stream)
    {
        _status.Check(stream);
        int c = Config.ClassCount;
        var centres = new float[(long)c * Config.FeatureDim];
        var seen = new int[c];
        var step = new long[1];
        DeviceCopy.ToHost<float>(stream, _pointers.Centers, centres);
        DeviceCopy.ToHost<int>(stream, _pointers.Seen, seen);
        DeviceCopy.ToHost<long>(stream, _pointers.Step, step);
        return new ClusteringState(centres, seen.Select(s => s != 0).ToArray(), step[0]);
    }

    private void WriteStateOn(ClusteringState state, CudaStream stream)
    {
        IClustering.RequireState(Config, state);
        _status.Check(stream);
        DeviceCopy.ToDevice<float>(stream, _pointers.Centers, state.Centers);
        DeviceCopy.ToDevice<int>(stream, _pointers.Seen, state.Seen.Select(s => s ? 1 : 0).ToArray());
        DeviceCopy.ToDevice<long>(stream, _pointers.Step, [state.Step]);
        stream.Synchronize();
    }

    private CudaStream StreamOf(nint handle)
    {
        if (_wrapped is null || _wrappedHandle != handle)
        {
            _wrapped = CudaStream.Wrap(_context, handle);
            _wrappedHandle = handle;
        }
        return _wrapped;
    }

    private static long Align(long bytes) => (bytes + 255) & ~255L;

    /// <summary>Frees the module's device memory (and its context, when <see cref="Create"/> opened it).</summary>
    public void Dispose()
    {
        _work?.Dispose();
        _work = null;
        _ownStatus?.Dispose();
        _state.Dispose();
        _ownedContext?.Dispose();
    }
}
