using System.Runtime.InteropServices;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

// Kernel arguments passed as one struct. Each mirrors a struct of kernels/*.cu field for field (the same order,
// C's natural alignment); a test compares their sizes with the parameter sizes in NVRTC's PTX.

/// <summary>kernels/normalization.cu's DiccNormShape (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NormShape
{
    public static implicit operator KernelArgument(in NormShape value) => KernelArgument.Struct(value);

    public int N, C, Spatial, Segments;
    public float Momentum, Epsilon;
}

/// <summary>kernels/pooling.cu's DiccPoolShape (44 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PoolShape
{
    public static implicit operator KernelArgument(in PoolShape value) => KernelArgument.Struct(value);

    public int Planes, H, W, WindowH, WindowW, StrideH, StrideW, PadH, PadW, P, Q;

    public static PoolShape Of(in PoolGeometry g) => new()
    {
        Planes = checked(g.N * g.C), H = g.H, W = g.W, WindowH = g.WindowH, WindowW = g.WindowW,
        StrideH = g.StrideH, StrideW = g.StrideW, PadH = g.PadH, PadW = g.PadW, P = g.P, Q = g.Q,
    };
}

/// <summary>kernels/data.cu's DiccCropShape (48 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CropShape
{
    public static implicit operator KernelArgument(in CropShape value) => KernelArgument.Struct(value);

    public ulong Seed, FirstSample, Stream;
    public int Count, Height, Width, N, Mode, Crop;
}

/// <summary>kernels/clustering.cu's DiccClusterShape (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ClusterShape
{
    public static implicit operator KernelArgument(in ClusterShape value) => KernelArgument.Struct(value);

    public double Keep, Blend;
    public int N, Classes, Dim, Partition;
}

/// <summary>kernels/clustering.cu's DiccClusterState (40 bytes): device addresses of the module's state and plan.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ClusterState
{
    public static implicit operator KernelArgument(in ClusterState value) => KernelArgument.Struct(value);

    public DevicePointer Centers, Seen, Step, SubCounts, SubOffsets;
}

/// <summary>kernels/clustering.cu's DiccClusterWork (64 bytes): device addresses of the multi-block path's scratch.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ClusterWork
{
    public static implicit operator KernelArgument(in ClusterWork value) => KernelArgument.Struct(value);

    public DevicePointer Sums, Distances, ClassMax, Counts, Starts, Order, NonFinite, Abort;
}

/// <summary>
/// Launch shapes that depend on the problem alone (never on the device), so that every reduction's order, and
/// therefore its result, is the same on every GPU and every run.
/// </summary>
internal static class LaunchShapes
{
    /// <summary>Values one block of a segmented reduction sums (about 32 per thread at 256 threads).</summary>
    public const int ValuesPerSegment = 8192;

    /// <summary>At most this many segments per channel.</summary>
    public const int MaxSegments = 128;

    /// <summary>Threads per block of the reductions and the one-block kernels.</summary>
    public const int ReductionThreads = 256;

    /// <summary>Threads of the one-block clustering kernel (32 warps).</summary>
    public const int FusedClusteringThreads = 1024;

    /// <summary>Dynamic shared memory the one-block clustering may use: under the 48 KiB every device gives without opting in.</summary>
    public const int FusedSharedLimit = 47 * 1024;

    /// <summary>Largest batch the one-block clustering takes; larger ones use the multi-block path.</summary>
    public const int FusedBatchLimit = 2048;

    /// <summary>Segments per channel for a reduction over <paramref name="valuesPerChannel"/> values.</summary>
    public static int Segments(long valuesPerChannel) =>
        (int)Math.Clamp((valuesPerChannel + ValuesPerSegment - 1) / ValuesPerSegment, 1, MaxSegments);

    /// <summary>Dynamic shared memory of kernels/clustering.cu's cluster_fused_f32 (its layout comment).</summary>
    public static long FusedClusteringSharedBytes(int n, int classes, int dim) =>
        8L * ((long)classes * dim + n + classes) + 4L * (2L * classes + n + 4);

    /// <summary>Whether a clustering step of this size runs as the one-block kernel.</summary>
    public static bool UsesFusedClustering(int n, int classes, int dim) =>
        n <= FusedBatchLimit && FusedClusteringSharedBytes(n, classes, dim) <= FusedSharedLimit;

    /// <summary>Grid of the warp-per-sample distance step: enough 256-thread blocks for n warps.</summary>
    public static uint DistanceBlocks(int n) => (uint)Math.Max(1, (n + ReductionThreads / 32 - 1) / (ReductionThreads / 32));

    /// <summary>The element-wise kernels index with 32-bit ints; beyond this many elements they would overflow.</summary>
    public const long MaxInt32Elements = int.MaxValue - (1L << 26);

    public static int RequireInt32Elements(long elements, string what) =>
        elements <= MaxInt32Elements ? (int)elements
            : throw new NotSupportedException($"{what} has {elements} elements; the CUDA kernels index at most {MaxInt32Elements} (use a smaller batch).");
}
