using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

// Batch normalisation per channel over N and the spatial positions ([N,C,H,W] or [N,C]).
public sealed unsafe partial class CpuBackend
{
    private static (int n, int c, int spatial) BnDims(Tensor x) =>
        (x.Shape[0], x.Shape[1], x.Shape.Rank == 4 ? x.Shape[2] * x.Shape[3] : 1);

    protected override void BatchNormTrainingForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor y,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon, Tensor saveMean, Tensor saveInvStd)
    {
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), yp = F(y), gp = F(gamma), bp = F(beta);
        float* rm = F(runningMean), rv = F(runningVar), sm = F(saveMean), si = F(saveInvStd);
        long m = (long)n * spatial;
        CpuParallel.For(c, m * 3, (c0, c1) =>
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
        });
    }

    protected override void BatchNormInferenceForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean,
        Tensor runningVar, float epsilon, Tensor y)
    {
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), yp = F(y), gp = F(gamma), bp = F(beta), rm = F(runningMean), rv = F(runningVar);
        CpuParallel.For(n * c, spatial, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
            {
                int ch = t % c;
                float scale = gp[ch] / MathF.Sqrt(rv[ch] + epsilon), shift = bp[ch] - rm[ch] * scale;
                long o = (long)t * spatial;
                for (int j = 0; j < spatial; j++) yp[o + j] = xp[o + j] * scale + shift;
            }
        });
    }

    protected override void BatchNormBackwardCore(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        var (n, c, spatial) = BnDims(x);
        float* xp = F(x), gyp = F(dy), gp = F(gamma), sm = F(saveMean), si = F(saveInvStd);
        float* dxp = F(dx), dgp = F(dgamma), dbp = F(dbeta);
        long m = (long)n * spatial;
        CpuParallel.For(c, m * 3, (c0, c1) =>
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
        });
    }
}
