// Bias terms of the linear and convolution layers and their gradients (the GEMMs and convolutions themselves
// are cuBLAS and cuDNN). Sums are in double in a fixed order, as in the CPU backend.
#include "common.cuh"

// y [rows, cols] += bias [cols] (the linear layer's bias, added after the GEMM as on the CPU).
DICC_KERNEL void add_row_bias_f32(float* y, const float* bias, int rows, int cols)
{
    DICC_GRID_STRIDE(idx, (i64)rows * cols)
    {
        const int j = (int)(idx % cols);
        y[idx] = __fadd_rn(y[idx], bias[j]);
    }
}

// y [n, channels, spatial] += bias [channels] (the convolution's bias).
DICC_KERNEL void add_channel_bias_f32(float* y, const float* bias, int channels, int spatial, i64 total)
{
    DICC_GRID_STRIDE(idx, total)
    {
        const int ch = (int)((idx / spatial) % channels);
        y[idx] = __fadd_rn(y[idx], bias[ch]);
    }
}

// sums [cols] = column sums of dy [rows, cols] (the linear bias gradient): one thread per column adds the rows
// in ascending order in double, exactly the CPU's loop, so the result is bit for bit the CPU's.
DICC_KERNEL void column_sums_f32(const float* dy, float* sums, int rows, int cols)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    double acc = 0.0;
    for (int i = 0; i < rows; i++) acc = __dadd_rn(acc, (double)dy[(i64)i * cols + j]);
    sums[j] = __double2float_rn(acc);
}

// Channel sums (the convolution bias gradient), step 1 of 2. dy [n, channels, spatial]; partials [channels,
// segments] (double): segment seg of channel ch's n * spatial values, summed by one block. Grid (segments, channels).
DICC_KERNEL void channel_partial_sums_f32(const float* dy, double* partials, int n, int channels, int spatial, int segments)
{
    __shared__ double scratch[32];
    const int ch = blockIdx.y, seg = blockIdx.x;
    const i64 m = (i64)n * spatial;
    const int begin = (int)(m * seg / segments), end = (int)(m * (seg + 1) / segments);
    double acc = 0.0;
    for (int t = begin + threadIdx.x; t < end; t += blockDim.x)
    {
        const int i = t / spatial, j = t - i * spatial;
        acc += (double)dy[((i64)i * channels + ch) * spatial + j];
    }
    acc = dicc_block_sum(acc, scratch);
    if (threadIdx.x == 0) partials[(i64)ch * segments + seg] = acc;
}

// Channel sums, step 2 of 2: one thread per channel adds its segments in order. partials [channels, segments],
// sums [channels].
DICC_KERNEL void channel_sums_finalize_f32(const double* partials, float* sums, int channels, int segments)
{
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= channels) return;
    double acc = 0.0;
    for (int seg = 0; seg < segments; seg++) acc += partials[(i64)ch * segments + seg];
    sums[ch] = __double2float_rn(acc);
}
