namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// Single-precision GEMM on row-major matrices: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C,
/// where op(A) = A or A^T (A stored [k,m] when transposed) and likewise for B. Leading dimensions are
/// row strides in elements. beta = 0 ignores whatever C held (NaN included).
/// </summary>
internal static unsafe class Gemm
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (m <= 0 || n <= 0) return;
        ScaleC(m, n, beta, c, ldc);
        if (k <= 0 || alpha == 0f) return;
        long cost = (long)n * k;
        float* ap = a, bp = b, cp = c;
        CpuParallel.For(m, cost, (i0, i1) =>
        {
            for (int i = i0; i < i1; i++)
            {
                float* ci = cp + (long)i * ldc;
                for (int p = 0; p < k; p++)
                {
                    float av = alpha * (transA ? ap[(long)p * lda + i] : ap[(long)i * lda + p]);
                    if (!transB)
                    {
                        float* bpRow = bp + (long)p * ldb;
                        for (int j = 0; j < n; j++) ci[j] += av * bpRow[j];
                    }
                    else
                    {
                        for (int j = 0; j < n; j++) ci[j] += av * bp[(long)j * ldb + p];
                    }
                }
            }
        });
    }

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            float* ci = c + (long)i * ldc;
            if (beta == 0f) new Span<float>(ci, n).Clear();
            else for (int j = 0; j < n; j++) ci[j] *= beta;
        }
    }
}
