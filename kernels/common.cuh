// Shared definitions for Dicc's CUDA kernels.
//
// Every kernel is extern "C" (unmangled, found by name) with a dtype suffix (relu_forward_f32) and a comment
// giving its arguments' shapes. Sources are compiled at run time by NVRTC (11.8 and later) for the device at
// hand, and ahead of time by build-kernels.ps1 (nvcc) into fatbins. NVRTC has no system headers and 11.8 no
// cuda_fp16.h, so nothing here includes a header: only built-in types and intrinsics.
//
// Element counts are 64-bit (long long) and loops are grid-stride, so any grid size covers any length.
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;

#define DICC_KERNEL extern "C" __global__

// -infinity without math.h (NVRTC does not define INFINITY).
#define DICC_NEG_INF __int_as_float(0xff800000)
// A quiet NaN.
#define DICC_NAN __int_as_float(0x7fc00000)
// The largest int (NVRTC has no limits.h): "no position found" in minimum reductions.
#define DICC_INT_MAX 0x7fffffff

// for (i64 i = ...; i < n; ...) over this thread's share of [0, n).
#define DICC_GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)(n); i += (i64)gridDim.x * blockDim.x)

// ---- Philox4x32-10 -----------------------------------------------------------------------------------
// Identical to Dicc.Engine.Randomness.Philox: key = seed (low word k0, high word k1), counter =
// (block low, block high, stream low, stream high). The same (seed, stream, counter) gives the same four
// words on the CPU and the GPU, so dropout masks and augmentation draws match across devices.

__device__ __forceinline__ uint4 dicc_philox4x32_10(u64 seed, u64 stream, u64 block)
{
    u32 c0 = (u32)block, c1 = (u32)(block >> 32), c2 = (u32)stream, c3 = (u32)(stream >> 32);
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
    #pragma unroll
    for (int round = 0; round < 10; round++)
    {
        u32 hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        u32 hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        u32 n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return make_uint4(c0, c1, c2, c3);
}

// A uniform float in [0, 1) from the top 24 bits of a word (exact, as Philox.ToUniform).
__device__ __forceinline__ float dicc_uniform(u32 word)
{
    return (float)(word >> 8) * (1.0f / 16777216.0f);
}

// ---- reductions --------------------------------------------------------------------------------------
// Fixed shuffle patterns and a fixed block size make every reduction deterministic run to run.

template <typename T>
__device__ __forceinline__ T dicc_warp_sum(T v)
{
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float dicc_warp_max(float v)
{
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the block; every thread gets the result. blockDim.x must be a multiple of 32 (at most 1024);
// scratch holds 32 values in shared memory.
template <typename T>
__device__ T dicc_block_sum(T v, T* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = dicc_warp_sum(v);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        v = lane < warps ? scratch[lane] : (T)0;
        v = dicc_warp_sum(v);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

// Maximum over the block (same rules as dicc_block_sum). NaN-free inputs are assumed, as on the CPU.
__device__ float dicc_block_max(float v, float* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = dicc_warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        v = lane < warps ? scratch[lane] : DICC_NEG_INF;
        v = dicc_warp_max(v);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

// Minimum of an int over the block (same rules as dicc_block_sum).
__device__ int dicc_block_min_i32(int v, int* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    #pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, offset));
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        v = lane < warps ? scratch[lane] : DICC_INT_MAX;
        #pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, offset));
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

// ---- device status -----------------------------------------------------------------------------------
// Checks that the CPU backend makes by throwing (a label or index out of range, a non-finite feature) are
// recorded on the device and turned into the same exception at the next synchronisation point
// (Backends/Cuda/DeviceStatus.cs). The record keeps the first failure in stream order: it is written only
// by one thread of a kernel that runs alone on its stream, and only while kind is still 0. 32 bytes.
struct DiccStatus
{
    int kind;  // DICC_STATUS_* below; 0 = no failure
    int row;   // batch position (sample, row) of the first failure
    int value; // the offending label or index, or the feature column
    int bound; // the valid range is [0, bound)
    int aux;   // the offending float's bits (non-finite feature)
    int pad[3];
};

#define DICC_STATUS_CROSS_ENTROPY_LABEL 1
#define DICC_STATUS_GATHER_INDEX 2
#define DICC_STATUS_CROP_INDEX 3
#define DICC_STATUS_CLUSTER_LABEL 4
#define DICC_STATUS_CLUSTER_NON_FINITE 5

__device__ __forceinline__ void dicc_report(DiccStatus* status, int kind, int row, int value, int bound, int aux)
{
    if (status == 0 || status->kind != 0) return;
    status->row = row;
    status->value = value;
    status->bound = bound;
    status->aux = aux;
    status->kind = kind;
}
