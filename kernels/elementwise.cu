// Elementwise float32 kernels: fill, ReLU forward / backward, multiply.
// Each matches the CPU backend bit for bit (one rounding per element, no contractions).
#include "common.cuh"

// x [n] = value
DICC_KERNEL void fill_f32(float* x, float value, i64 n)
{
    DICC_GRID_STRIDE(i, n) x[i] = value;
}

// y [n] = max(x [n], 0); x and y may be the same buffer. NaN gives 0, as the CPU backend's scalar path.
DICC_KERNEL void relu_forward_f32(const float* x, float* y, i64 n)
{
    DICC_GRID_STRIDE(i, n)
    {
        // NaN passes through (as in PyTorch), so a diverging run shows NaN instead of hiding it.
        float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v;
    }
}

// dx [n] = dy [n] where y [n] > 0, else 0 (y is the forward output). dx may alias dy.
DICC_KERNEL void relu_backward_f32(const float* y, const float* dy, float* dx, i64 n)
{
    DICC_GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// c [n] = a [n] * b [n] (the dropout backward with b = mask). c may alias a or b.
DICC_KERNEL void multiply_f32(const float* a, const float* b, float* c, i64 n)
{
    DICC_GRID_STRIDE(i, n) c[i] = a[i] * b[i];
}
