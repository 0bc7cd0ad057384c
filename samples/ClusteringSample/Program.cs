// The DICC clustering step in your own program, from the Dicc.Engine package (docs/embedding.md):
// on host arrays (IntraClassClustering), and, where a CUDA device is usable, on device buffers and a stream that the
// program allocated itself (DeviceClustering), checked against the host reference. Exit code 0 when every check holds.
// The device part needs the CUDA driver and NVRTC (not cuBLAS or cuDNN); scripts/samples.sh also runs it on the
// emulated CUDA device of tests/EmulatedDevice (DICC_CUDA_PATH), our kernels on the CPU.
using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Clustering;

const int classes = 7, dim = 64, batch = 256, steps = 5;
int[] trainCounts = [3995, 436, 4097, 7215, 4830, 3171, 4965]; // FER2013's training images per class

var plan = SubclassPlan.Parse("auto", classes, trainCounts);
var config = new ClusteringConfig(plan, dim);
Console.WriteLine($"clustering: {config} -> {config.SubclassCount} pseudo-labels");

// ---- on host arrays --------------------------------------------------------------------------------------
var batches = Enumerable.Range(0, steps + 1).Select(i => MakeBatch(seed: i)).ToArray();
var pseudo = new int[batch];
using var host = new IntraClassClustering(config, maxBatchSize: batch);
for (int step = 0; step < steps; step++) host.Assign(batches[step].Features, batches[step].Labels, pseudo);
for (int c = 0; c < classes; c++)
{
    var used = Enumerable.Range(0, batch).Where(i => batches[steps - 1].Labels[i] == c).Select(i => pseudo[i]).Distinct().Order();
    Console.WriteLine($"  class {c}: {plan.Count(c)} subclasses, pseudo-labels in the last batch {string.Join(",", used)}");
}

// A checkpoint round trip: a module restored from the state gives the same next pseudo-labels.
ClusteringState state = host.ReadState();
using var restored = new IntraClassClustering(config);
restored.WriteState(state);
var expected = new int[batch];
var actual = new int[batch];
host.Assign(batches[steps].Features, batches[steps].Labels, expected);
restored.Assign(batches[steps].Features, batches[steps].Labels, actual);
Check(expected.AsSpan().SequenceEqual(actual), "a restored state gives the same pseudo-labels");

// ---- on the program's own device buffers and stream ------------------------------------------------------
DeviceClustering device;
try
{
    device = DeviceClustering.Create(config, device: 0, maxBatchSize: batch);
}
catch (GpuUnavailableException e)
{
    Console.WriteLine($"no usable CUDA device here, the DeviceClustering part was skipped: {e.Message}");
    return 0;
}
using var _ = device;
using var reference = new IntraClassClustering(config);
using var gpu = new Gpu();
nint stream = gpu.Stream;
ulong features = gpu.Alloc(batch * dim * sizeof(float)), labels = gpu.Alloc(batch * sizeof(int)), pseudoOnGpu = gpu.Alloc(batch * sizeof(int));
var fromGpu = new int[batch];
for (int step = 0; step <= steps; step++)
{
    gpu.Upload<float>(features, batches[step].Features, stream);
    gpu.Upload<int>(labels, batches[step].Labels, stream);
    device.Assign(features, labels, pseudoOnGpu, batch, stream);          // queued after the uploads, returns at once
    gpu.Download<int>(pseudoOnGpu, fromGpu, stream);
    device.ThrowIfFailed(stream);
    reference.Assign(batches[step].Features, batches[step].Labels, expected);
    Check(fromGpu.AsSpan().SequenceEqual(expected), $"step {step}: the device's pseudo-labels equal the host reference's");
}
Check(device.ReadState(stream).Centers.AsSpan().SequenceEqual(reference.ReadState().Centers), "the device's centres equal the host reference's, bit for bit");
return 0;

// A long-tailed batch: labels drawn in proportion to the training counts, features around a per-class mean.
(float[] Features, int[] Labels) MakeBatch(int seed)
{
    var random = new Random(seed);
    double total = trainCounts.Sum();
    var labels = new int[batch];
    var features = new float[batch * dim];
    for (int i = 0; i < batch; i++)
    {
        double u = random.NextDouble() * total;
        int c = 0;
        while (c < classes - 1 && (u -= trainCounts[c]) >= 0) c++;
        labels[i] = c;
        for (int j = 0; j < dim; j++) features[i * dim + j] = (float)(Math.Sin(c + j) + 0.5 * (random.NextDouble() - 0.5));
    }
    return (features, labels);
}

static void Check(bool ok, string what)
{
    Console.WriteLine($"{(ok ? "ok" : "FAILED")}: {what}");
    if (!ok) Environment.Exit(1);
}

/// <summary>
/// What a CUDA application already has, here from the driver API: the device's primary context (the one the CUDA
/// runtime and DeviceClustering use), a stream of its own, device memory and copies ordered on the stream.
/// </summary>
sealed unsafe class Gpu : IDisposable
{
    private const string Driver = "libcuda.so.1";

    // The driver the engine uses: DICC_CUDA_PATH when set (as the engine reads it, docs/gpu.md), else libcuda.so.1.
    static Gpu() => NativeLibrary.SetDllImportResolver(typeof(Gpu).Assembly, (name, assembly, path) =>
        name == Driver && Environment.GetEnvironmentVariable("DICC_CUDA_PATH") is { Length: > 0 } file ? NativeLibrary.Load(file) : 0);

    [DllImport(Driver)] private static extern int cuInit(uint flags);
    [DllImport(Driver)] private static extern int cuDeviceGet(out int device, int ordinal);
    [DllImport(Driver)] private static extern int cuDevicePrimaryCtxRetain(out nint context, int device);
    [DllImport(Driver)] private static extern int cuDevicePrimaryCtxRelease_v2(int device);
    [DllImport(Driver)] private static extern int cuCtxSetCurrent(nint context);
    [DllImport(Driver)] private static extern int cuStreamCreate(out nint stream, uint flags);
    [DllImport(Driver)] private static extern int cuStreamDestroy_v2(nint stream);
    [DllImport(Driver)] private static extern int cuStreamSynchronize(nint stream);
    [DllImport(Driver)] private static extern int cuMemAlloc_v2(out ulong pointer, nuint bytes);
    [DllImport(Driver)] private static extern int cuMemFree_v2(ulong pointer);
    [DllImport(Driver)] private static extern int cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, nint stream);
    [DllImport(Driver)] private static extern int cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, nint stream);

    private readonly List<ulong> _allocations = [];
    private readonly int _device;

    public Gpu()
    {
        Ok(cuInit(0), "cuInit");
        Ok(cuDeviceGet(out _device, 0), "cuDeviceGet");
        Ok(cuDevicePrimaryCtxRetain(out var context, _device), "cuDevicePrimaryCtxRetain");
        Ok(cuCtxSetCurrent(context), "cuCtxSetCurrent");
        Ok(cuStreamCreate(out var stream, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
        Stream = stream;
    }

    public nint Stream { get; }

    public ulong Alloc(int bytes)
    {
        Ok(cuMemAlloc_v2(out ulong pointer, (nuint)bytes), "cuMemAlloc");
        _allocations.Add(pointer);
        return pointer;
    }

    public void Upload<T>(ulong destination, T[] values, nint stream) where T : unmanaged
    {
        fixed (T* p = values) Ok(cuMemcpyHtoDAsync_v2(destination, p, (nuint)(values.Length * sizeof(T)), stream), "cuMemcpyHtoDAsync");
    }

    public void Download<T>(ulong source, T[] values, nint stream) where T : unmanaged
    {
        fixed (T* p = values) Ok(cuMemcpyDtoHAsync_v2(p, source, (nuint)(values.Length * sizeof(T)), stream), "cuMemcpyDtoHAsync");
        Ok(cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    private static void Ok(int status, string call)
    {
        if (status != 0) throw new InvalidOperationException($"{call} failed with CUDA error {status}.");
    }

    public void Dispose()
    {
        cuStreamSynchronize(Stream);
        foreach (ulong pointer in _allocations) cuMemFree_v2(pointer);
        cuStreamDestroy_v2(Stream);
        cuDevicePrimaryCtxRelease_v2(_device);
    }
}
