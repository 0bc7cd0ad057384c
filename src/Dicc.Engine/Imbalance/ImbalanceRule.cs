namespace Dicc.Engine.Imbalance;

/// <summary>The paper's baseline "rules" (docs/method.md, "Imbalance baselines"), each combinable with DICC (which then uses the true class).</summary>
public enum ImbalanceRule
{
    /// <summary>Uniform shuffling and plain cross-entropy.</summary>
    None,

    /// <summary>Draws sample i with probability proportional to <c>1 / E(n_{y_i})</c>; plain cross-entropy.</summary>
    Resample,

    /// <summary>Uniform shuffling; cross-entropy with class weights <c>1 / E(n_c)</c> summing to C.</summary>
    Reweight,
}

/// <summary>Parsing and naming the imbalance rules (none, resample, reweight).</summary>
public static class ImbalanceRules
{
    /// <summary>Parses <c>none</c>, <c>resample</c> or <c>reweight</c> (case-insensitive).</summary>
    public static ImbalanceRule Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "none" => ImbalanceRule.None,
        "resample" => ImbalanceRule.Resample,
        "reweight" => ImbalanceRule.Reweight,
        _ => throw new FormatException($"unknown rule '{text.Trim()}'; valid: none, resample, reweight."),
    };

    /// <summary>The lower-case name <see cref="Parse"/> reads.</summary>
    public static string Name(this ImbalanceRule rule) => rule.ToString().ToLowerInvariant();

    /// <summary>The epoch order of a rule: class-balanced draws for <c>resample</c>, a shuffle otherwise.</summary>
    public static EpochSampler CreateSampler(this ImbalanceRule rule, ReadOnlySpan<int> labels, int classCount,
        ulong seed, ulong stream = 0, double beta = EffectiveNumber.DefaultBeta) =>
        rule == ImbalanceRule.Resample
            ? new ClassBalancedSampler(labels, classCount, seed, stream, beta)
            : new ShuffleSampler(labels.Length, seed, stream);

    /// <summary>The cross-entropy class weights of a rule: <c>reweight</c>'s, or null (unweighted) for the others.</summary>
    public static double[]? LossWeights(this ImbalanceRule rule, ReadOnlySpan<int> classCounts, double beta = EffectiveNumber.DefaultBeta) =>
        rule == ImbalanceRule.Reweight ? EffectiveNumber.ClassWeights(classCounts, beta) : null;
}

/// <summary>Counting labels.</summary>
public static class ClassStatistics
{
    /// <summary>Samples per class; a label outside [0, C) is an error naming its position.</summary>
    public static int[] Count(ReadOnlySpan<int> labels, int classCount)
    {
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "At least one class.");
        var counts = new int[classCount];
        for (int i = 0; i < labels.Length; i++)
        {
            int c = labels[i];
            if ((uint)c >= (uint)classCount)
                throw new ArgumentException($"Label {c} of sample {i} is outside [0, {classCount}).", nameof(labels));
            counts[c]++;
        }
        return counts;
    }
}
