using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// Copies blocks of op(A) and op(B) into the sliver layout the micro-kernels read: an MR-tall sliver of A
/// holds op(A)[i0 + i, p] at [p * MR + i], an NR-wide sliver of B holds op(B)[p, j0 + j] at [p * NR + j],
/// and rows or columns past the matrix edge are zero.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>op(A)[ic : ic + mc, pc : pc + kc] into mc / MR slivers (the last one zero-padded).</summary>
    public static void PackA(in GemmProblem p, int ic, int mc, int pc, int kc, int mr, float* dst)
    {
        for (int s = 0; s < mc; s += mr)
        {
            int rows = Math.Min(mr, mc - s);
            float* d = dst + (long)s * kc;
            // A^T is stored [k, m]: a sliver's MR values for one p are adjacent. A is stored [m, k]: transpose.
            if (p.TransA) PackContiguous(p.A + (long)pc * p.Lda + ic + s, p.Lda, rows, kc, mr, d);
            else PackTransposed(p.A + (long)(ic + s) * p.Lda + pc, p.Lda, rows, kc, mr, d);
        }
    }

    /// <summary>op(B)[pc : pc + kc, jc : jc + nc] into nc / NR slivers (the last one zero-padded).</summary>
    public static void PackB(in GemmProblem p, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        for (int s = 0; s < nc; s += nr)
        {
            int cols = Math.Min(nr, nc - s);
            float* d = dst + (long)s * kc;
            if (p.TransB) PackTransposed(p.B + (long)(jc + s) * p.Ldb + pc, p.Ldb, cols, kc, nr, d);
            else PackContiguous(p.B + (long)pc * p.Ldb + jc + s, p.Ldb, cols, kc, nr, d);
        }
    }

    /// <summary>d[q * width + x] = src[q * stride + x] for x &lt; count; zero for count &lt;= x &lt; width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackContiguous(float* src, long stride, int count, int kc, int width, float* d)
    {
        for (int q = 0; q < kc; q++)
        {
            float* s = src + q * stride, o = d + (long)q * width;
            int x = 0;
            if (Vector256.IsHardwareAccelerated)
                for (; x + 8 <= count; x += 8) Vector256.Store(Vector256.Load(s + x), o + x);
            for (; x < count; x++) o[x] = s[x];
            for (; x < width; x++) o[x] = 0f;
        }
    }

    /// <summary>d[q * width + x] = src[x * stride + q] for x &lt; count; zero for count &lt;= x &lt; width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTransposed(float* src, long stride, int count, int kc, int width, float* d)
    {
        int x = 0;
        if (Avx.IsSupported)
        {
            // 8 source rows at a time, 8 x 8 blocks transposed in registers.
            for (; x + 8 <= count; x += 8)
            {
                float* s0 = src + x * stride;
                int q = 0;
                for (; q + 8 <= kc; q += 8) Transpose8x8(s0 + q, stride, d + (long)q * width + x, width);
                for (; q < kc; q++)
                    for (int r = 0; r < 8; r++) d[(long)q * width + x + r] = s0[r * stride + q];
            }
        }
        for (; x < count; x++)
        {
            float* s = src + x * stride;
            for (int q = 0; q < kc; q++) d[(long)q * width + x] = s[q];
        }
        for (; x < width; x++)
            for (int q = 0; q < kc; q++) d[(long)q * width + x] = 0f;
    }

    /// <summary>o[q * ldo + r] = s[r * lds + q] for r, q in [0, 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* s, long lds, float* o, long ldo)
    {
        Vector256<float> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + lds);
        Vector256<float> r2 = Avx.LoadVector256(s + 2 * lds), r3 = Avx.LoadVector256(s + 3 * lds);
        Vector256<float> r4 = Avx.LoadVector256(s + 4 * lds), r5 = Avx.LoadVector256(s + 5 * lds);
        Vector256<float> r6 = Avx.LoadVector256(s + 6 * lds), r7 = Avx.LoadVector256(s + 7 * lds);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(o, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(o + ldo, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(o + 2 * ldo, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(o + 3 * ldo, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(o + 4 * ldo, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(o + 5 * ldo, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(o + 6 * ldo, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(o + 7 * ldo, Avx.Permute2x128(u3, u7, 0x31));
    }
}

/// <summary>
/// One thread's packing buffers (64-byte aligned native memory), allocated on first use and grown only
/// when a larger block is asked for, so GEMM calls do not allocate. Freed when the thread ends.
/// </summary>
internal sealed unsafe class GemmBuffers
{
    [ThreadStatic] private static GemmBuffers? _current;

    private long _aFloats, _bFloats, _tileFloats;
    public float* A { get; private set; }
    public float* B { get; private set; }
    public float* Tile { get; private set; }

    public static GemmBuffers ForThisThread(int mc, int nc, int kc, int tileFloats)
    {
        var buffers = _current ??= new GemmBuffers();
        buffers.Ensure((long)mc * kc, (long)nc * kc, tileFloats);
        return buffers;
    }

    private void Ensure(long aFloats, long bFloats, long tileFloats)
    {
        if (aFloats > _aFloats) { A = Grow(A, aFloats); _aFloats = aFloats; }
        if (bFloats > _bFloats) { B = Grow(B, bFloats); _bFloats = bFloats; }
        if (tileFloats > _tileFloats) { Tile = Grow(Tile, tileFloats); _tileFloats = tileFloats; }
    }

    private static float* Grow(float* old, long floats)
    {
        if (old != null) NativeMemory.AlignedFree(old);
        return (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
    }

    ~GemmBuffers()
    {
        if (A != null) NativeMemory.AlignedFree(A);
        if (B != null) NativeMemory.AlignedFree(B);
        if (Tile != null) NativeMemory.AlignedFree(Tile);
    }
}
