using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

// Linear layers and the softmax cross-entropy loss.
public sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void LinearForwardCore(Tensor x, Tensor w, Tensor? b, Tensor y, int n, int fin, int fout)
    {
        float* yp = F(y);
        Gemm.Sgemm(false, true, n, fout, fin, 1f, F(x), fin, F(w), fin, 0f, yp, fout);
        if (b is null) return;
        float* bp = F(b);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < fout; j++) yp[(long)i * fout + j] += bp[j];
    }

    /// <inheritdoc/>
    protected override void LinearBackwardCore(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db,
        int n, int fin, int fout)
    {
        float* gp = F(dy);
        if (dx is not null) Gemm.Sgemm(false, false, n, fin, fout, 1f, gp, fout, F(w), fin, 0f, F(dx), fin);
        Gemm.Sgemm(true, false, fout, fin, n, 1f, gp, fout, F(x), fin, 0f, F(dw), fin);
        if (db is null) return;
        float* dbp = F(db);
        for (int j = 0; j < fout; j++)
        {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += gp[(long)i * fout + j];
            dbp[j] = (float)acc;
        }
    }

    /// <inheritdoc/>
    protected override void NormalizeRowsCore(Tensor x, Tensor y, Tensor norms)
    {
        int n = x.Shape[0], f = x.Shape[1];
        float* xp = F(x), yp = F(y), np = F(norms);
        for (int i = 0; i < n; i++)
        {
            float* xi = xp + (long)i * f, yi = yp + (long)i * f;
            double sum = 0;
            for (int j = 0; j < f; j++) sum += (double)xi[j] * xi[j];
            float norm = (float)Math.Sqrt(sum);
            np[i] = norm;
            float inv = 1f / MathF.Max(norm, RowNormEpsilon);
            for (int j = 0; j < f; j++) yi[j] = xi[j] * inv;
        }
    }

    /// <inheritdoc/>
    protected override void NormalizeRowsBackwardCore(Tensor y, Tensor norms, Tensor dy, Tensor dx)
    {
        int n = y.Shape[0], f = y.Shape[1];
        float* yp = F(y), np = F(norms), gp = F(dy), dxp = F(dx);
        for (int i = 0; i < n; i++)
        {
            float* yi = yp + (long)i * f, gi = gp + (long)i * f, dxi = dxp + (long)i * f;
            float norm = np[i];
            if (!(norm > RowNormEpsilon))
            {
                // y = x / eps is linear in x there.
                for (int j = 0; j < f; j++) dxi[j] = gi[j] / RowNormEpsilon;
                continue;
            }
            double dot = 0;
            for (int j = 0; j < f; j++) dot += (double)yi[j] * gi[j];
            float d = (float)dot, inv = 1f / norm;
            for (int j = 0; j < f; j++) dxi[j] = (gi[j] - yi[j] * d) * inv;
        }
    }

    /// <inheritdoc/>
    protected override void SoftmaxCore(Tensor logits, Tensor probabilities)
    {
        int n = logits.Shape[0], k = logits.Shape[1];
        float* zp = F(logits), pp = F(probabilities);
        for (int i = 0; i < n; i++)
        {
            float* z = zp + (long)i * k, p = pp + (long)i * k;
            float max = float.NegativeInfinity;
            for (int j = 0; j < k; j++) max = MathF.Max(max, z[j]);
            double sum = 0;
            for (int j = 0; j < k; j++) { float e = MathF.Exp(z[j] - max); p[j] = e; sum += e; }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < k; j++) p[j] *= inv;
        }
    }

    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyCore(Tensor logits, Tensor labels, Tensor? classWeights, Tensor loss, Tensor? dlogits)
    {
        int n = logits.Shape[0], k = logits.Shape[1];
        float* zp = F(logits);
        int* yp = Ptr<int>(labels);
        float* wp = classWeights is null ? null : F(classWeights);
        float* gp = dlogits is null ? null : F(dlogits);
        double total = 0, weightSum = 0;
        for (int i = 0; i < n; i++)
        {
            int label = yp[i];
            if ((uint)label >= (uint)k)
                throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label of row {i} is outside [0, {k}).");
            float* z = zp + (long)i * k;
            float max = float.NegativeInfinity;
            for (int j = 0; j < k; j++) max = MathF.Max(max, z[j]);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(z[j] - max);
            double logSumExp = max + Math.Log(sum);
            double wi = wp == null ? 1.0 : wp[label];
            total += wi * (logSumExp - z[label]);
            weightSum += wi;
        }
        F(loss)[0] = (float)(total / weightSum);
        if (gp == null) return;
        for (int i = 0; i < n; i++)
        {
            int label = yp[i];
            float* z = zp + (long)i * k, g = gp + (long)i * k;
            float max = float.NegativeInfinity;
            for (int j = 0; j < k; j++) max = MathF.Max(max, z[j]);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(z[j] - max);
            double scale = (wp == null ? 1.0 : wp[label]) / weightSum;
            for (int j = 0; j < k; j++)
            {
                double p = Math.Exp(z[j] - max) / sum;
                g[j] = (float)(scale * (p - (j == label ? 1.0 : 0.0)));
            }
        }
    }

    private double[] _lossScratch = [];

    /// <inheritdoc/>
    protected override void AdjustedSoftmaxCrossEntropyCore(Tensor logits, Tensor labels, Tensor? classWeights, Tensor? classOffsets,
        Tensor? labelMargins, float scale, float focalGamma, Tensor loss, Tensor? dlogits)
    {
        int n = logits.Shape[0], k = logits.Shape[1];
        float* zp = F(logits);
        int* yp = Ptr<int>(labels);
        float* wp = classWeights is null ? null : F(classWeights);
        float* bp = classOffsets is null ? null : F(classOffsets);
        float* mp = labelMargins is null ? null : F(labelMargins);
        float* gp = dlogits is null ? null : F(dlogits);
        double s = scale, gamma = focalGamma, total = 0, weightSum = 0;
        // Host scratch kept between calls (grown, never shrunk), so a training step allocates nothing.
        // adjusted[0..k) is one row's z', adjusted[k + i] row i's gradient coefficient.
        if (_lossScratch.Length < k + n) _lossScratch = new double[k + n];
        double[] adjusted = _lossScratch;
        // z'_j = s (z_j + b_j - [j == y] m_y); every sum in double, in a fixed order (the oracle of the CUDA kernel).
        void Adjust(int i, int label, out double logSumExp)
        {
            float* z = zp + (long)i * k;
            double max = double.NegativeInfinity;
            for (int j = 0; j < k; j++)
            {
                double v = (double)z[j] + (bp == null ? 0.0 : bp[j]);
                if (j == label && mp != null) v -= mp[label];
                adjusted[j] = s * v;
                max = Math.Max(max, adjusted[j]);
            }
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(adjusted[j] - max);
            logSumExp = max + Math.Log(sum);
        }
        for (int i = 0; i < n; i++)
        {
            int label = yp[i];
            if ((uint)label >= (uint)k)
                throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label of row {i} is outside [0, {k}).");
            Adjust(i, label, out double lse);
            double logP = adjusted[label] - lse, p = Math.Exp(logP), q = 0;
            for (int j = 0; j < k; j++) if (j != label) q += Math.Exp(adjusted[j] - lse);
            double wi = wp == null ? 1.0 : wp[label];
            double focal = gamma == 0 ? 1.0 : Math.Pow(q, gamma);
            total += wi * -focal * logP;
            weightSum += wi;
            if (gp != null)
            {
                // dl/dz'_j = g (p_j - [j == y]) with g = (1 - p)^gamma - gamma (1 - p)^(gamma - 1) p log p (1 when gamma = 0).
                double g = gamma == 0 ? 1.0 : q <= 0 ? 0.0 : focal - gamma * Math.Pow(q, gamma - 1) * p * logP;
                adjusted[k + i] = s * wi * g;
            }
        }
        F(loss)[0] = (float)(total / weightSum);
        if (gp == null) return;
        for (int i = 0; i < n; i++)
        {
            int label = yp[i];
            Adjust(i, label, out double lse);
            float* g = gp + (long)i * k;
            double c = adjusted[k + i] / weightSum;
            for (int j = 0; j < k; j++) g[j] = (float)(c * (Math.Exp(adjusted[j] - lse) - (j == label ? 1.0 : 0.0)));
        }
    }
}
