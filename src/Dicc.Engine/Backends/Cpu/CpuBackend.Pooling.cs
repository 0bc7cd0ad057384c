using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    protected override void MaxPoolForwardCore(in PoolGeometry g, Tensor x, Tensor y)
    {
        float* xp = F(x), yp = F(y);
        var geo = g;
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
