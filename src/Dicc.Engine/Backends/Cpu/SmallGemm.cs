using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// Products too small for packing to pay (the classifier head's, a few microseconds each), computed straight from A
/// and B on the calling thread with AVX-512. Packing, buffers and the blocked loops cost as much as the arithmetic
/// there: the 512 -> 7 head ran at 50-105 GFLOP/s where OpenBLAS's small-matrix kernels reach 106-173
/// (docs/benchmarks.md, "CPU GEMM").
/// </summary>
/// <remarks>
/// With B not transposed (NN, TN) each block of 4 rows by 64 columns of C is one FMA chain per element over p in
/// order, then <c>alpha * acc</c> or <c>fma(beta, c, alpha * acc)</c>: the micro-kernel's arithmetic for a product of
/// one K slice (K at most <see cref="MaxK"/> there), so the result is bit-identical to the blocked GEMM's. With B transposed
/// and A not (NT: rows of both contiguous along p) and K a multiple of 16, each element is a dot product in 16 lanes, added across lanes at the
/// end: a different order from the blocked GEMM's, fixed for the shape.
/// </remarks>
internal static unsafe class SmallGemm
{
    /// <summary>
    /// At most this many multiply-adds for the dot products, and for the row updates (which sum as the blocked GEMM
    /// does, so only speed decides) up to what the blocked GEMM also runs on one thread (the MLP's 128 x 128 x 32).
    /// </summary>
    private const long MaxDotWork = 1L << 17, MaxRowUpdateWork = 1L << 19;

    /// <summary>At most the blocked GEMM's K slice, so that a row update sums as the micro-kernel does.</summary>
    private const int MaxK = 384;

    /// <summary>Off with <c>DICC_GEMM_SMALL=0</c> (or from a test): every product then runs the blocked GEMM.</summary>
    internal static bool Enabled = Environment.GetEnvironmentVariable("DICC_GEMM_SMALL") != "0";

    /// <summary>Whether <paramref name="p"/> runs here.</summary>
    public static bool Handles(in GemmProblem p) =>
        Enabled && Avx512F.IsSupported && !p.ImplicitB && !p.TransposedC && p.RowBias == null &&
        (p.TransB ? !p.TransA && p.K % 16 == 0 && (long)p.M * p.N * p.K <= MaxDotWork : p.K <= MaxK && (long)p.M * p.N * p.K <= MaxRowUpdateWork);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(in GemmProblem p)
    {
        if (p.TransB) Dots(p);
        else RowUpdates(p);
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

    /// <summary>C = alpha A B^T (+ beta C), A stored [m, k], B stored [n, k]: blocks of 2 rows and 8 columns of dot products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dots(in GemmProblem p)
    {
        float* sums = stackalloc float[16];
        int lastRow = p.M - 1, lastCol = p.N - 1;
        var va = Vector256.Create(p.Alpha);
        var vb = Vector256.Create(p.Beta);
        for (int i0 = 0; i0 < p.M; i0 += 2)
            for (int j0 = 0; j0 < p.N; j0 += 8)
            {
                // Rows and columns past the edges repeat the last one (their sums are not stored).
                float* a0 = p.A + (long)Math.Min(i0, lastRow) * p.Lda, a1 = p.A + (long)Math.Min(i0 + 1, lastRow) * p.Lda;
                DotBlock(p.K, a0, a1, p.B + (long)j0 * p.Ldb, p.Ldb, Math.Min(7, lastCol - j0), sums);
                var mask = LaneMasks.First256(p.N - j0);
                for (int r = 0; r < Math.Min(2, p.M - i0); r++)
                {
                    float* c = p.C + (long)(i0 + r) * p.Ldc + j0;
                    var v = Vector256.Load(sums + r * 8) * va;
                    if (p.Beta != 0f) v = Fma.MultiplyAdd(vb, Avx.MaskLoad(c, mask), v);
                    Avx.MaskStore(c, mask, v);
                }
            }
    }

    /// <summary>sums[r * 8 + j] = a_r . b_j for rows a0, a1 and columns b_j = b + min(j, lastJ) * ldb, each over k (a multiple of 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotBlock(int k, float* a0, float* a1, float* b, nint ldb, int lastJ, float* sums)
    {
        float* b0 = b, b1 = b + Math.Min(1, lastJ) * ldb, b2 = b + Math.Min(2, lastJ) * ldb, b3 = b + Math.Min(3, lastJ) * ldb;
        float* b4 = b + Math.Min(4, lastJ) * ldb, b5 = b + Math.Min(5, lastJ) * ldb, b6 = b + Math.Min(6, lastJ) * ldb;
        float* b7 = b + Math.Min(7, lastJ) * ldb;
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s04 = default, s05 = default, s06 = default, s07 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default, s14 = default, s15 = default, s16 = default, s17 = default;
        for (int q = 0; q < k; q += 16)
        {
            var x0 = Vector512.Load(a0 + q);
            var x1 = Vector512.Load(a1 + q);
            var y = Vector512.Load(b0 + q);
            s00 = Avx512F.FusedMultiplyAdd(x0, y, s00); s10 = Avx512F.FusedMultiplyAdd(x1, y, s10);
            y = Vector512.Load(b1 + q);
            s01 = Avx512F.FusedMultiplyAdd(x0, y, s01); s11 = Avx512F.FusedMultiplyAdd(x1, y, s11);
            y = Vector512.Load(b2 + q);
            s02 = Avx512F.FusedMultiplyAdd(x0, y, s02); s12 = Avx512F.FusedMultiplyAdd(x1, y, s12);
            y = Vector512.Load(b3 + q);
            s03 = Avx512F.FusedMultiplyAdd(x0, y, s03); s13 = Avx512F.FusedMultiplyAdd(x1, y, s13);
            y = Vector512.Load(b4 + q);
            s04 = Avx512F.FusedMultiplyAdd(x0, y, s04); s14 = Avx512F.FusedMultiplyAdd(x1, y, s14);
            y = Vector512.Load(b5 + q);
            s05 = Avx512F.FusedMultiplyAdd(x0, y, s05); s15 = Avx512F.FusedMultiplyAdd(x1, y, s15);
            y = Vector512.Load(b6 + q);
            s06 = Avx512F.FusedMultiplyAdd(x0, y, s06); s16 = Avx512F.FusedMultiplyAdd(x1, y, s16);
            y = Vector512.Load(b7 + q);
            s07 = Avx512F.FusedMultiplyAdd(x0, y, s07); s17 = Avx512F.FusedMultiplyAdd(x1, y, s17);
        }
        Vector256.Store(AddLanes(s00, s01, s02, s03, s04, s05, s06, s07), sums);
        Vector256.Store(AddLanes(s10, s11, s12, s13, s14, s15, s16, s17), sums + 8);
    }

    /// <summary>The lane sums of eight vectors, as one vector (halves folded, then a tree of horizontal adds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> AddLanes(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7)
    {
        static Vector256<float> Fold(Vector512<float> v) => v.GetLower() + v.GetUpper();
        var h01 = Avx.HorizontalAdd(Fold(v0), Fold(v1)); // v0 01 23, v1 01 23 | v0 45 67, v1 45 67
        var h23 = Avx.HorizontalAdd(Fold(v2), Fold(v3));
        var h45 = Avx.HorizontalAdd(Fold(v4), Fold(v5));
        var h67 = Avx.HorizontalAdd(Fold(v6), Fold(v7));
        var q0 = Avx.HorizontalAdd(h01, h23); // v0..v3 lanes 0-3 | v0..v3 lanes 4-7
        var q1 = Avx.HorizontalAdd(h45, h67);
        return Avx.Permute2x128(q0, q1, 0x20) + Avx.Permute2x128(q0, q1, 0x31);
    }
}
