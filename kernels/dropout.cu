// Inverted dropout with masks identical to the CPU backend's (CpuBackend.DropoutForwardCore).
#include "common.cuh"

// x, y, mask [n]. mask[i] = scale when u_i >= p else 0, y[i] = x[i] * mask[i], where u_i is word
// (offset + i) of Philox stream 0 under seed, as a uniform float (Philox.Word + Philox.ToUniform), and
// scale = 1 / (1 - p) computed by the caller in float (so the CPU and GPU use the same value).
// Each thread draws one Philox block (four words) and writes the up to four elements that use it.
DICC_KERNEL void dropout_forward_f32(const float* x, float* y, float* mask, i64 n, float p, float scale,
                                     u64 seed, u64 offset)
{
    if (n <= 0) return;
    const u64 first_block = offset >> 2;
    const u64 blocks = ((offset + (u64)n - 1) >> 2) - first_block + 1;
    for (u64 t = (u64)blockIdx.x * blockDim.x + threadIdx.x; t < blocks; t += (u64)gridDim.x * blockDim.x)
    {
        const u64 block = first_block + t;
        const uint4 r = dicc_philox4x32_10(seed, 0, block);
        const u32 words[4] = { r.x, r.y, r.z, r.w };
        #pragma unroll
        for (int j = 0; j < 4; j++)
        {
            const u64 counter = block * 4 + j;
            if (counter < offset) continue;
            const u64 i = counter - offset;
            if (i >= (u64)n) break;
            const float m = dicc_uniform(words[j]) >= p ? scale : 0.0f;
            mask[i] = m;
            y[i] = x[i] * m;
        }
    }
}
