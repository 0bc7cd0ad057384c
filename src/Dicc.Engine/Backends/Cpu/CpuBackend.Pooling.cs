using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    protected override void MaxPoolForwardCore(in PoolGeometry g, Tensor x, Tensor y)
    {
        float* xp = F(x), yp = F(y);
        var geo = g;
        if (IsTwoByTwo(g))
        {
            CpuParallel.For(g.N * g.C, (long)g.P * g.Q * 4, (t0, t1) =>
            {
                for (int t = t0; t < t1; t++)
                {
                    float* src = xp + (long)t * geo.H * geo.W;
                    float* dst = yp + (long)t * geo.P * geo.Q;
                    for (int p = 0; p < geo.P; p++)
                        for (int q = 0; q < geo.Q; q++)
                            dst[p * geo.Q + q] = src[ArgMaxTwoByTwo(src, geo.W, p, q)];
                }
            });
            return;
        }
        CpuParallel.For(g.N * g.C, (long)g.P * g.Q * g.WindowH * g.WindowW, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
            {
                float* src = xp + (long)t * geo.H * geo.W;
                float* dst = yp + (long)t * geo.P * geo.Q;
                for (int p = 0; p < geo.P; p++)
                    for (int q = 0; q < geo.Q; q++)
                        dst[p * geo.Q + q] = src[ArgMax(geo, src, p, q)];
            }
        });
    }

    protected override void MaxPoolBackwardCore(in PoolGeometry g, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        float* xp = F(x), gp = F(dy), dxp = F(dx);
        var geo = g;
        if (IsTwoByTwo(g))
        {
            CpuParallel.For(g.N * g.C, (long)g.P * g.Q * 4, (t0, t1) =>
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
            });
            return;
        }
        CpuParallel.For(g.N * g.C, (long)g.P * g.Q * g.WindowH * g.WindowW, (t0, t1) =>
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
        });
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
}
