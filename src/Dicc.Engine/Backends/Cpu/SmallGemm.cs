using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// Products too small for packing to pay (the classifier head's and the mapping MLP's, a few microseconds each),
/// computed straight from A and B on the calling thread with AVX-512. Packing, buffers and the blocked loops cost as much
/// as the arithmetic there: the head's weight gradient ran at 50-55 GFLOP/s where OpenBLAS's small-matrix kernels reach
/// 150 (docs/benchmarks.md, "CPU GEMM").
/// </summary>
/// <remarks>
/// Both forms compute each element as the micro-kernel does: one FMA chain over p in order per K slice of the blocked
/// GEMM (equal slices of at most <see cref="MaxK"/>), then <c>alpha * acc</c> or <c>fma(beta, c, alpha * acc)</c>, so
/// results are bit-identical to the blocked GEMM's (tests compare them). B stored [k, n]: blocks of 4 rows by 64 columns
/// of C (K at most one slice). B stored [n, k] with few columns: 16-row strips of A transposed, against 8 columns.
/// (Dot products in lanes for the latter were faster but summed in another order, which broke the reference path's
/// bit-identity with the fast path's implicit-GEMM filter gradient.)
/// </remarks>
internal static unsafe class SmallGemm
{
    /// <summary>At most this many multiply-adds: what the blocked GEMM also runs on one thread (up to the MLP's 128 x 128 x 32).</summary>
    private const long MaxWork = 1L << 19;

    /// <summary>At most the blocked GEMM's K slice, so that a row update sums as the micro-kernel does.</summary>
    private const int MaxK = 384;

    /// <summary>Off with <c>DICC_GEMM_SMALL=0</c> (or from a test): every product then runs the blocked GEMM.</summary>
    internal static bool Enabled = Environment.GetEnvironmentVariable("DICC_GEMM_SMALL") != "0";

    /// <summary>At most this many columns for a product with B stored [n, k] (the 512 -> 7 head's forward).</summary>
    private const int MaxThinColumns = 16;

    /// <summary>Whether <paramref name="p"/> runs here.</summary>
    public static bool Handles(in GemmProblem p) =>
        Enabled && Avx512F.IsSupported && !p.ImplicitB && !p.TransposedC && p.RowBias == null &&
        (long)p.M * p.N * p.K <= MaxWork &&
        (p.TransB ? !p.TransA && p.N <= MaxThinColumns : p.K <= MaxK);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(in GemmProblem p)
    {
        if (p.TransB) ThinColumns(p);
        else RowUpdates(p);
    }

    /// <summary>
    /// C = alpha A B^T (+ beta C), A stored [m, k], B stored [n, k] with n at most 16: 16 rows of A at a time are
    /// transposed into a buffer, so that one vector holds 16 rows' values of one p, and each of 8 columns is one FMA chain
    /// per row over p, in the blocked GEMM's K slices (equal slices of at most <see cref="MaxK"/>, each added to C with
    /// the micro-kernel's final step): bit-identical to it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ThinColumns(in GemmProblem p)
    {
        float* at = GemmBuffers.ForThisThread(16L * p.K, 0, 0).A;
        float* scratch = stackalloc float[8 * 16];
        int slices = (p.K + MaxK - 1) / MaxK;
        for (int i0 = 0; i0 < p.M; i0 += 16)
        {
            int rows = Math.Min(16, p.M - i0);
            GemmPacking.Transpose(p.A + (long)i0 * p.Lda, p.Lda, rows, p.K, at, 16);
            for (int j0 = 0; j0 < p.N; j0 += 8)
            {
                int cols = Math.Min(8, p.N - j0);
                for (int slice = 0; slice < slices; slice++)
                {
                    int q0 = (int)((long)p.K * slice / slices), q1 = (int)((long)p.K * (slice + 1) / slices);
                    ColumnSlice(at, q0, q1, p.B + (long)j0 * p.Ldb, p.Ldb, cols - 1, scratch);
                    float beta = slice == 0 ? p.Beta : 1f;
                    for (int j = 0; j < cols; j++)
                        for (int r = 0; r < rows; r++)
                        {
                            float* c = p.C + (long)(i0 + r) * p.Ldc + j0 + j;
                            float scaled = p.Alpha * scratch[j * 16 + r];
                            *c = beta == 0f ? scaled : MathF.FusedMultiplyAdd(beta, *c, scaled);
                        }
                }
            }
        }
    }

    /// <summary>
    /// scratch[j * 16 + r] = sum over q in [q0, q1) of at[q * 16 + r] * b_j[q] (one FMA chain per element, q ascending)
    /// for columns b_j = b + min(j, lastJ) * ldb, j in [0, 8).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ColumnSlice(float* at, int q0, int q1, float* b, nint ldb, int lastJ, float* scratch)
    {
        float* b0 = b, b1 = b + Math.Min(1, lastJ) * ldb, b2 = b + Math.Min(2, lastJ) * ldb, b3 = b + Math.Min(3, lastJ) * ldb;
        float* b4 = b + Math.Min(4, lastJ) * ldb, b5 = b + Math.Min(5, lastJ) * ldb, b6 = b + Math.Min(6, lastJ) * ldb;
        float* b7 = b + Math.Min(7, lastJ) * ldb;
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        for (int q = q0; q < q1; q++)
        {
            var a = Vector512.Load(at + q * 16);
            s0 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b0[q]), s0);
            s1 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b1[q]), s1);
            s2 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b2[q]), s2);
            s3 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b3[q]), s3);
            s4 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b4[q]), s4);
            s5 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b5[q]), s5);
            s6 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b6[q]), s6);
            s7 = Avx512F.FusedMultiplyAdd(a, Vector512.Create(b7[q]), s7);
        }
        Vector512.Store(s0, scratch); Vector512.Store(s1, scratch + 16); Vector512.Store(s2, scratch + 32); Vector512.Store(s3, scratch + 48);
        Vector512.Store(s4, scratch + 64); Vector512.Store(s5, scratch + 80); Vector512.Store(s6, scratch + 96); Vector512.Store(s7, scratch + 112);
    }

    /// <summary>C = alpha op(A) B (+ beta C), B stored [k, n]: blocks of 4 rows and 64 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowUpdates(in GemmProblem p)
    {
        nint ai = p.TransA ? 1 : p.Lda, ap = p.TransA ? p.Lda : 1;
        for (int j0 = 0; j0 < p.N; j0 += 64)
        {
            int cols = Math.Min(64, p.N - j0);
            for (int i0 = 0; i0 < p.M; i0 += 4)
            {
                // Rows past M repeat the last row (their sums are not stored), so the block needs no variants.
                int last = p.M - 1;
                RowBlock(p.K, p.A + Math.Min(i0, last) * ai, p.A + Math.Min(i0 + 1, last) * ai, p.A + Math.Min(i0 + 2, last) * ai,
                    p.A + Math.Min(i0 + 3, last) * ai, ap, p.B + j0, p.Ldb, cols, p.C + (long)i0 * p.Ldc + j0, p.Ldc,
                    Math.Min(4, p.M - i0), p.Alpha, p.Beta);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowBlock(int k, float* a0, float* a1, float* a2, float* a3, nint ap, float* b, nint ldb, int cols,
        float* c, nint ldc, int rows, float alpha, float beta)
    {
        Vector512<float> m0 = LaneMasks.First512(cols), m1 = LaneMasks.First512(cols - 16);
        Vector512<float> m2 = LaneMasks.First512(cols - 32), m3 = LaneMasks.First512(cols - 48);
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        var zero = Vector512<float>.Zero;
        bool full = cols == 64;
        for (int q = 0; q < k; q++, b += ldb)
        {
            Vector512<float> b0, b1, b2, b3;
            if (full)
            {
                b0 = Vector512.Load(b); b1 = Vector512.Load(b + 16); b2 = Vector512.Load(b + 32); b3 = Vector512.Load(b + 48);
            }
            else
            {
                b0 = Avx512F.MaskLoad(b, m0, zero); b1 = Avx512F.MaskLoad(b + 16, m1, zero);
                b2 = Avx512F.MaskLoad(b + 32, m2, zero); b3 = Avx512F.MaskLoad(b + 48, m3, zero);
            }
            nint o = q * ap;
            var x = Vector512.Create(a0[o]);
            c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            c02 = Avx512F.FusedMultiplyAdd(x, b2, c02); c03 = Avx512F.FusedMultiplyAdd(x, b3, c03);
            x = Vector512.Create(a1[o]);
            c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            c12 = Avx512F.FusedMultiplyAdd(x, b2, c12); c13 = Avx512F.FusedMultiplyAdd(x, b3, c13);
            x = Vector512.Create(a2[o]);
            c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            c22 = Avx512F.FusedMultiplyAdd(x, b2, c22); c23 = Avx512F.FusedMultiplyAdd(x, b3, c23);
            x = Vector512.Create(a3[o]);
            c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            c32 = Avx512F.FusedMultiplyAdd(x, b2, c32); c33 = Avx512F.FusedMultiplyAdd(x, b3, c33);
        }
        StoreRow(c, full, m0, m1, m2, m3, c00, c01, c02, c03, alpha, beta);
        if (rows > 1) StoreRow(c + ldc, full, m0, m1, m2, m3, c10, c11, c12, c13, alpha, beta);
        if (rows > 2) StoreRow(c + 2 * ldc, full, m0, m1, m2, m3, c20, c21, c22, c23, alpha, beta);
        if (rows > 3) StoreRow(c + 3 * ldc, full, m0, m1, m2, m3, c30, c31, c32, c33, alpha, beta);
    }

    /// <summary>c = alpha * acc, or fma(beta, c, alpha * acc), on the columns the masks select.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, bool full, Vector512<float> m0, Vector512<float> m1, Vector512<float> m2, Vector512<float> m3,
        Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, float alpha, float beta)
    {
        var va = Vector512.Create(alpha);
        v0 *= va; v1 *= va; v2 *= va; v3 *= va;
        if (full && beta == 0f)
        {
            Vector512.Store(v0, c); Vector512.Store(v1, c + 16); Vector512.Store(v2, c + 32); Vector512.Store(v3, c + 48);
            return;
        }
        if (beta != 0f)
        {
            var vb = Vector512.Create(beta);
            var zero = Vector512<float>.Zero;
            v0 = Avx512F.FusedMultiplyAdd(vb, Avx512F.MaskLoad(c, m0, zero), v0);
            v1 = Avx512F.FusedMultiplyAdd(vb, Avx512F.MaskLoad(c + 16, m1, zero), v1);
            v2 = Avx512F.FusedMultiplyAdd(vb, Avx512F.MaskLoad(c + 32, m2, zero), v2);
            v3 = Avx512F.FusedMultiplyAdd(vb, Avx512F.MaskLoad(c + 48, m3, zero), v3);
        }
        Avx512F.MaskStore(c, m0, v0);
        Avx512F.MaskStore(c + 16, m1, v1);
        Avx512F.MaskStore(c + 32, m2, v2);
        Avx512F.MaskStore(c + 48, m3, v3);
    }
}
