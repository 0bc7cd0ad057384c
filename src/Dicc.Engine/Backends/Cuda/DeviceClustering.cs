using Dicc.Engine.Clustering;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// The DICC clustering module on a GPU, for use inside another CUDA application: it works on the caller's
/// device buffers (features [n, M] float32, labels [n] int32, pseudo-labels [n] int32, row-major) and queues
/// its kernels on the caller's stream, without synchronising and without allocating. Its results equal
/// <see cref="IntraClassClustering"/> bit for bit (pseudo-labels and centres). State (EMA centres, seen flags,
/// step counter) lives in device memory owned by this object.
/// <para>The engine works in the device's primary context, the one the CUDA runtime uses, so <c>cudaMalloc</c>
/// pointers and <c>cudaStream_t</c> handles of a runtime-API application can be passed as they are. Invalid
/// input (a label outside [0, C), a non-finite feature) leaves the state unchanged and is reported by the next
/// <see cref="ThrowIfFailed(nint)"/>, <see cref="ReadState(nint)"/> or <see cref="WriteState(ClusteringState, nint)"/>
/// on that stream, as the same exception the reference throws. See docs/gpu.md, "Embedding the clustering module".</para>
/// </summary>
public sealed class DeviceClustering : IDisposable
{
    private readonly CudaContext _context;
    private readonly ClusteringKernels _kernels;
    private readonly IDeviceAllocator _allocator;
    private readonly DeviceAllocation _state;      // centres [C*M] float, seen [C] int, step (long long), plan counts and offsets [C] int
    private readonly DeviceStatusMonitor? _ownStatus;
    private readonly DevicePointer _status;
    private readonly ClusterState _pointers;
    private DeviceAllocation? _work;
    private ClusterWork _workPointers;
    private int _capacity;
    private CudaStream? _wrapped;
    private nint _wrappedHandle;

    /// <summary>
    /// Creates the module on <paramref name="context"/>'s device (loading kernels/clustering.cu, compiling it with
    /// NVRTC on first use) with scratch for batches of up to <paramref name="maxBatchSize"/> samples (more is
    /// allocated when a larger batch comes; call <see cref="EnsureCapacity"/> while planning to avoid that).
    /// Synchronises the device once, at the end.
    /// </summary>
    public DeviceClustering(CudaContext context, SubclassPlan plan, int featureDim, PartitionMode partition = PartitionMode.Interval,
        double emaDecay = 0.99, int maxBatchSize = 0, KernelModuleLoader? loader = null)
        : this(context, ClusteringKernels.Load(context, loader), new ContextAllocator(context), status: null, plan, featureDim, partition, emaDecay)
    {
        EnsureCapacity(maxBatchSize);
        context.Synchronize();
    }

    /// <summary>A module whose memory comes from <paramref name="allocator"/> and whose failures go to <paramref name="status"/> (a backend's).</summary>
    internal DeviceClustering(CudaContext context, ClusteringKernels kernels, IDeviceAllocator allocator, DeviceStatusMonitor? status,
        SubclassPlan plan, int featureDim, PartitionMode partition, double emaDecay)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (featureDim < 1) throw new ArgumentOutOfRangeException(nameof(featureDim), featureDim, "The feature width must be at least 1.");
        if (!(emaDecay >= 0 && emaDecay <= 1)) throw new ArgumentOutOfRangeException(nameof(emaDecay), emaDecay, "The EMA decay must lie in [0, 1].");
        if (!Enum.IsDefined(partition)) throw new ArgumentOutOfRangeException(nameof(partition), partition, "Unknown partition mode.");
        if (plan.ClassCount > ushort.MaxValue) throw new NotSupportedException($"{plan.ClassCount} classes: the clustering kernels take at most {ushort.MaxValue}.");
        _context = context;
        _kernels = kernels;
        _allocator = allocator;
        Plan = plan;
        FeatureDim = featureDim;
        Partition = partition;
        EmaDecay = emaDecay;
        int c = plan.ClassCount;
        long centres = Align((long)c * featureDim * sizeof(float)), flags = Align(c * sizeof(int)), step = Align(sizeof(long));
        _state = allocator.Allocate(centres + flags + step + 2 * flags);
        var basePointer = _state.Pointer;
        _pointers = new ClusterState
        {
            Centers = basePointer, Seen = basePointer.Offset(centres), Step = basePointer.Offset(centres + flags),
            SubCounts = basePointer.Offset(centres + flags + step), SubOffsets = basePointer.Offset(centres + 2 * flags + step),
        };
        DeviceCopy.ToDevice(allocator.Stream, _pointers.SubCounts, plan.Counts);
        DeviceCopy.ToDevice(allocator.Stream, _pointers.SubOffsets, plan.Offsets);
        if (status is null)
        {
            _ownStatus = new DeviceStatusMonitor(context, allocator);
            status = _ownStatus;
        }
        Status = status;
        _status = status.Record;
    }

    public SubclassPlan Plan { get; }
    public int FeatureDim { get; }
    public PartitionMode Partition { get; }
    public double EmaDecay { get; }
    public int ClassCount => Plan.ClassCount;
    public int SubclassCount => Plan.TotalSubclasses;

    /// <summary>Where this module's failures are recorded.</summary>
    internal DeviceStatusMonitor Status { get; }

    /// <summary>Scratch is sized for this many samples (only batches that take the multi-block path need any).</summary>
    public int Capacity => _capacity;

    /// <summary>Grows the scratch for batches of <paramref name="batchSize"/> samples (planning time; allocates when it grows).</summary>
    public void EnsureCapacity(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchSize);
        if (LaunchShapes.UsesFusedClustering(batchSize, ClassCount, FeatureDim) || (_work is not null && batchSize <= _capacity)) return;
        batchSize = Math.Max(batchSize, 1);
        int c = ClassCount;
        long sums = Align((long)c * FeatureDim * sizeof(double)), distances = Align((long)batchSize * sizeof(double));
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

    /// <summary>
    /// One DICC step on <paramref name="stream"/> (a CUstream / cudaStream_t; 0 is the legacy default stream):
    /// features [count, M], labels [count] in [0, C) -> pseudo-labels [count] in [0, K); moves the centres.
    /// Returns at once; the work runs in stream order after whatever the caller queued before.
    /// </summary>
    public void Assign(DevicePointer features, DevicePointer labels, DevicePointer pseudoLabels, int count, nint stream) =>
        Assign(features, labels, pseudoLabels, count, StreamOf(stream));

    /// <summary>As <see cref="Assign(DevicePointer, DevicePointer, DevicePointer, int, nint)"/> on an engine stream.</summary>
    public void Assign(DevicePointer features, DevicePointer labels, DevicePointer pseudoLabels, int count, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > 0 && (features.IsNull || labels.IsNull || pseudoLabels.IsNull))
            throw new ArgumentException("Clustering needs the device addresses of the features, labels and pseudo-labels.");
        var shape = new ClusterShape
        {
            Keep = EmaDecay, Blend = 1.0 - EmaDecay, N = count, Classes = ClassCount, Dim = FeatureDim,
            Partition = Partition == PartitionMode.Rank ? 1 : 0,
        };
        if (LaunchShapes.UsesFusedClustering(count, ClassCount, FeatureDim))
        {
            _kernels.Fused(stream, features, labels, pseudoLabels, shape, _pointers, _status);
            return;
        }
        EnsureCapacity(count);
        _kernels.MultiBlock(stream, features, labels, pseudoLabels, shape, _pointers, _workPointers, _status);
    }

    /// <summary>Waits for <paramref name="stream"/> and throws the first failure its clustering steps recorded (then clears it).</summary>
    public void ThrowIfFailed(nint stream) => Status.Check(StreamOf(stream));

    /// <summary>Waits for <paramref name="stream"/>, checks for failures, and copies the state to the host.</summary>
    public ClusteringState ReadState(nint stream) => ReadState(StreamOf(stream));

    public ClusteringState ReadState(CudaStream stream)
    {
        Status.Check(stream);
        int c = ClassCount;
        var centres = new float[(long)c * FeatureDim];
        var seen = new int[c];
        var step = new long[1];
        DeviceCopy.ToHost<float>(stream, _pointers.Centers, centres);
        DeviceCopy.ToHost<int>(stream, _pointers.Seen, seen);
        DeviceCopy.ToHost<long>(stream, _pointers.Step, step);
        return new ClusteringState(centres, seen.Select(s => s != 0).ToArray(), step[0]);
    }

    /// <summary>Replaces the state (a checkpoint's, or given centres with every class seen), after the stream's earlier work.</summary>
    public void WriteState(ClusteringState state, nint stream) => WriteState(state, StreamOf(stream));

    public void WriteState(ClusteringState state, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(state);
        int c = ClassCount;
        if (state.Centers.Length != (long)c * FeatureDim || state.Seen.Length != c || state.Step < 0)
            throw new ShapeMismatchException(
                $"Clustering state with {state.Centers.Length} centre values and {state.Seen.Length} flags does not fit {c} classes x {FeatureDim}.");
        for (int k = 0; k < state.Centers.Length; k++)
            if (!float.IsFinite(state.Centers[k]))
                throw new ArgumentException($"Centre of class {k / FeatureDim}, feature {k % FeatureDim} is not finite ({state.Centers[k]}).", nameof(state));
        Status.Check(stream);
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

    public void Dispose()
    {
        _work?.Dispose();
        _work = null;
        _ownStatus?.Dispose();
        _state.Dispose();
    }
}
