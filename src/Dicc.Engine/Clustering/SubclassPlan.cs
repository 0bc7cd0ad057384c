using System.Globalization;

namespace Dicc.Engine.Clustering;

/// <summary>
/// How many subclasses each class is split into (the paper's Ns), with the pseudo-label layout that
/// follows: class c owns pseudo-labels <c>[Offset(c), Offset(c) + Count(c))</c>, where the offsets are the
/// exclusive prefix sums of the counts, and K = <see cref="TotalSubclasses"/> is the subclass head's width.
/// Built from an explicit list (<c>8,1,20,100,40,4,80</c>), from the training set's class counts
/// (<c>auto</c>), or from one of the paper's Table 5 presets. Immutable.
/// </summary>
public sealed class SubclassPlan : IEquatable<SubclassPlan>
{
    /// <summary>The word that asks for <see cref="Auto"/>.</summary>
    public const string AutoKeyword = "auto";

    /// <summary>The square-root plan (see <see cref="Sqrt"/>).</summary>
    public const string SqrtKeyword = "sqrt";

    // The paper's Table 5, re-ordered into the canonical label order angry, disgust, fear, happy, sad,
    // surprise, neutral. The paper lists FER2013 in its own label order (already canonical) and MMAFEDB
    // and Emotion-Domestic in their folders' alphabetical order (angry, disgust, fear, happy, neutral,
    // sad, surprise); docs/method.md gives the evidence.
    private static readonly (string Name, int[] Counts)[] Presets =
    [
        ("fer2013-b100", [8, 1, 20, 100, 40, 4, 80]),
        ("fer2013-b10", [4, 1, 6, 10, 8, 2, 8]),
        ("mmafedb-b100", [6, 1, 2, 60, 30, 20, 100]),
        ("mmafedb-b10", [2, 1, 2, 8, 6, 4, 10]),
        ("emotiondomestic-b100", [20, 6, 1, 100, 2, 30, 60]),
        ("emotiondomestic-b20", [2, 1, 1, 10, 1, 4, 8]),
    ];

    /// <summary>The number of classes the presets are written for (the seven basic expressions).</summary>
    public const int PresetClassCount = 7;

    private readonly int[] _counts;
    private readonly int[] _offsets;

    private SubclassPlan(int[] counts, string? presetName)
    {
        _counts = counts;
        _offsets = new int[counts.Length];
        long total = 0;
        for (int c = 0; c < counts.Length; c++)
        {
            _offsets[c] = (int)total;
            total += counts[c];
            if (total > int.MaxValue)
                throw new SubclassPlanException($"subclass numbers {string.Join(",", counts)} add up to more than {int.MaxValue}.");
        }
        TotalSubclasses = (int)total;
        PresetName = presetName;
    }

    /// <summary>C, the number of real classes.</summary>
    public int ClassCount => _counts.Length;

    /// <summary>K = sum of the subclass numbers: the width of the subclass head.</summary>
    public int TotalSubclasses { get; }

    /// <summary>Ns per class, in label order.</summary>
    public ReadOnlySpan<int> Counts => _counts;

    /// <summary>Exclusive prefix sums of <see cref="Counts"/>: class c's first pseudo-label.</summary>
    public ReadOnlySpan<int> Offsets => _offsets;

    /// <summary>The preset this plan came from, or null.</summary>
    public string? PresetName { get; }

    /// <summary>The names <see cref="Preset"/> accepts.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = Presets.Select(p => p.Name).ToArray();

    /// <summary>Ns, the number of subclasses of class <paramref name="classIndex"/>.</summary>
    public int Count(int classIndex) => _counts[classIndex];

    /// <summary>The first pseudo-label of class <paramref name="classIndex"/>.</summary>
    public int Offset(int classIndex) => _offsets[classIndex];

    /// <summary>The real class a pseudo-label belongs to (binary search over the offsets).</summary>
    public int ClassOf(int pseudoLabel)
    {
        if ((uint)pseudoLabel >= (uint)TotalSubclasses)
            throw new ArgumentOutOfRangeException(nameof(pseudoLabel), pseudoLabel, $"Pseudo-labels lie in [0, {TotalSubclasses}).");
        int lo = 0, hi = _counts.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (_offsets[mid] <= pseudoLabel) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>A plan from explicit subclass numbers (each at least 1).</summary>
    public static SubclassPlan FromCounts(ReadOnlySpan<int> counts)
    {
        if (counts.Length == 0) throw new SubclassPlanException("a subclass plan needs at least one class.");
        for (int c = 0; c < counts.Length; c++)
            if (counts[c] < 1)
                throw new SubclassPlanException($"class {c} has {counts[c]} subclasses; every class needs at least 1.");
        return new SubclassPlan(counts.ToArray(), null);
    }

    /// <summary>
    /// <c>auto</c>: <c>Ns_c = max(1, round(n_c / n_min))</c>, where n_min is the smallest non-zero class count
    /// (the tail class's size is the unit). Halves round up (away from zero: 2.5 -> 3, as a person rounds;
    /// Python's <c>round</c> would give 2). Computed in integers, so no ratio is misrounded. A class with no
    /// samples gets 1.
    /// </summary>
    public static SubclassPlan Auto(ReadOnlySpan<int> classCounts)
    {
        long min = SmallestCount(classCounts, AutoKeyword);
        var counts = new int[classCounts.Length];
        for (int c = 0; c < counts.Length; c++)
        {
            long rounded = (2L * classCounts[c] + min) / (2 * min); // floor(n/min + 1/2)
            counts[c] = (int)Math.Max(1, rounded);
        }
        return new SubclassPlan(counts, null);
    }

    /// <summary>The smallest non-zero class count, after checking the counts.</summary>
    private static long SmallestCount(ReadOnlySpan<int> classCounts, string plan)
    {
        if (classCounts.Length == 0) throw new SubclassPlanException($"'{plan}' needs the class counts of at least one class.");
        long min = long.MaxValue;
        for (int c = 0; c < classCounts.Length; c++)
        {
            if (classCounts[c] < 0) throw new SubclassPlanException($"class {c} has a negative count ({classCounts[c]}).");
            if (classCounts[c] > 0) min = Math.Min(min, classCounts[c]);
        }
        if (min == long.MaxValue) throw new SubclassPlanException($"'{plan}' needs at least one class with training samples; all counts are 0.");
        return min;
    }

    /// <summary>
    /// <c>sqrt</c> (an extension, not in the paper): <c>Ns_c = max(1, round(sqrt(n_c / n_min)))</c>, halves
    /// rounding up. It splits the head classes less finely than <c>auto</c> (beta 10 gives at most 3
    /// subclasses instead of 10), which suits short runs and small models: each subclass keeps enough
    /// samples for the pseudo-labels to be learnable from the start.
    /// </summary>
    public static SubclassPlan Sqrt(ReadOnlySpan<int> classCounts)
    {
        long min = SmallestCount(classCounts, SqrtKeyword);
        var counts = new int[classCounts.Length];
        for (int c = 0; c < counts.Length; c++)
            counts[c] = (int)Math.Max(1, Math.Round(Math.Sqrt((double)classCounts[c] / min), MidpointRounding.AwayFromZero));
        return new SubclassPlan(counts, null);
    }

    /// <summary>One of the paper's Table 5 rows by name (case-insensitive); see <see cref="PresetNames"/>.</summary>
    public static SubclassPlan Preset(string name)
    {
        foreach (var (presetName, counts) in Presets)
            if (string.Equals(presetName, name.Trim(), StringComparison.OrdinalIgnoreCase))
                return new SubclassPlan((int[])counts.Clone(), presetName);
        throw new SubclassPlanException($"unknown subclass preset '{name.Trim()}'; valid presets: {string.Join(", ", PresetNames)}.");
    }

    /// <summary>
    /// Resolves the <c>--subclasses</c> value: <c>auto</c> (needs <paramref name="trainingClassCounts"/>), a
    /// preset name, or a comma-separated list of <paramref name="classCount"/> whole numbers >= 1.
    /// </summary>
    /// <param name="text">What the user wrote.</param>
    /// <param name="classCount">C; the plan must have this many entries.</param>
    /// <param name="trainingClassCounts">Training-set samples per class, for <c>auto</c>; may be empty otherwise.</param>
    public static SubclassPlan Parse(string text, int classCount, ReadOnlySpan<int> trainingClassCounts = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "At least one class.");
        string value = text.Trim();
        if (value.Length == 0)
            throw new SubclassPlanException($"empty subclass plan; give '{AutoKeyword}', a preset ({string.Join(", ", PresetNames)}) or {classCount} comma-separated numbers.");

        if (string.Equals(value, AutoKeyword, StringComparison.OrdinalIgnoreCase) || string.Equals(value, SqrtKeyword, StringComparison.OrdinalIgnoreCase))
        {
            if (trainingClassCounts.Length != classCount)
                throw new SubclassPlanException($"'{value}' needs the training set's counts of all {classCount} classes (got {trainingClassCounts.Length}).");
            return string.Equals(value, SqrtKeyword, StringComparison.OrdinalIgnoreCase) ? Sqrt(trainingClassCounts) : Auto(trainingClassCounts);
        }

        if (IsPresetName(value))
        {
            var preset = Preset(value);
            if (preset.ClassCount != classCount)
                throw new SubclassPlanException($"preset '{preset.PresetName}' is for {preset.ClassCount} classes, but there are {classCount}.");
            return preset;
        }

        string[] parts = value.Split(',');
        if (parts.Length != classCount)
            throw new SubclassPlanException($"subclass list '{value}' has {parts.Length} entries; expected {classCount}, one per class.");
        var counts = new int[classCount];
        for (int c = 0; c < classCount; c++)
        {
            string part = parts[c].Trim();
            if (!int.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n))
                throw new SubclassPlanException($"subclass list '{value}': entry {c + 1} ('{part}') is not a whole number.");
            if (n < 1)
                throw new SubclassPlanException($"subclass list '{value}': entry {c + 1} is {n}; every class needs at least 1 subclass.");
            counts[c] = n;
        }
        return new SubclassPlan(counts, null);
    }

    /// <summary>
    /// How many classes a <c>--subclasses</c> value fixes by itself: a list's length or a preset's class
    /// count; null for <c>auto</c>, which takes C from elsewhere. Unknown preset names throw.
    /// </summary>
    public static int? DeclaredClassCount(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string value = text.Trim();
        if (string.Equals(value, AutoKeyword, StringComparison.OrdinalIgnoreCase) || string.Equals(value, SqrtKeyword, StringComparison.OrdinalIgnoreCase)) return null;
        return IsPresetName(value) ? Preset(value).ClassCount : value.Split(',').Length;
    }

    // A name starts with a letter and has no comma; anything else is read as a list (and its errors name entries).
    private static bool IsPresetName(string value) => value.Length > 0 && char.IsAsciiLetter(value[0]) && !value.Contains(',');

    /// <summary>The plan as a list, e.g. <c>8,1,20,100,40,4,80</c> (what <see cref="Parse"/> reads back).</summary>
    public override string ToString() => string.Join(",", _counts);

    /// <summary>True when both plans have the same subclass counts.</summary>
    public bool Equals(SubclassPlan? other) => other is not null && _counts.AsSpan().SequenceEqual(other._counts);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is SubclassPlan p && Equals(p);
    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int n in _counts) h.Add(n);
        return h.ToHashCode();
    }
}

/// <summary>A subclass plan that cannot be built from what was given; the message says which entry and why.</summary>
public sealed class SubclassPlanException(string message) : InputException(message);
