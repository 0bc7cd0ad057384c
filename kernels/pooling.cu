// Max pooling over [N, C, H, W] with the CPU backend's rules (CpuBackend.Pooling.cs): windows are scanned in
// row-major order, the first maximum wins (a later equal value does not), NaN wins at once, and padding never
// wins. The backward pass gathers, for each input, the gradients of the windows whose winner it is, in
// ascending window order (the CPU's order of additions), so it is deterministic and equals the CPU bit for bit.
#include "common.cuh"

// The pooling geometry (Kernels/TrainingKernels.cs mirrors this layout). 44 bytes.
struct DiccPoolShape
{
    int planes; // N * C
    int h, w;   // input
    int window_h, window_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int p, q;   // output
};

// Index (h * W + w) within its plane of the winner of window (pp, qq); -1 when the window holds no input.
__device__ __forceinline__ int dicc_pool_winner(const float* plane, const DiccPoolShape& s, int pp, int qq)
{
    const int h0 = pp * s.stride_h - s.pad_h, w0 = qq * s.stride_w - s.pad_w;
    int best = -1;
    float best_value = DICC_NEG_INF;
    for (int r = 0; r < s.window_h; r++)
    {
        const int h = h0 + r;
        if ((unsigned)h >= (unsigned)s.h) continue;
        for (int c = 0; c < s.window_w; c++)
        {
            const int w = w0 + c;
            if ((unsigned)w >= (unsigned)s.w) continue;
            const float v = plane[h * s.w + w];
            const bool nan = v != v;
            if (best < 0 || v > best_value || nan)
            {
                best = h * s.w + w;
                best_value = v;
                if (nan) return best;
            }
        }
    }
    return best;
}

// x [planes, H, W] -> y [planes, P, Q]: each output is its window's winning value. One thread per output.
DICC_KERNEL void maxpool_forward_f32(const float* x, float* y, DiccPoolShape s)
{
    const long long outputs = (long long)s.planes * s.p * s.q;
    DICC_GRID_STRIDE(idx, outputs)
    {
        const long long plane = idx / ((long long)s.p * s.q);
        const int o = (int)(idx - plane * s.p * s.q), pp = o / s.q, qq = o - pp * s.q;
        const float* src = x + plane * s.h * s.w;
        const int best = dicc_pool_winner(src, s, pp, qq);
        y[idx] = best >= 0 ? src[best] : DICC_NEG_INF;
    }
}

// dx [planes, H, W] = sum over the windows (pp, qq) that contain input (h, w) and whose winner it is of
// dy [planes, P, Q], summed in ascending (pp, qq) order from 0. x is the forward input. One thread per input.
DICC_KERNEL void maxpool_backward_f32(const float* x, const float* dy, float* dx, DiccPoolShape s)
{
    const long long inputs = (long long)s.planes * s.h * s.w;
    DICC_GRID_STRIDE(idx, inputs)
    {
        const long long plane = idx / ((long long)s.h * s.w);
        const int position = (int)(idx - plane * s.h * s.w), h = position / s.w, w = position - h * s.w;
        const float* src = x + plane * s.h * s.w;
        const float* grad = dy + plane * s.p * s.q;
        // Windows pp with pp * stride - pad <= h <= pp * stride - pad + window - 1, clamped to [0, P).
        const int hp = h + s.pad_h, wp = w + s.pad_w;
        const int p_first = max(0, hp - s.window_h + s.stride_h) / s.stride_h;
        const int p_last = min(s.p - 1, hp / s.stride_h);
        const int q_first = max(0, wp - s.window_w + s.stride_w) / s.stride_w;
        const int q_last = min(s.q - 1, wp / s.stride_w);
        float sum = 0.0f;
        for (int pp = p_first; pp <= p_last; pp++)
            for (int qq = q_first; qq <= q_last; qq++)
                if (dicc_pool_winner(src, s, pp, qq) == position) sum = __fadd_rn(sum, grad[pp * s.q + qq]);
        dx[idx] = sum;
    }
}
