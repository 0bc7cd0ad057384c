using Dicc.Engine.Randomness;

namespace Dicc.Engine.Data;

/// <summary>Turns decoded entries into splits and holds out validation where the source has none.</summary>
internal static class DatasetAssembly
{
    /// <summary>Philox stream ids of the data module, so that its draws never collide with each other.</summary>
    internal const ulong HoldOutStream = 0x484F_4C44_0000_0000; // "HOLD"

    /// <summary>Stream of the test hold-out ("TEST"), apart from the validation hold-out's.</summary>
    internal const ulong TestHoldOutStream = 0x5445_5354_0000_0000; // "TEST"

    /// <summary>
    /// Builds the splits from entries sorted by split (decoded into one block in entry order): bad entries
    /// are dropped (and listed), each split becomes a contiguous slice of the block.
    /// </summary>
    public static (ImageDataset Train, ImageDataset Validation, ImageDataset Test, List<SkippedInput> Skipped) FromEntries(
        IReadOnlyList<ImageFileEntry> entries, byte[] pixels, string?[] problems, IReadOnlyList<string> classNames, int size)
    {
        int imageBytes = size * size;
        var skipped = new List<SkippedInput>();
        var labels = new List<int>[3] { [], [], [] };
        var sources = new List<string>[3] { [], [], [] };
        int kept = 0;
        Split previous = Split.Train;
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Split < previous) throw new InvalidOperationException("Entries must be sorted by split.");
            previous = e.Split;
            if (problems[i] is { } problem)
            {
                skipped.Add(new SkippedInput(e.Path, null, problem));
                continue;
            }
            if (kept != i) Buffer.BlockCopy(pixels, i * imageBytes, pixels, kept * imageBytes, imageBytes);
            labels[(int)e.Split].Add(e.Label);
            sources[(int)e.Split].Add(e.Path);
            kept++;
        }
        var datasets = new ImageDataset[3];
        int offset = 0;
        foreach (var split in SplitNames.All)
        {
            int n = labels[(int)split].Count;
            datasets[(int)split] = new ImageDataset(new ReadOnlyMemory<byte>(pixels, offset * imageBytes, n * imageBytes),
                labels[(int)split].ToArray(), classNames, size, size, split, sources[(int)split].ToArray());
            offset += n;
        }
        return (datasets[0], datasets[1], datasets[2], skipped);
    }

    /// <summary>
    /// Splits train into (train, held out) when there is no validation (or test) split: from each class, a
    /// seeded random round(n_c * fraction) images (at least one image stays in train) go to the held-out part,
    /// labelled <paramref name="split"/>. Both keep the original order.
    /// </summary>
    public static (ImageDataset Train, ImageDataset HeldOut) HoldOut(ImageDataset train, double fraction, ulong seed,
        Split split = Split.Validation, ulong stream = HoldOutStream)
    {
        var byClass = new List<int>[train.ClassCount];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = [];
        for (int i = 0; i < train.Count; i++) byClass[train.Label(i)].Add(i);
        var toValidation = new bool[train.Count];
        for (int c = 0; c < byClass.Length; c++)
        {
            var members = byClass[c].ToArray();
            int take = Math.Min((int)Math.Round(members.Length * fraction, MidpointRounding.AwayFromZero), Math.Max(0, members.Length - 1));
            new RandomStream(seed, stream + (ulong)c).Shuffle(members.AsSpan());
            for (int k = 0; k < take; k++) toValidation[members[k]] = true;
        }
        var keep = new List<int>();
        var held = new List<int>();
        for (int i = 0; i < train.Count; i++) (toValidation[i] ? held : keep).Add(i);
        return (train.Subset(keep.ToArray(), Split.Train), train.Subset(held.ToArray(), split));
    }

    /// <summary>
    /// The final splits: every class checked to have training images (unless allowed), then the hold-outs
    /// applied when asked for and possible: test first (<see cref="DatasetLoadOptions.TestFraction"/>), then
    /// validation from what remains of train.
    /// </summary>
    public static DatasetSplits Finish(ImageDataset train, ImageDataset validation, ImageDataset test, DatasetOrigin origin,
        string source, List<SkippedInput> skipped, string? fingerprint, DatasetLoadOptions options)
    {
        CheckClasses(train, source, options);
        bool testHeldOut = false, heldOut = false;
        if (test.Count == 0 && train.Count > 0 && options.TestFraction > 0)
        {
            (train, test) = HoldOut(train, options.TestFraction, options.HoldOutSeed, Split.Test, TestHoldOutStream);
            testHeldOut = true;
        }
        if (validation.Count == 0 && train.Count > 0 && options.ValidationFraction > 0)
        {
            (train, validation) = HoldOut(train, options.ValidationFraction, options.HoldOutSeed);
            heldOut = true;
        }
        return new DatasetSplits(train, validation, test, origin, source, skipped, fingerprint) { ValidationHeldOut = heldOut, TestHeldOut = testHeldOut };
    }

    /// <summary>
    /// A train split that lacks a class is an error naming it (unless <see cref="DatasetLoadOptions.AllowMissingClasses"/>):
    /// the model would never see the class, and the class-balanced rules have no weight for it.
    /// </summary>
    internal static void CheckClasses(ImageDataset train, string source, DatasetLoadOptions options)
    {
        if (options.AllowMissingClasses || train.Count == 0) return;
        var counts = train.ClassCounts();
        var missing = Enumerable.Range(0, counts.Length).Where(c => counts[c] == 0).Select(c => $"'{train.ClassNames[c]}'").ToList();
        if (missing.Count == 0) return;
        throw new DataFormatException(source, $"no training images of class {string.Join(", ", missing)}: every class needs training images; " +
                                              "list only the classes to train on, or allow missing classes");
    }
}
