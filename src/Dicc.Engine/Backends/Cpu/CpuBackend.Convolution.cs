using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

// Convolution as im2col + GEMM. Images are processed in chunks: a chunk's columns are laid side by side
// (col is [C*R*S, nb*P*Q]) so that the deep layers, whose P*Q is tiny, still give the GEMM wide matrices,
// while the shallow layers use one image per chunk and write the GEMM result straight into y.
public sealed unsafe partial class CpuBackend
{
    /// <summary>Upper bound for one chunk's im2col buffer, in floats (16 MiB).</summary>
    private const long ColumnBudget = 4L << 20;

    /// <summary>Below this many output columns per image, several images share one GEMM.</summary>
    private const int MinGemmColumns = 512;

    private static int ChunkImages(in ConvolutionGeometry g)
    {
        long pq = (long)g.P * g.Q, crs = (long)g.C * g.R * g.S;
        if (pq >= MinGemmColumns) return 1;
        long byWidth = (MinGemmColumns * 4 + pq - 1) / pq; // aim for ~2048 columns
        long byBudget = Math.Max(1, ColumnBudget / Math.Max(1, crs * pq));
        return (int)Math.Clamp(Math.Min(byWidth, byBudget), 1, g.N);
    }

    protected override long ConvolutionWorkspaceBytesCore(in ConvolutionGeometry g)
    {
        long nb = ChunkImages(g), pq = (long)g.P * g.Q;
        long col = (long)g.C * g.R * g.S * nb * pq;
        long staging = nb > 1 ? g.K * nb * pq : 0; // [K, nb*PQ] GEMM output / gathered dy
        return (col + staging) * sizeof(float);
    }

    protected override void ConvolutionForwardCore(in ConvolutionGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S;
        float* ws = Workspace(ConvolutionWorkspaceBytesCore(g) / sizeof(float));
        float* col = ws, staging = ws + (long)crs * nb * pq;
        float* xp = F(x), wp = F(w), yp = F(y);
        float* bp = bias is null ? null : F(bias);
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0);
            int cols = count * pq;
            Im2Col(g, xp + n0 * inImage, count, col, cols);
            if (count == 1 && nb == 1)
            {
                Gemm.Sgemm(false, false, g.K, pq, crs, 1f, wp, crs, col, cols, 0f, yp + n0 * outImage, pq);
                if (bp != null) AddBias(yp + n0 * outImage, bp, g.K, pq);
                continue;
            }
            Gemm.Sgemm(false, false, g.K, cols, crs, 1f, wp, crs, col, cols, 0f, staging, cols);
            // staging [K, count, PQ] -> y [count, K, PQ], adding the bias on the way.
            for (int i = 0; i < count; i++)
                for (int k = 0; k < g.K; k++)
                {
                    float* src = staging + (long)k * cols + (long)i * pq;
                    float* dst = yp + (n0 + i) * outImage + (long)k * pq;
                    float b = bp == null ? 0f : bp[k];
                    for (int j = 0; j < pq; j++) dst[j] = src[j] + b;
                }
        }
    }

    protected override void ConvolutionBackwardDataCore(in ConvolutionGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S;
        float* ws = Workspace(ConvolutionWorkspaceBytesCore(g) / sizeof(float));
        float* col = ws, staging = ws + (long)crs * nb * pq;
        float* dyp = F(dy), wp = F(w), dxp = F(dx);
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0);
            int cols = count * pq;
            float* dyChunk;
            if (nb == 1) dyChunk = dyp + n0 * outImage;
            else
            {
                GatherChunk(dyp + n0 * outImage, staging, g.K, count, pq);
                dyChunk = staging;
            }
            // col = W^T [CRS, K] * dy [K, cols]
            Gemm.Sgemm(true, false, crs, cols, g.K, 1f, wp, crs, dyChunk, cols, 0f, col, cols);
            Col2Im(g, col, count, cols, dxp + n0 * inImage);
        }
    }

    protected override void ConvolutionBackwardFilterCore(in ConvolutionGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S;
        float* ws = Workspace(ConvolutionWorkspaceBytesCore(g) / sizeof(float));
        float* col = ws, staging = ws + (long)crs * nb * pq;
        float* xp = F(x), dyp = F(dy), dwp = F(dw);
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0);
            int cols = count * pq;
            Im2Col(g, xp + n0 * inImage, count, col, cols);
            float* dyChunk;
            if (nb == 1) dyChunk = dyp + n0 * outImage;
            else
            {
                GatherChunk(dyp + n0 * outImage, staging, g.K, count, pq);
                dyChunk = staging;
            }
            // dW [K, CRS] (+)= dy [K, cols] * col^T [cols, CRS]
            Gemm.Sgemm(false, true, g.K, crs, cols, 1f, dyChunk, cols, col, cols, n0 == 0 ? 0f : 1f, dwp, crs);
        }
        if (dbias is not null) SumPerChannel(dyp, g.N, g.K, pq, F(dbias));
    }

    /// <summary>col[(c*R + r)*S + s, i*PQ + p*Q + q] = x[i, c, p*sh - ph + r, q*sw - pw + s] (0 outside).</summary>
    private static void Im2Col(ConvolutionGeometry g, float* x, int count, float* col, int cols)
    {
        int rows = g.C * g.R * g.S;
        CpuParallel.For(rows, (long)cols, (r0, r1) =>
        {
            for (int row = r0; row < r1; row++)
            {
                int s = row % g.S, r = row / g.S % g.R, c = row / (g.R * g.S);
                float* dstRow = col + (long)row * cols;
                for (int i = 0; i < count; i++)
                {
                    float* src = x + ((long)i * g.C + c) * g.H * g.W;
                    float* dst = dstRow + (long)i * g.P * g.Q;
                    for (int p = 0; p < g.P; p++)
                    {
                        int h = p * g.StrideH - g.PadH + r;
                        float* d = dst + p * g.Q;
                        if ((uint)h >= (uint)g.H) { new Span<float>(d, g.Q).Clear(); continue; }
                        float* srow = src + (long)h * g.W;
                        if (g.StrideW == 1)
                        {
                            // w = q - pw + s runs over a contiguous range; zero the edges, copy the middle.
                            int qStart = Math.Max(0, g.PadW - s), qEnd = Math.Min(g.Q, g.W + g.PadW - s);
                            for (int q = 0; q < qStart; q++) d[q] = 0f;
                            if (qEnd > qStart)
                                new ReadOnlySpan<float>(srow + qStart - g.PadW + s, qEnd - qStart).CopyTo(new Span<float>(d + qStart, qEnd - qStart));
                            for (int q = Math.Max(qEnd, qStart); q < g.Q; q++) d[q] = 0f;
                        }
                        else
                        {
                            for (int q = 0; q < g.Q; q++)
                            {
                                int w = q * g.StrideW - g.PadW + s;
                                d[q] = (uint)w < (uint)g.W ? srow[w] : 0f;
                            }
                        }
                    }
                }
            }
        });
    }

    /// <summary>The adjoint of <see cref="Im2Col"/>: dx = sum of col entries into their input positions.</summary>
    private static void Col2Im(ConvolutionGeometry g, float* col, int count, int cols, float* dx)
    {
        // Parallel over (image, channel): each owns its dx plane, so no two threads write the same value,
        // and the summation order is fixed.
        CpuParallel.For(count * g.C, (long)g.R * g.S * g.P * g.Q, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
            {
                int i = t / g.C, c = t % g.C;
                float* plane = dx + ((long)i * g.C + c) * g.H * g.W;
                new Span<float>(plane, g.H * g.W).Clear();
                for (int r = 0; r < g.R; r++)
                    for (int s = 0; s < g.S; s++)
                    {
                        float* src = col + ((long)(c * g.R + r) * g.S + s) * cols + (long)i * g.P * g.Q;
                        for (int p = 0; p < g.P; p++)
                        {
                            int h = p * g.StrideH - g.PadH + r;
                            if ((uint)h >= (uint)g.H) continue;
                            float* drow = plane + (long)h * g.W;
                            float* srow = src + p * g.Q;
                            for (int q = 0; q < g.Q; q++)
                            {
                                int w = q * g.StrideW - g.PadW + s;
                                if ((uint)w < (uint)g.W) drow[w] += srow[q];
                            }
                        }
                    }
            }
        });
    }

    /// <summary>[count, K, PQ] -> [K, count*PQ].</summary>
    private static void GatherChunk(float* src, float* dst, int k, int count, int pq)
    {
        for (int i = 0; i < count; i++)
            for (int kk = 0; kk < k; kk++)
                new ReadOnlySpan<float>(src + ((long)i * k + kk) * pq, pq)
                    .CopyTo(new Span<float>(dst + (long)kk * count * pq + (long)i * pq, pq));
    }

    private static void AddBias(float* y, float* bias, int k, int pq)
    {
        for (int kk = 0; kk < k; kk++)
        {
            float b = bias[kk];
            float* row = y + (long)kk * pq;
            for (int j = 0; j < pq; j++) row[j] += b;
        }
    }

    /// <summary>sums[k] = sum over n and spatial positions of t[n, k, :].</summary>
    private static void SumPerChannel(float* t, int n, int k, int spatial, float* sums)
    {
        CpuParallel.For(k, (long)n * spatial, (k0, k1) =>
        {
            for (int kk = k0; kk < k1; kk++)
            {
                double acc = 0;
                for (int i = 0; i < n; i++)
                {
                    float* row = t + ((long)i * k + kk) * spatial;
                    for (int j = 0; j < spatial; j++) acc += row[j];
                }
                sums[kk] = (float)acc;
            }
        });
    }
}
