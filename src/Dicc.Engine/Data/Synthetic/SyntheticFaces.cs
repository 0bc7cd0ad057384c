using Dicc.Engine.Randomness;

namespace Dicc.Engine.Data.Synthetic;

/// <summary>Options of <see cref="SyntheticFaces.Generate"/>.</summary>
public sealed record SyntheticFaceOptions
{
    /// <summary>Train images of each class when balanced; of the head class when long-tailed. Default 600.</summary>
    public int TrainPerClass { get; init; } = 600;

    /// <summary>Imbalance factor of the train split (1 = balanced). Default 1.</summary>
    public double Beta { get; init; } = 1;

    /// <summary>How train counts fall from head to tail when <see cref="Beta"/> &gt; 1.</summary>
    public LongTailProfile Profile { get; init; } = LongTailProfile.Exponential;

    /// <summary>Explicit train counts in label order (overrides <see cref="TrainPerClass"/> and <see cref="Beta"/>).</summary>
    public IReadOnlyList<int>? TrainCounts { get; init; }

    /// <summary>Class labels from head to tail for a long-tailed train split. Default FER2013's frequency order.</summary>
    public IReadOnlyList<int> Ranking { get; init; } = SyntheticFaces.Fer2013Ranking;

    /// <summary>Validation images per class (balanced). Default 100.</summary>
    public int ValidationPerClass { get; init; } = 100;

    /// <summary>Test images per class (balanced). Default 100.</summary>
    public int TestPerClass { get; init; } = 100;

    /// <summary>The seed: the same options and seed give the same images.</summary>
    public ulong Seed { get; init; }

    /// <summary>Image side. Default 48.</summary>
    public int Size { get; init; } = ImageDataset.DefaultSize;

    /// <summary>Rendering threads; null = all cores. The images do not depend on it.</summary>
    public int? Threads { get; init; }
}

/// <summary>
/// The built-in dataset: procedurally drawn 48x48 grayscale faces of the seven expressions, generated in
/// memory from a seed (thousands of images per second), balanced or long-tailed. Classes differ as
/// expressions do (FACS-like cues: mouth curvature and opening, eye opening, brow height, tilt and pull,
/// nose wrinkles, raised upper lip, smile lines) while identity, pose, lighting and noise vary freely;
/// each expression is shown at a random intensity, so weak expressions overlap with neutral and related
/// ones (fear and surprise, anger and disgust) overlap with each other.
/// <para>Image k of class c in split s depends only on (seed, s, c, k): a long-tailed train split is a
/// subset of the balanced one, and the images do not depend on the number of threads.</para>
/// </summary>
public static class SyntheticFaces
{
    /// <summary>happy, neutral, sad, fear, angry, surprise, disgust: FER2013's train classes from most to least frequent.</summary>
    public static IReadOnlyList<int> Fer2013Ranking { get; } = [3, 6, 4, 2, 0, 5, 1];

    private const ulong ImageStream = 0x5359_4E00_0000_0000; // "SYN"

    /// <summary>Displacements of each expression from neutral at full intensity, in label order.</summary>
    private static readonly FaceParameters[] Prototypes =
    [
        // angry: brows lowered and pulled together, eyes narrowed, lips pressed (or bared), slight nose wrinkle
        new() { BrowInnerRaise = -0.08f, BrowOuterRaise = 0.02f, BrowPull = 0.04f, EyeOpenness = -0.4f, MouthCurve = -0.03f, MouthStretch = -0.12f, NoseWrinkle = 0.3f, Teeth = 0.7f },
        // disgust: nose wrinkled, upper lip raised, brows lowered, eyes narrowed, one corner up
        new() { BrowInnerRaise = -0.05f, BrowOuterRaise = -0.025f, BrowPull = 0.02f, EyeOpenness = -0.35f, MouthCurve = -0.05f, MouthOpen = 0.02f, UpperLipRaise = 0.05f, MouthAsymmetry = 0.03f, Teeth = 0.5f, NoseWrinkle = 1f, SmileLines = 0.6f, CheekRaise = 0.3f },
        // fear: brows raised (inner more) and drawn together, eyes wide, mouth slightly open and stretched
        new() { BrowInnerRaise = 0.1f, BrowOuterRaise = 0.04f, BrowPull = 0.025f, EyeOpenness = 0.6f, MouthCurve = -0.02f, MouthOpen = 0.07f, MouthStretch = 0.28f, Teeth = 0.4f },
        // happy: corners up, wide mouth, often teeth, raised cheeks and smile lines, eyes a little narrowed
        new() { EyeOpenness = -0.2f, MouthCurve = 0.1f, MouthOpen = 0.06f, MouthStretch = 0.22f, Teeth = 0.9f, SmileLines = 0.7f, CheekRaise = 1f },
        // sad: corners down, inner brows raised, outer brows lowered, eyes lowered
        new() { BrowInnerRaise = 0.08f, BrowOuterRaise = -0.035f, BrowPull = 0.015f, EyeOpenness = -0.25f, MouthCurve = -0.08f, MouthStretch = -0.05f },
        // surprise: brows high, eyes wide, mouth dropped open and rounded
        new() { BrowInnerRaise = 0.12f, BrowOuterRaise = 0.11f, EyeOpenness = 0.6f, MouthOpen = 0.22f, MouthStretch = -0.3f, Teeth = 0.15f },
        // neutral
        new() { },
    ];

    /// <summary>Draws the parameters of one face of class <paramref name="label"/> (identity, pose, expression at a random intensity).</summary>
    public static FaceParameters Sample(int label, RandomStream random)
    {
        if ((uint)label >= (uint)Prototypes.Length) throw new ArgumentOutOfRangeException(nameof(label));
        float U(float lo, float hi) => lo + (hi - lo) * random.NextFloat();
        float N(float sd) => sd * (float)random.NextNormal();

        var face = FaceParameters.RandomNeutral(random);
        var e = Prototypes[label];
        bool neutral = label == 6;
        float k = neutral ? 0f : U(0.2f, 1f);
        // Some expressions come in two forms: closed-mouth smiles, shouting anger.
        float mouthOpen = e.MouthOpen, teeth = e.Teeth;
        if (label == 3 && random.NextFloat() < 0.4f) { mouthOpen = 0; teeth = 0; }
        if (label == 0) { bool shouting = random.NextFloat() < 0.3f; mouthOpen = shouting ? 0.13f : 0; teeth = shouting ? e.Teeth : 0; }
        float side = random.NextFloat() < 0.5f ? -1f : 1f;

        face.BrowInnerRaise = k * e.BrowInnerRaise + N(0.028f);
        face.BrowOuterRaise = k * e.BrowOuterRaise + N(0.024f);
        face.BrowPull = MathF.Max(-0.02f, k * e.BrowPull + N(0.013f));
        face.EyeOpenness = Math.Clamp(1f + k * e.EyeOpenness + N(0.2f), 0.2f, 1.9f);
        face.MouthCurve = k * e.MouthCurve + N(0.028f);
        face.MouthOpen = MathF.Max(0f, k * mouthOpen + N(0.024f));
        face.MouthStretch = Math.Clamp(1f + k * e.MouthStretch + N(0.07f), 0.55f, 1.6f);
        face.UpperLipRaise = MathF.Max(0f, k * e.UpperLipRaise + N(0.01f));
        face.MouthAsymmetry = side * k * e.MouthAsymmetry + N(0.01f);
        face.Teeth = Math.Clamp(k * teeth + N(0.2f), 0f, 1f);
        face.NoseWrinkle = Math.Clamp(k * e.NoseWrinkle + N(0.1f), 0f, 1f);
        face.SmileLines = Math.Clamp(face.SmileLines + k * e.SmileLines + N(0.08f), 0f, 1f);
        face.CheekRaise = Math.Clamp(k * e.CheekRaise + N(0.1f), 0f, 1f);
        return face;
    }

    /// <summary>Train counts per class (label order) that <paramref name="options"/> ask for.</summary>
    public static int[] TrainCounts(SyntheticFaceOptions options)
    {
        int classes = EmotionClasses.Count;
        if (options.TrainCounts is { } explicitCounts)
        {
            if (explicitCounts.Count != classes) throw new DataArgumentException("counts", $"{explicitCounts.Count} counts given for {classes} classes");
            if (explicitCounts.Any(c => c < 0)) throw new DataArgumentException("counts", "counts must not be negative");
            return explicitCounts.ToArray();
        }
        if (options.TrainPerClass < 0) throw new DataArgumentException("per class", $"{options.TrainPerClass} must not be negative");
        if (options.Beta == 1 || options.TrainPerClass == 0) return Enumerable.Repeat(options.TrainPerClass, classes).ToArray();
        var byRank = LongTail.ProfileCounts(classes, options.TrainPerClass, options.Beta, options.Profile);
        var ranking = options.Ranking;
        if (ranking.Count != classes || ranking.Distinct().Count() != classes || ranking.Any(l => (uint)l >= (uint)classes))
            throw new DataArgumentException("ranking", $"must list each of the {classes} labels once");
        var counts = new int[classes];
        for (int r = 0; r < classes; r++) counts[ranking[r]] = byRank[r];
        return counts;
    }

    /// <summary>Generates train (balanced or long-tailed), validation and test (balanced) splits in memory.</summary>
    public static DatasetSplits Generate(SyntheticFaceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Size is < 16 or > 512) throw new DataArgumentException("size", $"{options.Size} is outside 16..512");
        if (options.ValidationPerClass < 0 || options.TestPerClass < 0)
            throw new DataArgumentException("per class", "validation and test counts must not be negative");
        if (options.Threads is <= 0) throw new DataArgumentException("threads", $"{options.Threads} must be positive");
        var counts = new[]
        {
            TrainCounts(options),
            Enumerable.Repeat(options.ValidationPerClass, EmotionClasses.Count).ToArray(),
            Enumerable.Repeat(options.TestPerClass, EmotionClasses.Count).ToArray(),
        };
        var splits = SplitNames.All.Select(s => GenerateSplit(s, counts[(int)s], options)).ToArray();
        var source = $"synthetic faces (seed {options.Seed}, train {string.Join(',', counts[0])}, val {options.ValidationPerClass}/class, test {options.TestPerClass}/class)";
        return new DatasetSplits(splits[0], splits[1], splits[2], DatasetOrigin.Synthetic, source);
    }

    /// <summary>Renders images 0..counts[c]-1 of every class c of one split, class after class.</summary>
    public static ImageDataset GenerateSplit(Split split, ReadOnlySpan<int> counts, SyntheticFaceOptions options)
    {
        int total = 0;
        foreach (int c in counts)
        {
            if (c >= 1 << 28) throw new DataArgumentException("per class", $"{c} images of one class is more than the generator numbers (2^28)");
            total = checked(total + c);
        }
        var labels = new int[total];
        var indexInClass = new int[total];
        for (int c = 0, i = 0; c < counts.Length; c++)
            for (int k = 0; k < counts[c]; k++, i++) { labels[i] = c; indexInClass[i] = k; }

        int size = options.Size, imageBytes = size * size;
        var pixels = new byte[(long)total * imageBytes];
        int threads = Math.Max(1, options.Threads ?? Environment.ProcessorCount);
        int ranges = Math.Max(1, Math.Min(threads, total / 32));
        ulong seed = options.Seed;
        Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = threads }, r =>
        {
            int start = (int)((long)total * r / ranges), end = (int)((long)total * (r + 1) / ranges);
            for (int i = start; i < end; i++)
            {
                var random = new RandomStream(seed, StreamOf(split, labels[i], indexInClass[i]));
                var face = Sample(labels[i], random);
                FaceRenderer.Render(face, pixels.AsSpan(i * imageBytes, imageBytes), size, random);
            }
        });
        return new ImageDataset(pixels, labels, EmotionClasses.Canonical, size, size, split);
    }

    /// <summary>Bits 40-63 name the generator, 36-39 the split, 28-35 the label, 0-27 the image's index in its class.</summary>
    private static ulong StreamOf(Split split, int label, int index) =>
        ImageStream | (ulong)split << 36 | (ulong)label << 28 | (uint)index;
}
