using Dicc.Engine.Randomness;

namespace Dicc.Engine.Data;

/// <summary>Turns decoded entries into splits and holds out validation where the source has none.</summary>
internal static class DatasetAssembly
{
    /// <summary>Philox stream ids of the data module, so that its draws never collide with each other.</summary>
    internal const ulong HoldOutStream = 0x484F_4C44_0000_0000; // "HOLD"

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
    /// Splits train into (train, validation) when there is no validation split: from each class, a seeded
    /// random round(n_c * fraction) images (at least one image stays in train) go to validation. Both keep
    /// the original order.
    /// </summary>
    public static (ImageDataset Train, ImageDataset Validation) HoldOut(ImageDataset train, double fraction, ulong seed)
    {
        var byClass = new List<int>[train.ClassCount];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = [];
        for (int i = 0; i < train.Count; i++) byClass[train.Label(i)].Add(i);
        var toValidation = new bool[train.Count];
        for (int c = 0; c < byClass.Length; c++)
        {
            var members = byClass[c].ToArray();
            int take = Math.Min((int)Math.Round(members.Length * fraction, MidpointRounding.AwayFromZero), Math.Max(0, members.Length - 1));
            new RandomStream(seed, HoldOutStream + (ulong)c).Shuffle(members.AsSpan());
            for (int k = 0; k < take; k++) toValidation[members[k]] = true;
        }
        var keep = new List<int>();
        var held = new List<int>();
        for (int i = 0; i < train.Count; i++) (toValidation[i] ? held : keep).Add(i);
        return (train.Subset(keep.ToArray(), Split.Train), train.Subset(held.ToArray(), Split.Validation));
    }

    /// <summary>The final splits: hold-out applied when asked for and possible.</summary>
    public static DatasetSplits Finish(ImageDataset train, ImageDataset validation, ImageDataset test, DatasetOrigin origin,
        string source, List<SkippedInput> skipped, string? fingerprint, DatasetLoadOptions options)
    {
        bool heldOut = false;
        if (validation.Count == 0 && train.Count > 0 && options.ValidationFraction > 0)
        {
            (train, validation) = HoldOut(train, options.ValidationFraction, options.HoldOutSeed);
            heldOut = true;
        }
        return new DatasetSplits(train, validation, test, origin, source, skipped, fingerprint) { ValidationHeldOut = heldOut };
    }
}
