namespace Dicc.Engine.Imbalance;

/// <summary>
/// The effective number of samples (Cui et al., "Class-Balanced Loss Based on Effective Number of
/// Samples", CVPR 2019): <c>E(n) = (1 - b^n) / (1 - b)</c>. The paper's resample and reweight baselines both
/// use <c>1 / E(n_c)</c> with b = 0.9999 (docs/method.md, "Imbalance baselines"). With b = 0 every class counts as one sample (no
/// rebalancing); as b approaches 1, E(n) approaches n (inverse-frequency weighting).
/// </summary>
public static class EffectiveNumber
{
    /// <summary>b = 0.9999, the value of Cui et al. and of the paper's baselines.</summary>
    public const double DefaultBeta = 0.9999;

    /// <summary>E(n) for n samples; b in [0, 1] (b = 1 gives n, the limit).</summary>
    public static double Of(long n, double beta = DefaultBeta)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "A sample count cannot be negative.");
        RequireBeta(beta);
        return beta == 1 ? n : (1 - Math.Pow(beta, n)) / (1 - beta);
    }

    /// <summary>
    /// The <c>reweight</c> class weights: <c>w_c = 1 / E(n_c)</c>, scaled so that <c>sum_c w_c = C</c> (Cui et al.'s
    /// normalisation: a balanced set gets all ones). Every class needs at least one training sample; a
    /// class without any has no finite weight, and the error says which.
    /// </summary>
    public static double[] ClassWeights(ReadOnlySpan<int> classCounts, double beta = DefaultBeta)
    {
        RequireBeta(beta);
        if (classCounts.Length == 0) throw new ArgumentException("Class weights need at least one class.", nameof(classCounts));
        var weights = new double[classCounts.Length];
        double sum = 0;
        for (int c = 0; c < weights.Length; c++)
        {
            if (classCounts[c] < 1)
                throw new ArgumentException(
                    $"Class {c} has {classCounts[c]} training samples; class-balanced weights need at least one sample in every class.",
                    nameof(classCounts));
            weights[c] = 1 / Of(classCounts[c], beta);
            sum += weights[c];
        }
        double scale = weights.Length / sum;
        for (int c = 0; c < weights.Length; c++) weights[c] *= scale;
        return weights;
    }

    /// <summary>
    /// The share of each class in the draws of the <c>resample</c> sampler: sample i is drawn with probability
    /// proportional to <c>1 / E(n_{y_i})</c>, so class c gets <c>n_c / E(n_c)</c> normalised over classes.
    /// Classes without samples get 0.
    /// </summary>
    public static double[] ResampledClassShares(ReadOnlySpan<int> classCounts, double beta = DefaultBeta)
    {
        RequireBeta(beta);
        var shares = new double[classCounts.Length];
        double sum = 0;
        for (int c = 0; c < shares.Length; c++)
        {
            if (classCounts[c] < 0) throw new ArgumentException($"Class {c} has a negative count ({classCounts[c]}).", nameof(classCounts));
            shares[c] = classCounts[c] == 0 ? 0 : classCounts[c] / Of(classCounts[c], beta);
            sum += shares[c];
        }
        if (sum == 0) throw new ArgumentException("Every class count is 0: there is nothing to sample.", nameof(classCounts));
        for (int c = 0; c < shares.Length; c++) shares[c] /= sum;
        return shares;
    }

    private static void RequireBeta(double beta)
    {
        if (!(beta >= 0 && beta <= 1))
            throw new ArgumentOutOfRangeException(nameof(beta), beta, "The effective-number b must lie in [0, 1].");
    }
}
