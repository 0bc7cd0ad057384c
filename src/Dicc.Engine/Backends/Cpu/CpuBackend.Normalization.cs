using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

// Batch normalisation per channel over N and the spatial positions ([N,C,H,W] or [N,C]).
// The reference path sums in double, element by element. The fast path sums each image's row of a channel
// in float vectors (four 8-lane accumulators, then a fixed tree) and adds the rows in double: the same
// two-pass algorithm, an order fixed by the shapes alone, one channel per thread, so results are
// deterministic and independent of the thread count, within a few float roundings of the reference.
public sealed unsafe partial class CpuBackend
{
    private static (int n, int c, int spatial) BnDims(Tensor x) =>
        (x.Shape[0], x.Shape[1], x.Shape.Rank == 4 ? x.Shape[2] * x.Shape[3] : 1);

    /// <inheritdoc/>
    protected override void BatchNormTrainingForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon, Tensor saveMean, Tensor saveInvStd)
    {
        if (Path == CpuPath.Fast)
        {
            FastBatchNormTrainingForward(x, gamma, beta, y, runningMean, runningVar, momentum, epsilon, saveMean, saveInvStd);
            return;
        }
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), yp = F(y), gp = F(gamma), bp = F(beta);
        float* rm = F(runningMean), rv = F(runningVar), sm = F(saveMean), si = F(saveInvStd);
        long m = (long)n * spatial;
        CpuParallel.For(c, m * 3, new ReferenceBatchNormForwardBody(n, c, spatial, m, xp, yp, gp, bp, rm, rv, sm, si, momentum, epsilon));
    }

    /// <inheritdoc/>
    protected override void BatchNormInferenceForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, float epsilon, Tensor y)
    {
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), yp = F(y), gp = F(gamma), bp = F(beta), rm = F(runningMean), rv = F(runningVar);
        CpuParallel.For(n * c, spatial, new BatchNormInferenceBody(c, spatial, xp, yp, gp, bp, rm, rv, epsilon));
    }

    /// <inheritdoc/>
    protected override void BatchNormBackwardCore(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        if (Path == CpuPath.Fast)
        {
            FastBatchNormBackward(x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
            return;
        }
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), gyp = F(dy), gp = F(gamma), sm = F(saveMean), si = F(saveInvStd);
        float* dxp = F(dx), dgp = F(dgamma), dbp = F(dbeta);
        long m = (long)n * spatial;
        CpuParallel.For(c, m * 3, new ReferenceBatchNormBackwardBody(n, c, spatial, m, xp, gyp, gp, sm, si, dxp, dgp, dbp));
    }

    // ---- fast path ---------------------------------------------------------------------------------

    private static void FastBatchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon, Tensor saveMean, Tensor saveInvStd)
    {
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), yp = F(y), gp = F(gamma), bp = F(beta);
        float* rm = F(runningMean), rv = F(runningVar), sm = F(saveMean), si = F(saveInvStd);
        long m = (long)n * spatial;
        CpuParallel.For(c, m * 3, new FastBatchNormForwardBody(n, c, spatial, m, xp, yp, gp, bp, rm, rv, sm, si, momentum, epsilon));
    }

    private static void FastBatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), gyp = F(dy), gp = F(gamma), sm = F(saveMean), si = F(saveInvStd);
        float* dxp = F(dx), dgp = F(dgamma), dbp = F(dbeta);
        long m = (long)n * spatial;
        CpuParallel.For(c, m * 3, new FastBatchNormBackwardBody(n, c, spatial, m, xp, gyp, gp, sm, si, dxp, dgp, dbp));
    }

    /// <summary>sum of row[0..count) in float: four 8-lane accumulators, then a fixed tree.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowSum(float* row, int count)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int j = 0;
        for (; j + 32 <= count; j += 32)
        {
            a0 += Vector256.Load(row + j);
            a1 += Vector256.Load(row + j + 8);
            a2 += Vector256.Load(row + j + 16);
            a3 += Vector256.Load(row + j + 24);
        }
        for (; j + 8 <= count; j += 8) a0 += Vector256.Load(row + j);
        float tail = 0f;
        for (; j < count; j++) tail += row[j];
        return Vector256.Sum((a0 + a1) + (a2 + a3)) + tail;
    }

    /// <summary>sum of (row[j] - mean)^2, in the order of <see cref="RowSum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowSquaredDeviations(float* row, int count, float mean)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var vm = Vector256.Create(mean);
        int j = 0;
        for (; j + 32 <= count; j += 32)
        {
            var d0 = Vector256.Load(row + j) - vm;
            var d1 = Vector256.Load(row + j + 8) - vm;
            var d2 = Vector256.Load(row + j + 16) - vm;
            var d3 = Vector256.Load(row + j + 24) - vm;
            a0 += d0 * d0;
            a1 += d1 * d1;
            a2 += d2 * d2;
            a3 += d3 * d3;
        }
        for (; j + 8 <= count; j += 8)
        {
            var d = Vector256.Load(row + j) - vm;
            a0 += d * d;
        }
        float tail = 0f;
        for (; j < count; j++) { float d = row[j] - mean; tail += d * d; }
        return Vector256.Sum((a0 + a1) + (a2 + a3)) + tail;
    }

    /// <summary>y[j] = x[j] * scale + shift (multiply, then add: the reference's roundings).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowAffine(float* x, float* y, int count, float scale, float shift)
    {
        var vs = Vector256.Create(scale);
        var vb = Vector256.Create(shift);
        int j = 0;
        for (; j + 8 <= count; j += 8) Vector256.Store(Vector256.Load(x + j) * vs + vb, y + j);
        for (; j < count; j++) y[j] = x[j] * scale + shift;
    }

    /// <summary>(sum dy, sum dy * (x - mean)) over a row, in float, in the order of <see cref="RowSum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (float Dy, float DyXc) RowGradientSums(float* dy, float* x, int count, float mean)
    {
        Vector256<float> s0 = default, s1 = default, t0 = default, t1 = default;
        var vm = Vector256.Create(mean);
        int j = 0;
        for (; j + 16 <= count; j += 16)
        {
            var g0 = Vector256.Load(dy + j);
            var g1 = Vector256.Load(dy + j + 8);
            s0 += g0;
            s1 += g1;
            t0 += g0 * (Vector256.Load(x + j) - vm);
            t1 += g1 * (Vector256.Load(x + j + 8) - vm);
        }
        for (; j + 8 <= count; j += 8)
        {
            var g = Vector256.Load(dy + j);
            s0 += g;
            t0 += g * (Vector256.Load(x + j) - vm);
        }
        float sTail = 0f, tTail = 0f;
        for (; j < count; j++) { sTail += dy[j]; tTail += dy[j] * (x[j] - mean); }
        return (Vector256.Sum(s0 + s1) + sTail, Vector256.Sum(t0 + t1) + tTail);
    }

    /// <summary>dx[j] = k * (dy[j] - meanDy - (x[j] - mean) * slope).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowInputGradient(float* dy, float* x, float* dx, int count, float mean, float meanDy, float slope, float k)
    {
        var vm = Vector256.Create(mean);
        var vd = Vector256.Create(meanDy);
        var vs = Vector256.Create(slope);
        var vk = Vector256.Create(k);
        int j = 0;
        for (; j + 8 <= count; j += 8)
            Vector256.Store(vk * (Vector256.Load(dy + j) - vd - (Vector256.Load(x + j) - vm) * vs), dx + j);
        for (; j < count; j++) dx[j] = k * (dy[j] - meanDy - (x[j] - mean) * slope);
    }

    // ---- loop bodies (structs, so a parallel loop allocates nothing) ----------------------------------

    private readonly struct ReferenceBatchNormForwardBody(int n, int c, int spatial, long m, float* xp, float* yp, float* gp, float* bp, float* rm, float* rv, float* sm, float* si, float momentum, float epsilon) : IRangeBody
    {
        public void Run(int c0, int c1)
        {
            for (int ch = c0; ch < c1; ch++)
            {
                // Two passes (mean, then squared deviations) in double: exact enough to be the oracle.
                double sum = 0;
                for (int i = 0; i < n; i++)
                {
                    float* row = xp + ((long)i * c + ch) * spatial;
                    for (int j = 0; j < spatial; j++) sum += row[j];
                }
                double mean = sum / m, sq = 0;
                for (int i = 0; i < n; i++)
                {
                    float* row = xp + ((long)i * c + ch) * spatial;
                    for (int j = 0; j < spatial; j++) { double d = row[j] - mean; sq += d * d; }
                }
                double variance = sq / m;
                float invStd = (float)(1.0 / Math.Sqrt(variance + epsilon));
                float scale = gp[ch] * invStd, shift = bp[ch] - (float)mean * scale;
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * spatial;
                    for (int j = 0; j < spatial; j++) yp[o + j] = xp[o + j] * scale + shift;
                }
                sm[ch] = (float)mean;
                si[ch] = invStd;
                rm[ch] = (float)((1 - momentum) * rm[ch] + momentum * mean);
                rv[ch] = (float)((1 - momentum) * rv[ch] + momentum * (sq / (m - 1)));
            }
        }
    }

    private readonly struct BatchNormInferenceBody(int c, int spatial, float* xp, float* yp, float* gp, float* bp, float* rm, float* rv, float epsilon) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                int ch = t % c;
                float scale = gp[ch] / MathF.Sqrt(rv[ch] + epsilon), shift = bp[ch] - rm[ch] * scale;
                long o = (long)t * spatial;
                for (int j = 0; j < spatial; j++) yp[o + j] = xp[o + j] * scale + shift;
            }
        }
    }

    private readonly struct ReferenceBatchNormBackwardBody(int n, int c, int spatial, long m, float* xp, float* gyp, float* gp, float* sm, float* si, float* dxp, float* dgp, float* dbp) : IRangeBody
    {
        public void Run(int c0, int c1)
        {
            for (int ch = c0; ch < c1; ch++)
            {
                float mean = sm[ch], invStd = si[ch];
                double sumDy = 0, sumDyXhat = 0;
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * spatial;
                    for (int j = 0; j < spatial; j++)
                    {
                        double g = gyp[o + j];
                        sumDy += g;
                        sumDyXhat += g * ((xp[o + j] - mean) * invStd);
                    }
                }
                dbp[ch] = (float)sumDy;
                dgp[ch] = (float)sumDyXhat;
                // dx = gamma * invStd * (dy - mean(dy) - xhat * mean(dy * xhat))
                float k = gp[ch] * invStd;
                float meanDy = (float)(sumDy / m), meanDyXhat = (float)(sumDyXhat / m);
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * spatial;
                    for (int j = 0; j < spatial; j++)
                    {
                        float xhat = (xp[o + j] - mean) * invStd;
                        dxp[o + j] = k * (gyp[o + j] - meanDy - xhat * meanDyXhat);
                    }
                }
            }
        }
    }

    private readonly struct FastBatchNormForwardBody(int n, int c, int spatial, long m, float* xp, float* yp, float* gp, float* bp, float* rm, float* rv, float* sm, float* si, float momentum, float epsilon) : IRangeBody
    {
        public void Run(int c0, int c1)
        {
            for (int ch = c0; ch < c1; ch++)
            {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += RowSum(xp + ((long)i * c + ch) * spatial, spatial);
                float mean = (float)(sum / m);
                double sq = 0;
                for (int i = 0; i < n; i++) sq += RowSquaredDeviations(xp + ((long)i * c + ch) * spatial, spatial, mean);
                double variance = sq / m;
                float invStd = (float)(1.0 / Math.Sqrt(variance + epsilon));
                float scale = gp[ch] * invStd, shift = bp[ch] - mean * scale;
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * spatial;
                    RowAffine(xp + o, yp + o, spatial, scale, shift);
                }
                sm[ch] = mean;
                si[ch] = invStd;
                rm[ch] = (float)((1 - momentum) * rm[ch] + momentum * (sum / m));
                rv[ch] = (float)((1 - momentum) * rv[ch] + momentum * (sq / (m - 1)));
            }
        }
    }

    private readonly struct FastBatchNormBackwardBody(int n, int c, int spatial, long m, float* xp, float* gyp, float* gp, float* sm, float* si, float* dxp, float* dgp, float* dbp) : IRangeBody
    {
        public void Run(int c0, int c1)
        {
            for (int ch = c0; ch < c1; ch++)
            {
                float mean = sm[ch], invStd = si[ch];
                double sumDy = 0, sumDyXc = 0;
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * spatial;
                    var (s, sx) = RowGradientSums(gyp + o, xp + o, spatial, mean);
                    sumDy += s;
                    sumDyXc += sx;
                }
                // sum dy * xhat = invStd * sum dy * (x - mean)
                double sumDyXhat = sumDyXc * invStd;
                dbp[ch] = (float)sumDy;
                dgp[ch] = (float)sumDyXhat;
                // dx = gamma * invStd * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * invStd
                float k = gp[ch] * invStd;
                float meanDy = (float)(sumDy / m), slope = (float)(sumDyXhat / m) * invStd;
                for (int i = 0; i < n; i++)
                {
                    long o = ((long)i * c + ch) * spatial;
                    RowInputGradient(gyp + o, xp + o, dxp + o, spatial, mean, meanDy, slope, k);
                }
            }
        }
    }
}
