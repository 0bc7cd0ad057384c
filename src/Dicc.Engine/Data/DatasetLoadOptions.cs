namespace Dicc.Engine.Data;

/// <summary>What to do with an input that cannot be read (a corrupt image, a non-image file, a malformed CSV row).</summary>
public enum BadInputPolicy
{
    /// <summary>Stop with a <see cref="DataFormatException"/> naming the first bad input.</summary>
    Fail,

    /// <summary>Leave it out and list it in <see cref="DatasetSplits.Skipped"/>.</summary>
    Skip,
}

/// <summary>How the loader uses packed caches (<see cref="DatasetPack"/>).</summary>
public enum PackCacheMode
{
    /// <summary>Always decode the source.</summary>
    Off,

    /// <summary>Use a fresh pack when one exists; never write one.</summary>
    ReadOnly,

    /// <summary>Use a fresh pack when one exists; otherwise decode and write one to the cache folder.</summary>
    ReadWrite,
}

/// <summary>Options of <see cref="DatasetLoader.Load"/>. The defaults suit FER2013 and the usual image-folder datasets.</summary>
public sealed record DatasetLoadOptions
{
    /// <summary>The defaults.</summary>
    public static DatasetLoadOptions Default { get; } = new();

    /// <summary>Fail on the first bad input (default), or skip and list bad inputs.</summary>
    public BadInputPolicy OnBadImage { get; init; } = BadInputPolicy.Fail;

    /// <summary>
    /// Explicit class names in label order, for folder names that are not the seven expressions (or to load
    /// a subset of them). Folder names then match these exactly (case-insensitive) instead of the aliases,
    /// and CSV labels must be below their count. Null: the canonical seven classes.
    /// </summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Which split a root of class folders (no split folders), or a 2-column CSV, is. Default train.</summary>
    public Split SingleSplit { get; init; } = Split.Train;

    /// <summary>
    /// In the Kaggle FER2013 folder layout, <c>test/</c> holds both official halves: send files named
    /// <c>PublicTest_*</c> to validation and the rest (<c>PrivateTest_*</c>) to test. Applies only when there
    /// is no validation folder. Default true.
    /// </summary>
    public bool SplitKaggleTest { get; init; } = true;

    /// <summary>Part of each train class held out as validation when the source has no validation split (0 = none). Default 0.1.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Seed of the stratified hold-out.</summary>
    public ulong HoldOutSeed { get; init; }

    /// <summary>Side of the square images after resizing. Default 48 (FER2013).</summary>
    public int ImageSize { get; init; } = ImageDataset.DefaultSize;

    /// <summary>Use and write packed caches. Default <see cref="PackCacheMode.ReadWrite"/>.</summary>
    public PackCacheMode Cache { get; init; } = PackCacheMode.ReadWrite;

    /// <summary>
    /// Where caches are written (and looked for, after the pack beside the source). Null: $DICC_CACHE_DIR,
    /// else $XDG_CACHE_HOME/dicc, else ~/.cache/dicc.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Decoding threads; null = all cores.</summary>
    public int? Threads { get; init; }

    internal IReadOnlyList<string> EffectiveClassNames => ClassNames ?? EmotionClasses.Canonical;

    internal int EffectiveThreads => Math.Max(1, Threads ?? Environment.ProcessorCount);

    internal void Validate()
    {
        if (ValidationFraction is < 0 or >= 1 || double.IsNaN(ValidationFraction))
            throw new DataArgumentException("validation fraction", $"{ValidationFraction} is outside [0, 1).");
        if (ImageSize is < 8 or > 1024)
            throw new DataArgumentException("image size", $"{ImageSize} is outside [8, 1024].");
        if (Threads is <= 0)
            throw new DataArgumentException("threads", $"{Threads} must be positive.");
        if (ClassNames is not null)
        {
            if (ClassNames.Count == 0) throw new DataArgumentException("classes", "the class list is empty.");
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var name in ClassNames)
            {
                if (string.IsNullOrWhiteSpace(name) || name.Contains(',') || name.Contains('\n'))
                    throw new DataArgumentException("classes", $"'{name}' is not a usable class name.");
                if (!seen.Add(name.Trim())) throw new DataArgumentException("classes", $"'{name}' appears twice.");
            }
        }
    }

    /// <summary>The options that change what is loaded, as text: part of a pack's fingerprint.</summary>
    internal string ContentKey =>
        $"policy={OnBadImage};classes={string.Join('|', EffectiveClassNames)};single={SingleSplit.Name()};kaggle={SplitKaggleTest};" +
        $"holdout={ValidationFraction:R};seed={HoldOutSeed};size={ImageSize}";
}
