using System.Globalization;
using Dicc.Engine.Randomness;

namespace Dicc.Engine.Data;

/// <summary>How per-class counts fall from the head class to the tail class.</summary>
public enum LongTailProfile
{
    /// <summary><c>n_r = n_max * beta^(-r/(C-1))</c> for the class of frequency rank r (Cui et al. 2019; Cao et al. 2019).</summary>
    Exponential,

    /// <summary>The most frequent half of the classes keep n_max, the rest get n_max / beta (Buda et al. 2018).</summary>
    Step,
}

/// <summary>Options of a long-tailed subset of a training split.</summary>
public sealed record LongTailOptions
{
    /// <summary>Imbalance factor beta = n_max / n_min (>= 1). Default 10.</summary>
    public double Beta { get; init; } = 10;

    /// <summary>How counts fall from head to tail (exponential by default).</summary>
    public LongTailProfile Profile { get; init; } = LongTailProfile.Exponential;

    /// <summary>Images of the head class; null = the largest count every class can supply under the profile.</summary>
    public int? MaxCount { get; init; }

    /// <summary>Explicit per-class counts in label order; when given, <see cref="Beta"/>, <see cref="Profile"/> and <see cref="MaxCount"/> are not used.</summary>
    public IReadOnlyList<int>? Counts { get; init; }

    /// <summary>Step profile: how many of the most frequent classes keep n_max; null = ceil(C / 2).</summary>
    public int? StepHeadClasses { get; init; }

    /// <summary>Class labels from head to tail; null = by the source's class frequency (ties by label).</summary>
    public IReadOnlyList<int>? Ranking { get; init; }

    /// <summary>Seed of the draw. Each class draws from its own stream, so a class's picks depend only on its own count.</summary>
    public ulong Seed { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Counts is { } counts
        ? $"explicit counts {string.Join(',', counts)}, seed {Seed}"
        : $"{Profile.ToString().ToLowerInvariant()} profile, beta {Beta.ToString(CultureInfo.InvariantCulture)}" +
          (MaxCount is { } m ? $", n_max {m}" : "") + $", seed {Seed}";
}

/// <summary>What a long-tail operation did: counts per class before and after, and where the result went.</summary>
public sealed record LongTailReport(IReadOnlyList<string> ClassNames, int[] Before, int[] After, string? OutputPath, string Format)
{
    /// <summary>n_max / n_min of the subset (over classes that keep at least one image).</summary>
    public double ImbalanceFactor => LongTail.ImbalanceFactor(After);

    /// <inheritdoc/>
    public override string ToString() =>
        string.Join(", ", ClassNames.Select((c, i) => $"{c} {Before[i]}->{After[i]}")) +
        $"; beta {ImbalanceFactor.ToString("0.##", CultureInfo.InvariantCulture)}";
}

/// <summary>
/// Long-tailed subsets of a training split (docs/data-formats.md, "Long-tailed subsets"): per-class target counts from an imbalance factor and a
/// profile, or given explicitly, and a seeded draw of that many images per class. Validation and test
/// splits are never touched. <see cref="Write"/> is what <c>dicc longtail</c> does: it writes a manifest
/// (a list of the chosen image files) or a FER2013 CSV, never copies of images.
/// </summary>
public static class LongTail
{
    internal const ulong SelectStream = 0x4C54_4149_0000_0000; // "LTAI"

    /// <summary>
    /// The per-class counts of the paper's long-tailed FER2013 at beta = 10 (the authors' FER2013_imbalance.py),
    /// in label order. n_max (happy, 4300) and n_min (disgust, 430) give beta = 10 exactly, and the order
    /// of the classes follows FER2013's frequencies; the counts between were picked by hand (about 2, 3, 4,
    /// 6 and 8 times the original 436 disgust images) and follow neither the exponential nor the step profile.
    /// </summary>
    public static IReadOnlyList<int> PaperFer2013Beta10 { get; } = [1308, 430, 1744, 4300, 2612, 872, 3488];

    /// <summary>
    /// The per-class counts of the paper's long-tailed FER2013 at beta = 100, in label order, as its class-count figure
    /// gives them (docs/method.md, "The presets and the class order"): n_max 4300 (happy) / n_min 43 (disgust) = 100.
    /// </summary>
    public static IReadOnlyList<int> PaperFer2013Beta100 { get; } = [387, 43, 1077, 4300, 1796, 139, 2997];

    /// <summary>Named explicit counts accepted by <see cref="ParseCounts"/>.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<int>> Presets { get; } =
        new Dictionary<string, IReadOnlyList<int>>(StringComparer.OrdinalIgnoreCase)
        {
            ["fer2013-beta10"] = PaperFer2013Beta10, ["fer2013-beta100"] = PaperFer2013Beta100,
        };

    /// <summary>Parses a profile name: exp (exponential) or step.</summary>
    public static LongTailProfile ParseProfile(string text) => text.Trim().ToLowerInvariant() switch
    {
        "exp" or "exponential" => LongTailProfile.Exponential,
        "step" => LongTailProfile.Step,
        _ => throw new DataArgumentException("profile", $"'{text}' is not a profile; expected exp or step"),
    };

    /// <summary>Parses per-class counts "n0,n1,...,n6" (label order) or a preset name (fer2013-beta10, fer2013-beta100).</summary>
    public static int[] ParseCounts(string text)
    {
        if (Presets.TryGetValue(text.Trim(), out var preset)) return preset.ToArray();
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var counts = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out counts[i]))
                throw new DataArgumentException("counts", $"'{parts[i]}' is not a count; expected n0,n1,... in label order or a preset ({string.Join(", ", Presets.Keys)})");
        return counts;
    }

    /// <summary>n_max / n_min over classes with at least one image (1 for fewer than two such classes).</summary>
    public static double ImbalanceFactor(ReadOnlySpan<int> counts)
    {
        int max = 0, min = int.MaxValue;
        foreach (int c in counts)
        {
            if (c <= 0) continue;
            max = Math.Max(max, c);
            min = Math.Min(min, c);
        }
        return min == int.MaxValue ? 1 : (double)max / min;
    }

    /// <summary>Labels from most to least frequent (ties: lower label first).</summary>
    public static int[] RankByFrequency(ReadOnlySpan<int> counts)
    {
        var c = counts.ToArray();
        return Enumerable.Range(0, c.Length).OrderByDescending(i => c[i]).ThenBy(i => i).ToArray();
    }

    /// <summary>
    /// Counts by rank (head first) for a profile: exponential <c>floor(n_max * beta^(-r/(C-1)))</c> or step.
    /// (Flooring is the usual convention: CIFAR-10-LT at beta 100 is 5000, 2997, 1796, ..., 50.)
    /// </summary>
    public static int[] ProfileCounts(int classCount, int maxCount, double beta, LongTailProfile profile, int? stepHeadClasses = null)
    {
        ValidateBeta(beta);
        if (classCount < 1) throw new DataArgumentException("classes", "at least one class is needed");
        if (maxCount < 1) throw new DataArgumentException("max count", $"{maxCount} must be at least 1");
        var counts = new int[classCount];
        int head = stepHeadClasses ?? (classCount + 1) / 2;
        if (profile == LongTailProfile.Step && (head < 1 || head > classCount))
            throw new DataArgumentException("step head classes", $"{head} is outside 1..{classCount}");
        for (int r = 0; r < classCount; r++)
        {
            double n = profile switch
            {
                LongTailProfile.Exponential => classCount == 1 ? maxCount : maxCount * Math.Pow(beta, -(double)r / (classCount - 1)),
                LongTailProfile.Step => r < head ? maxCount : maxCount / beta,
                _ => throw new ArgumentOutOfRangeException(nameof(profile)),
            };
            counts[r] = (int)Math.Floor(n + 1e-9); // the epsilon keeps exact products (4300 / 10) from flooring down
        }
        if (counts[^1] < 1)
            throw new DataArgumentException("beta", $"beta {beta.ToString(CultureInfo.InvariantCulture)} with n_max {maxCount} leaves the tail class no image");
        return counts;
    }

    /// <summary>
    /// Target counts per class (label order) for a split with <paramref name="available"/> images per class.
    /// <paramref name="classNames"/> only names classes in error messages.
    /// Without <see cref="LongTailOptions.MaxCount"/>, n_max is the largest value for which every class can
    /// supply its count (for FER2013 at beta 10 the 436 disgust images bound it to 4360).
    /// </summary>
    public static int[] TargetCounts(ReadOnlySpan<int> available, LongTailOptions options, IReadOnlyList<string>? classNames = null)
    {
        string Name(int label) => classNames is not null && label < classNames.Count ? classNames[label] : $"class {label}";
        ArgumentNullException.ThrowIfNull(options);
        int classCount = available.Length;
        if (options.Counts is { } explicitCounts)
        {
            if (explicitCounts.Count != classCount)
                throw new DataArgumentException("counts", $"{explicitCounts.Count} counts given for {classCount} classes");
            var targets = explicitCounts.ToArray();
            for (int c = 0; c < classCount; c++)
            {
                if (targets[c] < 0) throw new DataArgumentException("counts", $"{Name(c)}: {targets[c]} is negative");
                if (targets[c] > available[c])
                    throw new DataArgumentException("counts", $"{Name(c)} asks for {targets[c]} images; only {available[c]} available");
            }
            return targets;
        }

        ValidateBeta(options.Beta);
        var ranking = Ranking(available, options.Ranking);
        // Largest feasible n_max: each rank r needs n_max * factor_r <= available.
        var unit = ProfileFactors(classCount, options.Beta, options.Profile, options.StepHeadClasses);
        double feasible = double.PositiveInfinity;
        for (int r = 0; r < classCount; r++)
            feasible = Math.Min(feasible, available[ranking[r]] / unit[r]);
        for (int c = 0; c < classCount; c++)
            if (available[c] == 0)
                throw new DataArgumentException("beta", $"{Name(c)} has no training images to draw from; give explicit counts (0 for {Name(c)}) or a dataset with images of every class");
        int maxCount = options.MaxCount ?? (int)Math.Floor(feasible + 1e-9);
        if (maxCount < 1) throw new DataArgumentException("max count", $"n_max must be at least 1, got {maxCount}");
        var byRank = ProfileCounts(classCount, maxCount, options.Beta, options.Profile, options.StepHeadClasses);
        var result = new int[classCount];
        for (int r = 0; r < classCount; r++)
        {
            int label = ranking[r];
            if (byRank[r] > available[label])
                throw new DataArgumentException("max count",
                    $"n_max {maxCount} at beta {options.Beta.ToString(CultureInfo.InvariantCulture)} needs {byRank[r]} images of {Name(label)} (rank {r}); only {available[label]} available");
            result[label] = byRank[r];
        }
        return result;
    }

    /// <summary>
    /// A seeded draw of <paramref name="targets"/>[c] images of each class c: indices in ascending order.
    /// Each class shuffles its members with its own stream and takes a prefix, so a smaller count is a
    /// subset of a larger one under the same seed.
    /// </summary>
    public static int[] Select(ReadOnlySpan<int> labels, ReadOnlySpan<int> targets, ulong seed)
    {
        var members = new List<int>[targets.Length];
        for (int c = 0; c < members.Length; c++) members[c] = [];
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)targets.Length) throw new ArgumentOutOfRangeException(nameof(labels), $"Label {labels[i]} has no target count.");
            members[labels[i]].Add(i);
        }
        var chosen = new List<int>();
        for (int c = 0; c < members.Length; c++)
        {
            if (targets[c] > members[c].Count)
                throw new DataArgumentException("counts", $"class {c} asks for {targets[c]} images; only {members[c].Count} available");
            var order = members[c].ToArray();
            new RandomStream(seed, SelectStream + (ulong)c).Shuffle(order.AsSpan());
            chosen.AddRange(order.AsSpan(0, targets[c]));
        }
        chosen.Sort();
        return chosen.ToArray();
    }

    /// <summary>The long-tailed subset of a training split.</summary>
    public static ImageDataset Apply(ImageDataset train, LongTailOptions options)
    {
        var targets = TargetCounts(train.ClassCounts(), options, train.ClassNames);
        return train.Subset(Select(train.Labels, targets, options.Seed));
    }

    /// <summary>The same data with a long-tailed train split; validation and test unchanged.</summary>
    public static DatasetSplits Apply(DatasetSplits data, LongTailOptions options) => data.WithTrain(Apply(data.Train, options));

    /// <summary>
    /// What <c>dicc longtail</c> does: loads <paramref name="dataPath"/>, draws the long-tailed train split,
    /// and writes to <paramref name="outPath"/> either a FER2013 CSV (when it ends in .csv: the chosen train
    /// rows plus the unchanged validation and test rows, with Usage) or a manifest listing the chosen image
    /// files and the unchanged validation and test files (image folders, manifests, packs of them).
    /// </summary>
    public static LongTailReport Write(string dataPath, string outPath, LongTailOptions options, DatasetLoadOptions? loadOptions = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var data = DatasetLoader.Load(dataPath, loadOptions);
        if (data.Train.Count == 0) throw new DataFormatException(dataPath, "has no train split to draw a long-tailed subset from");
        var before = data.Train.ClassCounts();
        var tail = Apply(data.Train, options);
        var after = tail.ClassCounts();
        bool csv = outPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);
        if (!csv && (tail.Sources is null || data.Validation.Sources is null || data.Test.Sources is null || data.SourceRoot is null))
            throw new DataArgumentException("out", $"{dataPath} has no image files to list (CSV data); write the subset as a .csv instead");
        DataOutput.Writing(outPath, () =>
        {
            if (Path.GetDirectoryName(Path.GetFullPath(outPath)) is { } dir) Directory.CreateDirectory(dir);
            if (csv)
            {
                Fer2013Csv.Write(outPath, [tail, data.Validation, data.Test]);
                return 0;
            }
            var entries = new List<Manifest.Entry>();
            foreach (var split in new[] { tail, data.Validation, data.Test })
                for (int i = 0; i < split.Count; i++) entries.Add(new Manifest.Entry(split.Split, split.Label(i), split.Sources![i]));
            Manifest.Write(outPath, data.SourceRoot!, data.ClassNames, entries,
                $"long-tailed train split of {dataPath}: {options}\nvalidation and test unchanged; train counts {string.Join(',', after)}");
            return 0;
        });
        return new LongTailReport(data.ClassNames, before, after, outPath, csv ? "csv" : "manifest");
    }

    private static int[] Ranking(ReadOnlySpan<int> available, IReadOnlyList<int>? explicitRanking)
    {
        if (explicitRanking is null) return RankByFrequency(available);
        int classCount = available.Length;
        if (explicitRanking.Count != classCount || explicitRanking.Distinct().Count() != classCount ||
            explicitRanking.Any(l => (uint)l >= (uint)classCount))
            throw new DataArgumentException("ranking", $"must list each of the {classCount} labels once");
        return explicitRanking.ToArray();
    }

    /// <summary>Count of rank r relative to n_max.</summary>
    private static double[] ProfileFactors(int classCount, double beta, LongTailProfile profile, int? stepHeadClasses)
    {
        int head = stepHeadClasses ?? (classCount + 1) / 2;
        var factors = new double[classCount];
        for (int r = 0; r < classCount; r++)
            factors[r] = profile == LongTailProfile.Exponential
                ? classCount == 1 ? 1 : Math.Pow(beta, -(double)r / (classCount - 1))
                : r < head ? 1 : 1 / beta;
        return factors;
    }

    private static void ValidateBeta(double beta)
    {
        if (!(beta >= 1) || double.IsInfinity(beta))
            throw new DataArgumentException("beta", $"{beta.ToString(CultureInfo.InvariantCulture)} must be a finite number >= 1");
    }
}
