using System.Globalization;
using System.Text.Json.Serialization;

namespace Dicc.Engine.Evaluation;

/// <summary>Long-tail class groups by training-set frequency.</summary>
public enum ShotGroup
{
    /// <summary>Classes with many training images.</summary>
    [JsonStringEnumMemberName("many")] Many,
    /// <summary>Classes with a medium number of training images.</summary>
    [JsonStringEnumMemberName("medium")] Medium,
    /// <summary>Classes with few training images.</summary>
    [JsonStringEnumMemberName("few")] Few,
}

/// <summary>
/// How classes are split into many / medium / few-shot groups from their training-set counts.
/// The default, <see cref="RankThirds"/>, suits 7-class FER: the ImageNet-LT thresholds (many &gt; 100,
/// few &lt; 20 images) put every class of a FER2013 subset with beta = 10 (smallest class 430) into "many",
/// and thresholds relative to the largest class move classes between groups as beta changes, so groups
/// of different beta would not be comparable. Ranks give non-empty groups of fixed size for every beta.
/// </summary>
public abstract record ShotGroupRule
{
    /// <summary>The group of each class (index = class label).</summary>
    public abstract ShotGroup[] Assign(IReadOnlyList<long> trainCounts);

    /// <summary>What the rule does, in words (stored in report.json).</summary>
    public abstract string Describe(int classCount);

    /// <summary>
    /// By rank of training count (descending, ties by class index): the top k classes are many-shot, the
    /// bottom k few-shot, the rest medium, with k = floor((C + 1) / 3): 2 / 3 / 2 for 7 classes, 1 / 1 / 1 for 3.
    /// </summary>
    public static ShotGroupRule RankThirds { get; } = new RankThirdsRule();

    /// <summary>The ImageNet-LT rule: many if count &gt; <paramref name="manyAbove"/>, few if count &lt; <paramref name="fewBelow"/>.</summary>
    public static ShotGroupRule Absolute(long manyAbove = 100, long fewBelow = 20) => new AbsoluteRule(manyAbove, fewBelow);

    /// <summary>Many if count &gt;= <paramref name="manyAtLeast"/> x n_max, few if count &lt; <paramref name="fewBelow"/> x n_max.</summary>
    public static ShotGroupRule RelativeToLargest(double manyAtLeast, double fewBelow) => new RelativeRule(manyAtLeast, fewBelow);

    /// <summary>
    /// Parses <c>rank</c>, <c>absolute[:MANY_ABOVE:FEW_BELOW]</c> or <c>relative:MANY_AT_LEAST:FEW_BELOW</c>
    /// (fractions of the largest class); throws <see cref="FormatException"/> naming the text otherwise.
    /// </summary>
    public static ShotGroupRule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Trim().Split(':');
        switch (parts[0].ToLowerInvariant())
        {
            case "rank" when parts.Length == 1:
                return RankThirds;
            case "absolute" when parts.Length == 1:
                return Absolute();
            case "absolute" when parts.Length == 3:
                return Absolute(ParseLong(text, parts[1]), ParseLong(text, parts[2]));
            case "relative" when parts.Length == 3:
                return RelativeToLargest(ParseDouble(text, parts[1]), ParseDouble(text, parts[2]));
            default:
                throw new FormatException(
                    $"Unknown shot-group rule '{text}': use rank, absolute[:MANY_ABOVE:FEW_BELOW] or relative:MANY_AT_LEAST:FEW_BELOW.");
        }
    }

    private static long ParseLong(string text, string part) =>
        long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= 0 ? v
            : throw new FormatException($"Shot-group rule '{text}': '{part}' must be a non-negative integer.");

    private static double ParseDouble(string text, string part) =>
        double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 && v <= 1 ? v
            : throw new FormatException($"Shot-group rule '{text}': '{part}' must be a fraction in [0, 1].");

    private static void RequireCounts(IReadOnlyList<long> trainCounts)
    {
        ArgumentNullException.ThrowIfNull(trainCounts);
        if (trainCounts.Count == 0) throw new ArgumentException("No training counts.", nameof(trainCounts));
        for (int c = 0; c < trainCounts.Count; c++)
            if (trainCounts[c] < 0)
                throw new ArgumentException($"Training count of class {c} is negative ({trainCounts[c]}).", nameof(trainCounts));
    }

    private sealed record RankThirdsRule : ShotGroupRule
    {
        public override ShotGroup[] Assign(IReadOnlyList<long> trainCounts)
        {
            RequireCounts(trainCounts);
            int c = trainCounts.Count, k = (c + 1) / 3;
            int[] order = Enumerable.Range(0, c).OrderByDescending(i => trainCounts[i]).ThenBy(i => i).ToArray();
            var groups = new ShotGroup[c];
            for (int rank = 0; rank < c; rank++)
                groups[order[rank]] = rank < k ? ShotGroup.Many : rank >= c - k ? ShotGroup.Few : ShotGroup.Medium;
            return groups;
        }

        public override string Describe(int classCount)
        {
            int k = (classCount + 1) / 3;
            return $"rank by training count: many = top {k}, few = bottom {k}, medium = the other {classCount - 2 * k} of {classCount} classes";
        }
    }

    private sealed record AbsoluteRule : ShotGroupRule
    {
        public AbsoluteRule(long manyAbove, long fewBelow)
        {
            if (manyAbove < 0 || fewBelow < 0 || fewBelow > manyAbove + 1)
                throw new ArgumentException($"Absolute shot thresholds need 0 <= few-below <= many-above + 1; got many > {manyAbove}, few < {fewBelow}.");
            ManyAbove = manyAbove;
            FewBelow = fewBelow;
        }

        public long ManyAbove { get; }
        public long FewBelow { get; }

        public override ShotGroup[] Assign(IReadOnlyList<long> trainCounts)
        {
            RequireCounts(trainCounts);
            return trainCounts.Select(n => n > ManyAbove ? ShotGroup.Many : n < FewBelow ? ShotGroup.Few : ShotGroup.Medium).ToArray();
        }

        public override string Describe(int classCount) =>
            $"absolute training counts: many > {ManyAbove}, few < {FewBelow}, medium otherwise";
    }

    private sealed record RelativeRule : ShotGroupRule
    {
        public RelativeRule(double manyAtLeast, double fewBelow)
        {
            if (!(fewBelow >= 0 && fewBelow <= manyAtLeast && manyAtLeast <= 1))
                throw new ArgumentException($"Relative shot thresholds need 0 <= few-below <= many-at-least <= 1; got {manyAtLeast} and {fewBelow}.");
            ManyAtLeast = manyAtLeast;
            FewBelow = fewBelow;
        }

        public double ManyAtLeast { get; }
        public double FewBelow { get; }

        public override ShotGroup[] Assign(IReadOnlyList<long> trainCounts)
        {
            RequireCounts(trainCounts);
            double max = trainCounts.Max();
            return trainCounts.Select(n => n >= ManyAtLeast * max ? ShotGroup.Many : n < FewBelow * max ? ShotGroup.Few : ShotGroup.Medium).ToArray();
        }

        public override string Describe(int classCount) =>
            string.Create(CultureInfo.InvariantCulture,
                $"relative to the largest class n_max: many >= {ManyAtLeast} n_max, few < {FewBelow} n_max, medium otherwise");
    }
}
