using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Dicc.Engine.Randomness;

namespace Dicc.Engine.Data;

/// <summary>
/// The images of one fold of a subject-independent k-fold split: which subjects are tested, which validate,
/// and the rest train. Written to each fold's config.json and to the folds' <c>folds.json</c>, so that the
/// split can be made again from the files alone (docs/evaluation.md, "Subject-independent k-fold").
/// </summary>
/// <param name="Fold">This fold, counting from 1.</param>
/// <param name="Folds">How many folds there are.</param>
/// <param name="GroupBy">The regular expression whose first group is the subject id, matched against file names.</param>
/// <param name="Seed">Seed of the assignment.</param>
/// <param name="TestSubjects">The subjects whose images are this fold's test split, sorted.</param>
/// <param name="ValidationSubjects">The training subjects held out for validation, sorted.</param>
public sealed record FoldSplit(int Fold, int Folds, string GroupBy, ulong Seed, string[] TestSubjects, string[] ValidationSubjects);

/// <summary>A subject-independent k-fold assignment of a dataset: each subject's fold, and each fold's split.</summary>
/// <param name="Subjects">Subject id to fold (counting from 1).</param>
/// <param name="Splits">One per fold, in fold order.</param>
public sealed record FoldAssignment(IReadOnlyDictionary<string, int> Subjects, IReadOnlyList<FoldSplit> Splits);

/// <summary>
/// Subject-independent k-fold cross-validation, the protocol papers report CK+, JAFFE and Oulu-CASIA with: the
/// subjects (taken from the file names by a regular expression) are dealt into k folds so that no subject is in
/// two folds, stratified by class as far as whole subjects allow; fold i tests on its subjects and trains on the
/// others, of which some whole subjects are held out for validation (the test fold is never looked at).
/// </summary>
public static class SubjectFolds
{
    /// <summary>Named patterns for the datasets' own file names (the first group is the subject).</summary>
    public static IReadOnlyDictionary<string, string> Presets { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        // CK+ (and CK+48): S010_004_00000017.png is subject S010, sequence 004, frame 17.
        ["ck+"] = @"^(S\d+)_",
        // JAFFE: KA.HA1.29.tiff is subject KA, happy, first image, number 29.
        ["jaffe"] = @"^([A-Za-z]{2})\.",
    };

    private const ulong FoldStream = 0x464F_4C44_0000_0000; // "FOLD"
    private const ulong ValidationStream = 0x464F_4C56_0000_0000; // "FOLV"

    /// <summary>
    /// The regular expression of <paramref name="groupBy"/>: a preset's (<c>ck+</c>, <c>jaffe</c>) or the text
    /// itself, which must compile and have a group. Errors name the parameter <c>groupBy</c>.
    /// </summary>
    public static Regex ParseGroupBy(string groupBy)
    {
        if (string.IsNullOrWhiteSpace(groupBy))
            throw new InputException("groupBy: give a regular expression whose first group is the subject id, or a preset (ck+, jaffe).") { Parameter = "groupBy" };
        string pattern = Presets.TryGetValue(groupBy.Trim(), out var preset) ? preset : groupBy;
        Regex regex;
        try
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new InputException($"groupBy: '{groupBy}' is not a regular expression ({e.Message}).") { Parameter = "groupBy" };
        }
        if (regex.GetGroupNumbers().Length < 2)
            throw new InputException($"groupBy: '{groupBy}' has no group; put the subject id in parentheses, e.g. ^(S\\d+)_ (or use a preset: ck+, jaffe).") { Parameter = "groupBy" };
        return regex;
    }

    /// <summary>
    /// The subject of every image: the first group of <paramref name="groupBy"/> matched against the file name.
    /// An image without a file name (CSV rows, synthetic faces) or whose name does not match is an error naming it.
    /// </summary>
    public static string[] SubjectsOf(ImageDataset data, Regex groupBy)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count > 0 && data.Sources is null)
            throw new InputException("groupBy: these images have no file names to take subjects from (synthetic faces); k-fold needs image files named by subject.") { Parameter = "groupBy" };
        var subjects = new string[data.Count];
        int unmatched = 0;
        string? first = null;
        for (int i = 0; i < data.Count; i++)
        {
            string source = data.Sources![i];
            string name = Path.GetFileName(source);
            var m = groupBy.Match(name);
            string subject = m.Success ? m.Groups[1].Value : "";
            if (subject.Length == 0)
            {
                unmatched++;
                first ??= source;
                continue;
            }
            subjects[i] = subject;
        }
        if (unmatched > 0)
            throw new InputException($"groupBy: {first}: file name '{Path.GetFileName(first)}' gives no subject with '{groupBy}'" +
                                     (unmatched > 1 ? $" (nor do {unmatched - 1} other files)" : "") +
                                     "; CSV rows have no file names, and the pattern's first group must match in every image file's name.") { Parameter = "groupBy" };
        return subjects;
    }

    /// <summary>
    /// Deals the subjects of <paramref name="pool"/> into <paramref name="folds"/> folds with <paramref name="seed"/>,
    /// and holds out whole training subjects for validation in each fold (about <paramref name="validationFraction"/>
    /// of the training images). Subjects are dealt largest first (ties in a seeded random order), each to the fold
    /// whose class counts it evens out most, relative to each class's size (ties: the fold with fewest images), so
    /// the folds are stratified by class as far as whole subjects allow; every fold gets at least one subject.
    /// </summary>
    public static FoldAssignment Assign(ImageDataset pool, Regex groupBy, int folds, ulong seed, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(groupBy);
        if (folds < 2) throw new InputException($"folds must be at least 2, got {folds}.") { Parameter = "folds" };
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new InputException($"validationFraction must be in (0, 1), got {validationFraction.ToString(CultureInfo.InvariantCulture)}.") { Parameter = "validationFraction" };
        var subjects = SubjectsOf(pool, groupBy);
        var counts = CountsBySubject(pool, subjects);
        if (counts.Count < folds)
            throw new InputException($"folds: {folds} folds need at least {folds} subjects; the data has {counts.Count} " +
                                     $"({string.Join(", ", counts.Keys.Take(12))}{(counts.Count > 12 ? ", ..." : "")}).") { Parameter = "folds" };

        var foldOf = Deal(counts, folds, pool.ClassCount, new RandomStream(seed, FoldStream));
        var splits = new List<FoldSplit>();
        for (int f = 0; f < folds; f++)
        {
            var test = foldOf.Where(kv => kv.Value == f).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToArray();
            var training = counts.Where(kv => foldOf[kv.Key] != f).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            var validation = ValidationSubjects(training, pool.ClassCount, validationFraction, new RandomStream(seed, ValidationStream + (ulong)f));
            splits.Add(new FoldSplit(f + 1, folds, groupBy.ToString(), seed, test, validation));
        }
        return new FoldAssignment(foldOf.ToDictionary(kv => kv.Key, kv => kv.Value + 1, StringComparer.Ordinal), splits);
    }

    /// <summary>
    /// The train, validation and test splits of one fold of <paramref name="pool"/> (all of a dataset's images:
    /// see <see cref="Pool"/>): the test subjects' images are the test split, the validation subjects' the
    /// validation split, every other image trains. The fingerprint is the pool's with the fold's subjects.
    /// </summary>
    public static DatasetSplits Apply(DatasetSplits pool, FoldSplit fold)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(fold);
        var all = Pool(pool);
        var subjects = SubjectsOf(all, ParseGroupBy(fold.GroupBy));
        var test = new HashSet<string>(fold.TestSubjects, StringComparer.Ordinal);
        var validation = new HashSet<string>(fold.ValidationSubjects, StringComparer.Ordinal);
        var parts = new List<int>[3] { [], [], [] };
        for (int i = 0; i < all.Count; i++)
            parts[test.Contains(subjects[i]) ? 2 : validation.Contains(subjects[i]) ? 1 : 0].Add(i);
        string? fingerprint = pool.Fingerprint is null ? null : Hash($"{pool.Fingerprint}\nfold {fold.Fold}/{fold.Folds}\n{fold.GroupBy}\n" +
            $"test {string.Join('|', fold.TestSubjects)}\nvalidation {string.Join('|', fold.ValidationSubjects)}");
        return new DatasetSplits(all.Subset(parts[0].ToArray(), Split.Train), all.Subset(parts[1].ToArray(), Split.Validation),
            all.Subset(parts[2].ToArray(), Split.Test), pool.Origin, pool.Source, pool.Skipped, fingerprint)
        {
            SourceRoot = pool.SourceRoot,
        };
    }

    /// <summary>Every image of a dataset in one split (train, then validation, then test): what k-fold deals out.</summary>
    public static ImageDataset Pool(DatasetSplits data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Validation.Count == 0 && data.Test.Count == 0) return data.Train;
        var parts = new[] { data.Train, data.Validation, data.Test };
        int total = parts.Sum(p => p.Count), bytes = data.Train.PixelsPerImage;
        var pixels = new byte[(long)total * bytes];
        var labels = new int[total];
        bool named = parts.All(p => p.Count == 0 || p.Sources is not null);
        var sources = named ? new string[total] : null;
        int offset = 0;
        foreach (var part in parts)
        {
            part.Pixels.Span.CopyTo(pixels.AsSpan(offset * bytes));
            part.Labels.CopyTo(labels.AsSpan(offset));
            if (sources is not null)
                for (int i = 0; i < part.Count; i++) sources[offset + i] = part.Sources![i];
            offset += part.Count;
        }
        return new ImageDataset(pixels, labels, data.ClassNames, data.Height, data.Width, Split.Train, sources);
    }

    /// <summary>Images per class of each subject, subjects in ordinal order.</summary>
    private static SortedDictionary<string, int[]> CountsBySubject(ImageDataset data, string[] subjects)
    {
        var counts = new SortedDictionary<string, int[]>(StringComparer.Ordinal);
        for (int i = 0; i < data.Count; i++)
        {
            if (!counts.TryGetValue(subjects[i], out var c)) counts[subjects[i]] = c = new int[data.ClassCount];
            c[data.Label(i)]++;
        }
        return counts;
    }

    /// <summary>
    /// The greedy deal: subjects by size, largest first (equal sizes in a seeded random order); each to the fold
    /// where it adds least to the classes the fold already has, relative to each class's total (so folds fill
    /// every class evenly), ties to the fold with fewest images, then the lowest fold. Returns subject → fold (from 0).
    /// </summary>
    private static Dictionary<string, int> Deal(IReadOnlyDictionary<string, int[]> counts, int folds, int classes, RandomStream random)
    {
        var order = counts.Keys.ToArray();
        var keys = new uint[order.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = random.NextUInt();
        var indices = Enumerable.Range(0, order.Length)
            .OrderByDescending(i => counts[order[i]].Sum()).ThenBy(i => keys[i]).ThenBy(i => i).ToArray();
        var totals = new double[classes];
        foreach (var c in counts.Values)
            for (int k = 0; k < classes; k++) totals[k] += c[k];
        var foldCounts = new int[folds, classes];
        var foldSizes = new int[folds];
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (int i in indices)
        {
            var c = counts[order[i]];
            int best = -1;
            double bestCost = double.PositiveInfinity;
            for (int f = 0; f < folds; f++)
            {
                // Adding c to fold f changes sum_k ((F_fk + c_k - T_k/folds) / T_k)^2 by a term that depends on the
                // fold only through sum_k c_k F_fk / T_k^2: the overlap with what the fold already holds.
                double cost = 0;
                for (int k = 0; k < classes; k++)
                    if (c[k] > 0) cost += c[k] * (double)foldCounts[f, k] / (totals[k] * totals[k]);
                if (cost < bestCost - 1e-15 || (Math.Abs(cost - bestCost) <= 1e-15 && foldSizes[f] < foldSizes[best]))
                {
                    best = f;
                    bestCost = cost;
                }
            }
            result[order[i]] = best;
            for (int k = 0; k < classes; k++) foldCounts[best, k] += c[k];
            foldSizes[best] += c.Sum();
        }
        return result;
    }

    /// <summary>
    /// Whole training subjects held out for validation: the training subjects dealt like the folds into
    /// round(1 / fraction) groups (at most one per subject, at least 2), of which the first validates.
    /// </summary>
    private static string[] ValidationSubjects(Dictionary<string, int[]> training, int classes, double fraction, RandomStream random)
    {
        if (training.Count < 2)
            throw new InputException($"folds: a fold keeps only {training.Count} training subject, so no subject is left to validate on; use fewer folds or data with more subjects.") { Parameter = "folds" };
        int groups = Math.Clamp((int)Math.Round(1 / fraction, MidpointRounding.AwayFromZero), 2, training.Count);
        var dealt = Deal(training, groups, classes, random);
        return dealt.Where(kv => kv.Value == 0).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToArray();
    }

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
