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
    /// <summary>
    /// Floats from one sliver to the next: kc * width plus one cache line, so that slivers written side by
    /// side do not all fall into the same L1 set (kc * width * 4 is often a multiple of 4 KiB).
    /// </summary>
    public static long SliverStride(int kc, int width) => (long)kc * width + 16;

    /// <summary>op(A)[ic : ic + mc, pc : pc + kc] into ceil(mc / MR) slivers (the last one zero-padded), <see cref="SliverStride"/> apart.</summary>
    public static void PackA(in GemmProblem p, int ic, int mc, int pc, int kc, int mr, float* dst)
    {
        // A^T is stored [k, m]: a sliver's MR values for one p are adjacent. A is stored [m, k]: transpose.
        if (p.TransA) PackContiguous(p.A + (long)pc * p.Lda + ic, p.Lda, mc, kc, mr, dst);
        else PackTransposed(p.A + (long)ic * p.Lda + pc, p.Lda, mc, kc, mr, dst);
    }

    /// <summary>op(B)[pc : pc + kc, jc : jc + nc] into ceil(nc / NR) slivers (the last one zero-padded), <see cref="SliverStride"/> apart.</summary>
    public static void PackB(in GemmProblem p, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        if (p.ImplicitB)
        {
            if (p.TransB) Im2ColPacking.PackTransposed(p.Im2Col, pc, kc, jc, nc, nr, dst);
            else Im2ColPacking.Pack(p.Im2Col, pc, kc, jc, nc, nr, dst);
            return;
        }
        if (p.TransB) PackTransposed(p.B + (long)jc * p.Ldb + pc, p.Ldb, nc, kc, nr, dst);
        else PackContiguous(p.B + (long)pc * p.Ldb + jc, p.Ldb, nc, kc, nr, dst);
    }

    /// <summary>
    /// Slivers of `width` from a source whose rows run along q: sliver s gets d[s * stride' + q * width + x]
    /// = src[q * stride + s * width + x], zero past `count`. Source rows are read front to back, one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackContiguous(float* src, long stride, int count, int kc, int width, float* dst)
    {
        int full = count / width, rest = count - full * width;
        long sliver = SliverStride(kc, width);
        for (int q = 0; q < kc; q++)
        {
            float* s = src + q * stride;
            float* o = dst + (long)q * width;
            for (int t = 0; t < full; t++, s += width, o += sliver)
            {
                int x = 0;
                if (Vector256.IsHardwareAccelerated)
                    for (; x + 8 <= width; x += 8) Vector256.Store(Vector256.Load(s + x), o + x);
                for (; x < width; x++) o[x] = s[x];
            }
            if (rest > 0)
            {
                for (int x = 0; x < rest; x++) o[x] = s[x];
                for (int x = rest; x < width; x++) o[x] = 0f;
            }
        }
    }

    /// <summary>
    /// Slivers of `width` from a source whose rows run along x (a transpose): sliver s gets
    /// d[s * stride' + q * width + x] = src[(s * width + x) * stride + q], zero past `count` (stride' = SliverStride).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTransposed(float* src, long stride, int count, int kc, int width, float* dst)
    {
        for (int s0 = 0; s0 < count; s0 += width)
        {
            int rows = Math.Min(width, count - s0);
            float* d = dst + s0 / width * SliverStride(kc, width);
            float* sBase = src + s0 * stride;
            int x = 0;
            if (Avx.IsSupported)
            {
                // 8 source rows at a time, 8 x 8 blocks transposed in registers.
                for (; x + 8 <= rows; x += 8)
                {
                    float* s8 = sBase + x * stride;
                    int q = 0;
                    for (; q + 8 <= kc; q += 8) Transpose8x8(s8 + q, stride, d + (long)q * width + x, width);
                    for (; q < kc; q++)
                        for (int r = 0; r < 8; r++) d[(long)q * width + x + r] = s8[r * stride + q];
                }
            }
            if (Sse.IsSupported)
            {
                for (; x + 4 <= rows; x += 4)
                {
                    float* s4 = sBase + x * stride;
                    int q = 0;
                    for (; q + 4 <= kc; q += 4) Transpose4x4(s4 + q, stride, d + (long)q * width + x, width);
                    for (; q < kc; q++)
                        for (int r = 0; r < 4; r++) d[(long)q * width + x + r] = s4[r * stride + q];
                }
            }
            for (; x < rows; x++)
            {
                float* s1 = sBase + x * stride;
                for (int q = 0; q < kc; q++) d[(long)q * width + x] = s1[q];
            }
            if (rows < width)
                for (int q = 0; q < kc; q++) new Span<float>(d + (long)q * width + rows, width - rows).Clear();
        }
    }

    /// <summary>o[q * ldo + r] = s[r * lds + q] for r in [0, rows), q in [0, cols): 8 x 8 blocks in registers where possible.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose(float* s, long lds, int rows, int cols, float* o, long ldo)
    {
        int r = 0;
        if (Avx.IsSupported)
            for (; r + 8 <= rows; r += 8)
            {
                int q = 0;
                for (; q + 8 <= cols; q += 8) Transpose8x8(s + r * lds + q, lds, o + q * ldo + r, ldo);
                for (; q < cols; q++)
                    for (int x = r; x < r + 8; x++) o[q * ldo + x] = s[x * lds + q];
            }
        for (; r < rows; r++)
            for (int q = 0; q < cols; q++) o[q * ldo + r] = s[r * lds + q];
    }

    /// <summary>o[q * ldo + r] = s[r * lds + q] for r, q in [0, 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(float* s, long lds, float* o, long ldo)
    {
        Vector128<float> r0 = Sse.LoadVector128(s), r1 = Sse.LoadVector128(s + lds);
        Vector128<float> r2 = Sse.LoadVector128(s + 2 * lds), r3 = Sse.LoadVector128(s + 3 * lds);
        Vector128<float> t0 = Sse.UnpackLow(r0, r1), t1 = Sse.UnpackHigh(r0, r1);
        Vector128<float> t2 = Sse.UnpackLow(r2, r3), t3 = Sse.UnpackHigh(r2, r3);
        Sse.Store(o, Sse.MoveLowToHigh(t0, t2));
        Sse.Store(o + ldo, Sse.MoveHighToLow(t2, t0));
        Sse.Store(o + 2 * ldo, Sse.MoveLowToHigh(t1, t3));
        Sse.Store(o + 3 * ldo, Sse.MoveHighToLow(t3, t1));
    }

    /// <summary>o[q * ldo + r] = s[r * lds + q] for r, q in [0, 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* s, long lds, float* o, long ldo)
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

    private long _aFloats, _bFloats, _tileFloats, _sharedFloats;
    private float* _shared;
    private int* _states;
    private int _stateCount;
    public float* A { get; private set; }
    public float* B { get; private set; }
    public float* Tile { get; private set; }

    /// <summary>This thread's buffers, with room for at least the given numbers of floats.</summary>
    public static GemmBuffers ForThisThread(long aFloats, long bFloats, int tileFloats)
    {
        var buffers = _current ??= new GemmBuffers();
        buffers.Ensure(aFloats, bFloats, tileFloats);
        return buffers;
    }

    /// <summary><paramref name="count"/> block states of a shared packed operand, all zero (not packed).</summary>
    public int* SharedStates(int count)
    {
        if (count > _stateCount)
        {
            if (_states != null) NativeMemory.Free(_states);
            _states = (int*)NativeMemory.Alloc((nuint)count, sizeof(int));
            _stateCount = count;
        }
        new Span<int>(_states, count).Clear();
        return _states;
    }

    /// <summary>A buffer of at least <paramref name="floats"/> that the threads of one product share (a shared packed operand).</summary>
    public nint EnsureShared(long floats)
    {
        if (floats > _sharedFloats) { _shared = Grow(_shared, floats); _sharedFloats = floats; }
        return (nint)_shared;
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
        if (_shared != null) NativeMemory.AlignedFree(_shared);
        if (_states != null) NativeMemory.Free(_states);
    }
}
