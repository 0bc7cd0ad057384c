// Batch normalisation over [N, C, S] (S = H*W; 1 for [N, C] input), PyTorch semantics, the arithmetic of
// CpuBackend.Normalization.cs: statistics in double, the running variance unbiased, and every float operation
// of the CPU's formulas written with _rn intrinsics (no contraction), so outputs differ from the CPU only through
// the statistics' summation order.
//
// Each reduction is split into a fixed number of segments per channel (chosen from the shape alone by the
// host), summed by one block each, and combined in segment order: the result does not depend on timing.
#include "common.cuh"

// The shape arguments of every batch-norm kernel (Kernels/TrainingKernels.cs mirrors this layout). 24 bytes.
struct DiccNormShape
{
    int n;        // N
    int c;        // C
    int spatial;  // S = H * W
    int segments; // reduction segments per channel
    float momentum;
    float epsilon;
};

// Elements [begin, end) of channel ch's n * spatial values in segment seg; t = i * spatial + j is value j of
// image i, at x[(i * C + ch) * S + j].
__device__ __forceinline__ void dicc_segment(const DiccNormShape& s, int seg, int* begin, int* end)
{
    const long long m = (long long)s.n * s.spatial;
    *begin = (int)(m * seg / s.segments);
    *end = (int)(m * (seg + 1) / s.segments);
}

__device__ __forceinline__ long long dicc_nchw(const DiccNormShape& s, int ch, int t)
{
    const int i = t / s.spatial, j = t - i * s.spatial;
    return ((long long)i * s.c + ch) * s.spatial + j;
}

// Training statistics, step 1 of 3. x [N, C, S]; partials [C, segments, 2] (double): per segment, the sum of
// d = x - K and of d * d, where K = x[0, ch, 0] (a shift that keeps the one-pass variance accurate).
// Grid (segments, C), blockDim.x a multiple of 32.
DICC_KERNEL void batchnorm_partial_sums_f32(const float* x, double* partials, DiccNormShape s)
{
    __shared__ double scratch[32];
    const int ch = blockIdx.y, seg = blockIdx.x;
    int begin, end;
    dicc_segment(s, seg, &begin, &end);
    const double shift = (double)x[(long long)ch * s.spatial];
    double sum = 0.0, squares = 0.0;
    for (int t = begin + threadIdx.x; t < end; t += blockDim.x)
    {
        const double d = (double)x[dicc_nchw(s, ch, t)] - shift;
        sum += d;
        squares = fma(d, d, squares);
    }
    sum = dicc_block_sum(sum, scratch);
    squares = dicc_block_sum(squares, scratch);
    if (threadIdx.x == 0)
    {
        partials[2 * ((long long)ch * s.segments + seg)] = sum;
        partials[2 * ((long long)ch * s.segments + seg) + 1] = squares;
    }
}

// Training statistics, step 2 of 3: one thread per channel. partials [C, segments, 2] -> the batch mean and
// biased variance; save_mean, save_inv_std [C] = mean, 1 / sqrt(var + eps); running_mean, running_var [C] updated
// as running = (1 - momentum) * running + momentum * batch with the unbiased variance (CPU formula, operation by
// operation); scale_shift [C, 2] = (gamma * inv_std, beta - mean * scale) for step 3. x [N, C, S] (for the shift).
DICC_KERNEL void batchnorm_finalize_f32(const double* partials, const float* x, const float* gamma, const float* beta,
                                        float* running_mean, float* running_var, float* save_mean, float* save_inv_std,
                                        float* scale_shift, DiccNormShape s)
{
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= s.c) return;
    double sum = 0.0, squares = 0.0;
    for (int seg = 0; seg < s.segments; seg++)
    {
        sum += partials[2 * ((long long)ch * s.segments + seg)];
        squares += partials[2 * ((long long)ch * s.segments + seg) + 1];
    }
    const double m = (double)((long long)s.n * s.spatial);
    const double shift = (double)x[(long long)ch * s.spatial];
    const double mean = shift + sum / m;
    // Sum of squared deviations from the mean: sum d^2 - (sum d)^2 / m, never negative.
    const double deviations = fmax(squares - sum * sum / m, 0.0);
    const double variance = deviations / m;
    const float inv_std = __double2float_rn(1.0 / sqrt(variance + (double)s.epsilon));
    const float mean_f = __double2float_rn(mean);
    const float scale = __fmul_rn(gamma[ch], inv_std);
    scale_shift[2 * ch] = scale;
    scale_shift[2 * ch + 1] = __fsub_rn(beta[ch], __fmul_rn(mean_f, scale));
    save_mean[ch] = mean_f;
    save_inv_std[ch] = inv_std;
    // (float)((1 - momentum) * running + momentum * batch): a float product widened, plus a double product.
    const float keep = __fsub_rn(1.0f, s.momentum);
    running_mean[ch] = __double2float_rn(__dadd_rn((double)__fmul_rn(keep, running_mean[ch]), __dmul_rn((double)s.momentum, mean)));
    const double unbiased = deviations / (m - 1.0);
    running_var[ch] = __double2float_rn(__dadd_rn((double)__fmul_rn(keep, running_var[ch]), __dmul_rn((double)s.momentum, unbiased)));
}

// Evaluation: one thread per channel. scale_shift [C, 2] = (gamma / sqrt(running_var + eps),
// beta - running_mean * scale) in float, as the CPU computes them. gamma, beta, running_mean, running_var [C].
DICC_KERNEL void batchnorm_inference_params_f32(const float* gamma, const float* beta, const float* running_mean,
                                                const float* running_var, float* scale_shift, int c, float epsilon)
{
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    const float scale = __fdiv_rn(gamma[ch], __fsqrt_rn(__fadd_rn(running_var[ch], epsilon)));
    scale_shift[2 * ch] = scale;
    scale_shift[2 * ch + 1] = __fsub_rn(beta[ch], __fmul_rn(running_mean[ch], scale));
}

// Step 3 of 3 (training and evaluation): y [N, C, S] = x * scale[c] + shift[c], a product then a sum, each
// rounded (the CPU's two operations). x and y may be the same buffer. scale_shift [C, 2]. total = N * C * S.
DICC_KERNEL void batchnorm_apply_f32(const float* x, float* y, const float* scale_shift, int c, int spatial, int total)
{
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x)
    {
        const int ch = (idx / spatial) % c;
        y[idx] = __fadd_rn(__fmul_rn(x[idx], scale_shift[2 * ch]), scale_shift[2 * ch + 1]);
    }
}

// Backward, step 1 of 3. x, dy [N, C, S]; save_mean, save_inv_std [C]; partials [C, segments, 2] (double): per
// segment, sum dy and sum dy * xhat with xhat = (x - mean) * inv_std in float (as the CPU). Grid (segments, C).
DICC_KERNEL void batchnorm_backward_partial_sums_f32(const float* x, const float* dy, const float* save_mean,
                                                     const float* save_inv_std, double* partials, DiccNormShape s)
{
    __shared__ double scratch[32];
    const int ch = blockIdx.y, seg = blockIdx.x;
    int begin, end;
    dicc_segment(s, seg, &begin, &end);
    const float mean = save_mean[ch], inv_std = save_inv_std[ch];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int t = begin + threadIdx.x; t < end; t += blockDim.x)
    {
        const long long o = dicc_nchw(s, ch, t);
        const double g = (double)dy[o];
        const float xhat = __fmul_rn(__fsub_rn(x[o], mean), inv_std);
        sum_dy += g;
        sum_dy_xhat = fma(g, (double)xhat, sum_dy_xhat);
    }
    sum_dy = dicc_block_sum(sum_dy, scratch);
    sum_dy_xhat = dicc_block_sum(sum_dy_xhat, scratch);
    if (threadIdx.x == 0)
    {
        partials[2 * ((long long)ch * s.segments + seg)] = sum_dy;
        partials[2 * ((long long)ch * s.segments + seg) + 1] = sum_dy_xhat;
    }
}

// Backward, step 2 of 3: one thread per channel. dbeta = sum dy, dgamma = sum dy * xhat (overwritten);
// coefficients [C, 3] = (gamma * inv_std, mean(dy), mean(dy * xhat)) in float for step 3. gamma, save_inv_std [C].
DICC_KERNEL void batchnorm_backward_finalize_f32(const double* partials, const float* gamma, const float* save_inv_std,
                                                 float* dgamma, float* dbeta, float* coefficients, DiccNormShape s)
{
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= s.c) return;
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int seg = 0; seg < s.segments; seg++)
    {
        sum_dy += partials[2 * ((long long)ch * s.segments + seg)];
        sum_dy_xhat += partials[2 * ((long long)ch * s.segments + seg) + 1];
    }
    const double m = (double)((long long)s.n * s.spatial);
    dbeta[ch] = __double2float_rn(sum_dy);
    dgamma[ch] = __double2float_rn(sum_dy_xhat);
    coefficients[3 * ch] = __fmul_rn(gamma[ch], save_inv_std[ch]);
    coefficients[3 * ch + 1] = __double2float_rn(sum_dy / m);
    coefficients[3 * ch + 2] = __double2float_rn(sum_dy_xhat / m);
}

// Backward, step 3 of 3: dx [N, C, S] = k * ((dy - mean(dy)) - xhat * mean(dy * xhat)), float operations in the
// CPU's order. x, dy [N, C, S]; save_mean, save_inv_std [C]; coefficients [C, 3] from step 2. dx may alias dy.
DICC_KERNEL void batchnorm_backward_apply_f32(const float* x, const float* dy, const float* save_mean, const float* save_inv_std,
                                              const float* coefficients, float* dx, int c, int spatial, int total)
{
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x)
    {
        const int ch = (idx / spatial) % c;
        const float xhat = __fmul_rn(__fsub_rn(x[idx], save_mean[ch]), save_inv_std[ch]);
        const float centred = __fsub_rn(__fsub_rn(dy[idx], coefficients[3 * ch + 1]), __fmul_rn(xhat, coefficients[3 * ch + 2]));
        dx[idx] = __fmul_rn(coefficients[3 * ch], centred);
    }
}

// Row L2 normalisation, PyTorch's F.normalize(x, dim=1, eps=1e-12), for the cosine classifier's head; the arithmetic
// of CpuBackend.Dense.cs (squares and dot products summed in double; only the summation order differs). One block
// per row. x, y [rows, f]; norms [rows] receives |x_i| (unclamped), which the backward pass reads.
DICC_KERNEL void l2_normalize_rows_f32(const float* x, float* y, float* norms, int rows, int f, float eps)
{
    __shared__ double scratch[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    const float* xi = x + (i64)row * f;
    float* yi = y + (i64)row * f;
    double sum = 0.0;
    for (int j = threadIdx.x; j < f; j += blockDim.x) sum += (double)xi[j] * (double)xi[j];
    sum = dicc_block_sum(sum, scratch);
    const float norm = (float)sqrt(sum);
    if (threadIdx.x == 0) norms[row] = norm;
    const float inv = __fdiv_rn(1.0f, fmaxf(norm, eps));
    for (int j = threadIdx.x; j < f; j += blockDim.x) yi[j] = __fmul_rn(xi[j], inv);
}

// The gradient of l2_normalize_rows_f32: dx_i = (dy_i - y_i (y_i . dy_i)) / |x_i|, or dy_i / eps where |x_i| <= eps
// (there y = x / eps is linear). y, dy, dx [rows, f]; norms [rows]. One block per row.
DICC_KERNEL void l2_normalize_rows_backward_f32(const float* y, const float* norms, const float* dy, float* dx, int rows, int f,
                                                float eps)
{
    __shared__ double scratch[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    const float* yi = y + (i64)row * f;
    const float* gi = dy + (i64)row * f;
    float* dxi = dx + (i64)row * f;
    const float norm = norms[row];
    if (!(norm > eps))
    {
        for (int j = threadIdx.x; j < f; j += blockDim.x) dxi[j] = __fdiv_rn(gi[j], eps);
        return;
    }
    double dot = 0.0;
    for (int j = threadIdx.x; j < f; j += blockDim.x) dot += (double)yi[j] * (double)gi[j];
    const float d = (float)dicc_block_sum(dot, scratch);
    const float inv = __fdiv_rn(1.0f, norm);
    for (int j = threadIdx.x; j < f; j += blockDim.x) dxi[j] = __fmul_rn(__fsub_rn(gi[j], __fmul_rn(yi[j], d)), inv);
}
