using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void MaxPoolForwardCore(in PoolGeometry g, Tensor x, Tensor y)
    {
        float* xp = F(x), yp = F(y);
        var geo = g;
        if (Path == CpuPath.Fast && IsTwoByTwo(g) && Avx2.IsSupported)
        {
            CpuParallel.For(g.N * g.C, (long)g.P * g.Q * 4, new FastPoolForwardBody(xp, yp, geo));
            return;
        }
        if (IsTwoByTwo(g))
        {
            CpuParallel.For(g.N * g.C, (long)g.P * g.Q * 4, new PoolForwardTwoByTwoBody(xp, yp, geo));
            return;
        }
        CpuParallel.For(g.N * g.C, (long)g.P * g.Q * g.WindowH * g.WindowW, new PoolForwardBody(xp, yp, geo));
    }

    /// <inheritdoc/>
    protected override void MaxPoolBackwardCore(in PoolGeometry g, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        float* xp = F(x), gp = F(dy), dxp = F(dx);
        var geo = g;
        if (Path == CpuPath.Fast && IsTwoByTwo(g) && Avx2.IsSupported)
        {
            CpuParallel.For(g.N * g.C, (long)g.P * g.Q * 4, new FastPoolBackwardBody(xp, gp, dxp, geo));
            return;
        }
        if (IsTwoByTwo(g))
        {
            CpuParallel.For(g.N * g.C, (long)g.P * g.Q * 4, new PoolBackwardTwoByTwoBody(xp, gp, dxp, geo));
            return;
        }
        CpuParallel.For(g.N * g.C, (long)g.P * g.Q * g.WindowH * g.WindowW, new PoolBackwardBody(xp, gp, dxp, geo));
    }

    /// <summary>VGG's pooling: 2x2 windows, stride 2, no padding (a fast path with the same semantics).</summary>
    private static bool IsTwoByTwo(in PoolGeometry g) =>
        g.WindowH == 2 && g.WindowW == 2 && g.StrideH == 2 && g.StrideW == 2 && g.PadH == 0 && g.PadW == 0;

    /// <summary><see cref="ArgMax"/> for a 2x2 window at (2p, 2q): the first maximum in row-major order, NaN first.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int ArgMaxTwoByTwo(float* plane, int width, int p, int q)
    {
        int i0 = 2 * p * width + 2 * q, i1 = i0 + 1, i2 = i0 + width, i3 = i2 + 1;
        int best = i0;
        float v = plane[i0];
        if (float.IsNaN(v)) return best;
        float a = plane[i1];
        if (a > v || float.IsNaN(a)) { best = i1; v = a; if (float.IsNaN(a)) return best; }
        float b = plane[i2];
        if (b > v || float.IsNaN(b)) { best = i2; v = b; if (float.IsNaN(b)) return best; }
        float c = plane[i3];
        if (c > v || float.IsNaN(c)) best = i3;
        return best;
    }

    /// <summary>Index (h*W + w) of the first maximum in the window of output (p, q); NaN wins, as in PyTorch.</summary>
    private static int ArgMax(in PoolGeometry g, float* plane, int p, int q)
    {
        int h0 = p * g.StrideH - g.PadH, w0 = q * g.StrideW - g.PadW;
        int best = -1;
        float bestValue = float.NegativeInfinity;
        for (int r = 0; r < g.WindowH; r++)
        {
            int h = h0 + r;
            if ((uint)h >= (uint)g.H) continue;
            for (int s = 0; s < g.WindowW; s++)
            {
                int w = w0 + s;
                if ((uint)w >= (uint)g.W) continue;
                float v = plane[h * g.W + w];
                if (best < 0 || v > bestValue || float.IsNaN(v))
                {
                    best = h * g.W + w;
                    bestValue = v;
                    if (float.IsNaN(v)) return best;
                }
            }
        }
        return best;
    }

    /// <summary>
    /// One plane of the 2x2 stride-2 pooling, 8 windows at a time: the forward pass (y given) writes each
    /// window's value, the backward pass (dy and dx given) writes dy to each window's argmax and zero elsewhere,
    /// every input position once. The window's argmax follows <see cref="ArgMaxTwoByTwo"/> exactly (first maximum
    /// in row-major order, the first NaN wins), so results are bit-identical to the reference path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPoolTwoByTwoPlane(float* src, float* y, float* dy, float* dx, in PoolGeometry g)
    {
        int width = g.W, p = 0;
        for (; p < g.P; p++)
        {
            float* top = src + 2 * p * width, bottom = top + width;
            // Eight windows at a time; the last, partial group reads and writes only its own lanes (masked), so rows of
            // any width take the vector path (11 x 11 maps have five windows per row).
            for (int q = 0; q < g.Q; q += 8)
            {
                int count = Math.Min(8, g.Q - q);
                bool full = count == 8;
                var windows = full ? Vector256<float>.AllBitsSet : LaneMasks.First256(count);
                var low = full ? Vector256<float>.AllBitsSet : LaneMasks.First256(2 * count);
                var high = full ? Vector256<float>.AllBitsSet : LaneMasks.First256(2 * count - 8);
                // Even and odd columns of both rows: the four candidates of eight windows.
                var (c0, c1) = Deinterleave(top + 2 * q, full, low, high);
                var (c2, c3) = Deinterleave(bottom + 2 * q, full, low, high);
                var v = c0;
                var done = Vector256.Equals(v, v) ^ Vector256<float>.AllBitsSet; // NaN: the first candidate wins
                var pick1 = Take(ref v, ref done, c1);
                var pick2 = Take(ref v, ref done, c2);
                var pick3 = Take(ref v, ref done, c3);
                if (y != null)
                {
                    if (full) Vector256.Store(v, y + p * g.Q + q);
                    else Avx.MaskStore(y + p * g.Q + q, windows, v);
                    continue;
                }
                // The argmax is the last candidate taken; earlier picks are overruled by later ones.
                var g8 = full ? Vector256.Load(dy + p * g.Q + q) : Avx.MaskLoad(dy + p * g.Q + q, windows);
                var at3 = pick3;
                var at2 = pick2 & ~at3;
                var at1 = pick1 & ~pick2 & ~at3;
                var at0 = ~(pick1 | pick2 | pick3);
                Interleave(g8 & at0, g8 & at1, dx + 2 * p * width + 2 * q, full, low, high);
                Interleave(g8 & at2, g8 & at3, dx + (2 * p + 1) * width + 2 * q, full, low, high);
            }
            if (dx != null && 2 * g.Q < width)
            {
                // An odd width leaves a last column that no window covers.
                dx[2 * p * width + width - 1] = 0f;
                dx[(2 * p + 1) * width + width - 1] = 0f;
            }
        }
        if (dx != null && 2 * g.P < g.H) new Span<float>(dx + 2 * g.P * width, width).Clear();
    }

    /// <summary>Takes candidate c where the window is not settled on a NaN and c &gt; v or c is NaN; returns where it was taken.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Take(ref Vector256<float> v, ref Vector256<float> done, Vector256<float> c)
    {
        var isNaN = Vector256.Equals(c, c) ^ Vector256<float>.AllBitsSet;
        var take = (Vector256.GreaterThan(c, v) | isNaN) & ~done;
        v = Vector256.ConditionalSelect(take, c, v);
        done |= take & isNaN;
        return take;
    }

    /// <summary>
    /// (s[0], s[2], .., s[14]) and (s[1], s[3], .., s[15]); unless <paramref name="full"/>, reading s[0..7] under
    /// <paramref name="low"/> and s[8..15] under <paramref name="high"/> (lanes outside them read as zero and are never
    /// touched in memory). Masked moves only for a partial group: plain ones are cheaper.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(float* s, bool full, Vector256<float> low, Vector256<float> high)
    {
        var lo = full ? Avx.LoadVector256(s) : Avx.MaskLoad(s, low);
        var hi = full ? Avx.LoadVector256(s + 8) : Avx.MaskLoad(s + 8, high);
        // Within 128-bit lanes, then the 64-bit quarters back in order.
        var even = Avx.Shuffle(lo, hi, 0b10_00_10_00).AsDouble();
        var odd = Avx.Shuffle(lo, hi, 0b11_01_11_01).AsDouble();
        return (Avx2.Permute4x64(even, 0b11_01_10_00).AsSingle(), Avx2.Permute4x64(odd, 0b11_01_10_00).AsSingle());
    }

    /// <summary>d[2i] = even[i], d[2i + 1] = odd[i] for i in [0, 8); unless <paramref name="full"/>, writing d[0..7] under <paramref name="low"/> and d[8..15] under <paramref name="high"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector256<float> even, Vector256<float> odd, float* d, bool full, Vector256<float> low, Vector256<float> high)
    {
        var lo = Avx.UnpackLow(even, odd);   // e0 o0 e1 o1 | e4 o4 e5 o5
        var hi = Avx.UnpackHigh(even, odd);  // e2 o2 e3 o3 | e6 o6 e7 o7
        if (full)
        {
            Avx.Store(d, Avx.Permute2x128(lo, hi, 0x20));
            Avx.Store(d + 8, Avx.Permute2x128(lo, hi, 0x31));
            return;
        }
        Avx.MaskStore(d, low, Avx.Permute2x128(lo, hi, 0x20));
        Avx.MaskStore(d + 8, high, Avx.Permute2x128(lo, hi, 0x31));
    }

    // ---- loop bodies (structs, so a parallel loop allocates nothing) ----------------------------------

    private readonly struct FastPoolForwardBody(float* xp, float* yp, PoolGeometry geo) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
                MaxPoolTwoByTwoPlane(xp + (long)t * geo.H * geo.W, yp + (long)t * geo.P * geo.Q, null, null, geo);
        }
    }

    private readonly struct PoolForwardTwoByTwoBody(float* xp, float* yp, PoolGeometry geo) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                float* src = xp + (long)t * geo.H * geo.W;
                float* dst = yp + (long)t * geo.P * geo.Q;
                for (int p = 0; p < geo.P; p++)
                    for (int q = 0; q < geo.Q; q++)
                        dst[p * geo.Q + q] = src[ArgMaxTwoByTwo(src, geo.W, p, q)];
            }
        }
    }

    private readonly struct PoolForwardBody(float* xp, float* yp, PoolGeometry geo) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                float* src = xp + (long)t * geo.H * geo.W;
                float* dst = yp + (long)t * geo.P * geo.Q;
                for (int p = 0; p < geo.P; p++)
                    for (int q = 0; q < geo.Q; q++)
                        dst[p * geo.Q + q] = src[ArgMax(geo, src, p, q)];
            }
        }
    }

    private readonly struct FastPoolBackwardBody(float* xp, float* gp, float* dxp, PoolGeometry geo) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
                MaxPoolTwoByTwoPlane(xp + (long)t * geo.H * geo.W, null, gp + (long)t * geo.P * geo.Q, dxp + (long)t * geo.H * geo.W, geo);
        }
    }

    private readonly struct PoolBackwardTwoByTwoBody(float* xp, float* gp, float* dxp, PoolGeometry geo) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                float* src = xp + (long)t * geo.H * geo.W;
                float* grad = gp + (long)t * geo.P * geo.Q;
                float* dst = dxp + (long)t * geo.H * geo.W;
                new Span<float>(dst, geo.H * geo.W).Clear();
                // Windows do not overlap, so each input position receives at most one gradient.
                for (int p = 0; p < geo.P; p++)
                    for (int q = 0; q < geo.Q; q++)
                        dst[ArgMaxTwoByTwo(src, geo.W, p, q)] = grad[p * geo.Q + q];
            }
        }
    }

    private readonly struct PoolBackwardBody(float* xp, float* gp, float* dxp, PoolGeometry geo) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                float* src = xp + (long)t * geo.H * geo.W;
                float* grad = gp + (long)t * geo.P * geo.Q;
                float* dst = dxp + (long)t * geo.H * geo.W;
                new Span<float>(dst, geo.H * geo.W).Clear();
                for (int p = 0; p < geo.P; p++)
                    for (int q = 0; q < geo.Q; q++)
                        dst[ArgMax(geo, src, p, q)] += grad[p * geo.Q + q];
            }
        }
    }
}
