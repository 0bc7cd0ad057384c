// Optimiser updates over flat parameter buffers.
#include "common.cuh"

// w, g, v [n]. SGD with momentum and weight decay, PyTorch semantics (dampening 0), the same formula and
// rounding as CpuBackend.SgdStepCore:
//   g' = g + wd * w;  v = mu * v + g';  w -= lr * (nesterov ? g' + mu * v : v)
// The _rn intrinsics keep the compiler from fusing multiply-adds, so the result equals the CPU's bit for bit.
DICC_KERNEL void sgd_step_f32(float* w, const float* g, float* v, i64 n, float lr, float mu, float wd, int nesterov)
{
    DICC_GRID_STRIDE(i, n)
    {
        const float wi = w[i];
        const float gi = __fadd_rn(g[i], __fmul_rn(wd, wi));
        const float vi = __fadd_rn(__fmul_rn(mu, v[i]), gi);
        v[i] = vi;
        const float step = nesterov ? __fadd_rn(gi, __fmul_rn(mu, vi)) : vi;
        w[i] = __fsub_rn(wi, __fmul_rn(lr, step));
    }
}
