// Test kernels of the emulated device's self-test (selftest.cpp checks what they produce). Written as CUDA C for
// a GPU, like kernels/*.cu, and compiled the same way; some are wrong on purpose (deadlocks, out-of-bounds
// accesses, an endless loop) to check that the emulator reports them.
#define DICC_KERNEL extern "C" __global__

// Each block sums its blockDim.x values (a power of two) with a shared-memory tree: exact only if every
// __syncthreads really waits for the whole block.
DICC_KERNEL void st_tree_sum(const long long* in, long long* out, int n)
{
    __shared__ long long partial[1024];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? in[i] : 0;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1)
    {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

// The same tree without barriers: a race that the emulator's fibers expose (the self-test expects a wrong sum).
DICC_KERNEL void st_tree_sum_racy(const long long* in, long long* out, int n)
{
    __shared__ long long partial[1024];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? in[i] : 0;
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1)
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

// Threads at or beyond `active` return before the barrier; they count as arrived, so the rest go on.
DICC_KERNEL void st_early_return(int* out, int active)
{
    __shared__ int value;
    if ((int)threadIdx.x >= active) return;
    if (threadIdx.x == 0) value = 42 + blockIdx.x;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = value;
}

// Every warp primitive, 13 results per thread in out[t * 13 + k].
DICC_KERNEL void st_warp_ops(const int* in, int* out, int width)
{
    const int t = threadIdx.x, lane = t & 31;
    const int v = in[t];
    int* o = out + t * 13;
    o[0] = __shfl_sync(0xffffffffu, v, 3);
    o[1] = __shfl_sync(0xffffffffu, v, lane + 5, width);
    o[2] = __shfl_up_sync(0xffffffffu, v, 3, width);
    o[3] = __shfl_down_sync(0xffffffffu, v, 5, width);
    o[4] = __shfl_xor_sync(0xffffffffu, v, 9, width);
    o[5] = (int)__ballot_sync(0xffffffffu, v & 1);
    o[6] = __popc(__ballot_sync(0xffffffffu, v > 50));
    const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u; // two independent half-warps
    o[7] = __shfl_xor_sync(half, v, 1);
    o[8] = (int)__ballot_sync(half, v & 2);
    o[9] = __shfl_down_sync(0xffffffffu, v, 40);
    o[10] = __shfl_sync(0xffffffffu, v, -1);
    const long long wide = ((long long)v << 33) | lane; // 64-bit values travel whole
    const long long r = __shfl_xor_sync(0xffffffffu, wide, 16);
    o[11] = (int)(r >> 33);
    o[12] = (int)(r & 0xffffffff);
}

// 64-bit atomics on shared and global memory, from every block (blocks run on several OS threads).
DICC_KERNEL void st_atomics64(unsigned long long* sum, unsigned long long* largest, long long* smallest, int n)
{
    __shared__ unsigned long long block_sum;
    if (threadIdx.x == 0) block_sum = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        const unsigned long long v = ((unsigned long long)i << 32) | 1u;
        atomicAdd(&block_sum, v);
        atomicMax(largest, v * 3);
        atomicMin(smallest, -(long long)v);
    }
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(sum, block_sum);
}

// Deadlock: lanes 0-15 wait in a full-warp shuffle, everyone else at the barrier.
DICC_KERNEL void st_deadlock_barrier_vs_shuffle(int* out)
{
    int v = threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
    else __syncthreads();
    out[threadIdx.x] = v;
}

// Deadlock: a full-warp shuffle that lanes 16-31 never reach (they returned).
DICC_KERNEL void st_deadlock_exited_lane(int* out)
{
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (int)threadIdx.x, 1);
}

// A shuffle reading a lane outside its mask (undefined on a GPU).
DICC_KERNEL void st_shfl_outside_mask(int* out)
{
    if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, (int)threadIdx.x, threadIdx.x + 16);
}

// An endless loop: nothing sets the flag.
DICC_KERNEL void st_spin(volatile int* flag)
{
    while (flag[0] == 0) {}
}

DICC_KERNEL void st_write_at(float* p, long long index, float value)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) p[index] = value;
}

DICC_KERNEL void st_read_at(const float* p, long long index, float* out)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = p[index];
}

// Block 0 keeps its shared memory while block 1 (on another OS thread) writes its own; each block then reads
// back its own values. seen [2 blocks][2][blockDim.x].
DICC_KERNEL void st_shared_isolation(volatile int* flag, int* seen)
{
    __shared__ int tile[64];
    extern __shared__ int dynamic[];
    tile[threadIdx.x] = blockIdx.x + 1;
    dynamic[threadIdx.x] = blockIdx.x + 101;
    __syncthreads();
    if (blockIdx.x == 1 && threadIdx.x == 0) flag[0] = 1;
    if (blockIdx.x == 0 && threadIdx.x == 0)
        while (flag[0] == 0) {}
    __syncthreads();
    seen[(blockIdx.x * 2) * blockDim.x + threadIdx.x] = tile[threadIdx.x];
    seen[(blockIdx.x * 2 + 1) * blockDim.x + threadIdx.x] = dynamic[threadIdx.x];
}

// Fills `words` ints of dynamic shared memory, then sums them back (more than 48 KiB needs the opt-in).
DICC_KERNEL void st_dynamic_fill(int* out, int words)
{
    extern __shared__ int dynamic[];
    for (int i = threadIdx.x; i < words; i += blockDim.x) dynamic[i] = i;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        long long s = 0;
        for (int i = 0; i < words; i++) s += dynamic[i];
        out[0] = (int)(s % 1000003);
    }
}

DICC_KERNEL void st_misaligned_atomic(int* p)
{
    if (threadIdx.x == 0) atomicAdd((int*)((char*)p + 2), 1);
}

DICC_KERNEL void st_divide(const int* a, int b, int* out)
{
    out[threadIdx.x] = a[threadIdx.x] / b;
}

__device__ int st_recurse(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    return n <= 0 ? pad[0] : st_recurse(n - 1) + pad[0];
}

DICC_KERNEL void st_stack_overflow(int* out, int depth)
{
    out[threadIdx.x] = st_recurse(depth);
}

// Grid-stride fill over a 3-D grid of 3-D blocks: every element written once with its global coordinates.
DICC_KERNEL void st_coordinates(unsigned* out)
{
    const unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned i = bx * (blockDim.x * blockDim.y * blockDim.z) + tx;
    out[i] = (blockIdx.z << 24) | (blockIdx.y << 16) | (blockIdx.x << 12) | (threadIdx.z << 8) | (threadIdx.y << 4) | threadIdx.x;
}
