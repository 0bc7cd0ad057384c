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

    /// <summary>
    /// Part of each train class held out as the test split when the source has no test split (0 = none, the
    /// default). Drawn before the validation hold-out, with the same seed and its own random stream.
    /// </summary>
    public double TestFraction { get; init; }

    /// <summary>Seed of the stratified hold-outs (validation and test).</summary>
    public ulong HoldOutSeed { get; init; }

    /// <summary>
    /// Folder names that stand for classes (for example <c>1</c> → <c>surprise</c> in datasets with numbered class
    /// folders): each key is a folder name (case-insensitive), each value a class name (one of
    /// <see cref="ClassNames"/>, or of the seven expressions and their aliases). Folders not in the map are
    /// resolved by their own name. Applies to image folders only.
    /// </summary>
    public IReadOnlyDictionary<string, string>? ClassMap { get; init; }

    /// <summary>
    /// Accept a class with no training images (a missing or empty class folder, a label no CSV row has).
    /// Default false: loading fails naming the class, since a model cannot learn a class it never sees and the
    /// class-balanced rules have no weight for it.
    /// </summary>
    public bool AllowMissingClasses { get; init; }

    /// <summary>Side of the square images after resizing. Default 48 (FER2013).</summary>
    public int ImageSize { get; init; } = ImageDataset.DefaultSize;

    /// <summary>Use and write packed caches. Default <see cref="PackCacheMode.ReadWrite"/>.</summary>
    public PackCacheMode Cache { get; init; } = PackCacheMode.ReadWrite;

    /// <summary>
    /// Where caches are written (and looked for, after the pack beside the source). Null: $DICC_CACHE_DIR,
    /// else $XDG_CACHE_HOME/dicc, else ~/.cache/dicc.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// Crop the face out of each image (whole-head lab images, photos) instead of resizing the whole image: the
    /// largest face the detector finds, grown by the margin, made square, then resized to <see cref="ImageSize"/>.
    /// An image in which no face is found is a bad input ("no face found"), under <see cref="OnBadImage"/>.
    /// Applies to image files (folders and manifests). Null (the default): images are face crops already.
    /// </summary>
    public FaceCropOptions? FaceCrop { get; init; }

    /// <summary>Decoding threads; null = all cores.</summary>
    public int? Threads { get; init; }

    internal IReadOnlyList<string> EffectiveClassNames => ClassNames ?? EmotionClasses.Canonical;

    internal int EffectiveThreads => Math.Max(1, Threads ?? Environment.ProcessorCount);

    /// <summary>Checks every option; throws a <see cref="DataArgumentException"/> naming the first bad one.</summary>
    public void CheckOptions() => Validate();

    internal void Validate()
    {
        if (ValidationFraction is < 0 or >= 1 || double.IsNaN(ValidationFraction))
            throw new DataArgumentException("validation fraction", $"{ValidationFraction} is outside [0, 1).");
        if (TestFraction is < 0 or >= 1 || double.IsNaN(TestFraction))
            throw new DataArgumentException("test fraction", $"{TestFraction.ToString(System.Globalization.CultureInfo.InvariantCulture)} is outside [0, 1).");
        if (ImageSize is < 8 or > 1024)
            throw new DataArgumentException("image size", $"{ImageSize} is outside [8, 1024].");
        FaceCrop?.Validate();
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
        if (ClassMap is not null)
        {
            if (ClassMap.Count == 0) throw new DataArgumentException("class map", "the map is empty.");
            foreach (var (folder, target) in ClassMap)
            {
                if (string.IsNullOrWhiteSpace(folder)) throw new DataArgumentException("class map", "a folder name is empty.");
                if (!EmotionClasses.TryResolve(target ?? "", ClassNames, out _))
                    throw new DataArgumentException("class map", $"{folder}={target}: '{target}' is not a class; {EmotionClasses.Expected(ClassNames)}.");
            }
            var folders = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var folder in ClassMap.Keys)
                if (!folders.Add(folder.Trim())) throw new DataArgumentException("class map", $"folder '{folder}' is mapped twice.");
        }
    }

    /// <summary>
    /// The label of a class folder: through <see cref="ClassMap"/> when it names the folder, else by the folder's
    /// own name (against <see cref="ClassNames"/>, or the seven expressions and their aliases).
    /// </summary>
    internal bool TryResolveFolder(string folderName, out int label)
    {
        string name = folderName.Trim();
        if (ClassMap is not null)
            foreach (var (folder, target) in ClassMap)
                if (string.Equals(folder.Trim(), name, StringComparison.OrdinalIgnoreCase))
                    return EmotionClasses.TryResolve(target, ClassNames, out label);
        return EmotionClasses.TryResolve(name, ClassNames, out label);
    }

    /// <summary>The class map as text in a stable order ("1=surprise,2=fear"), or "" without one.</summary>
    internal string ClassMapText =>
        ClassMap is null ? "" : string.Join(',', ClassMap.OrderBy(kv => kv.Key.Trim().ToLowerInvariant(), StringComparer.Ordinal)
            .Select(kv => $"{kv.Key.Trim().ToLowerInvariant()}={kv.Value.Trim().ToLowerInvariant()}"));

    /// <summary>The options that change what is loaded, as text: part of a pack's fingerprint.</summary>
    internal string ContentKey =>
        $"policy={OnBadImage};classes={string.Join('|', EffectiveClassNames)};single={SingleSplit.Name()};kaggle={SplitKaggleTest};" +
        $"holdout={ValidationFraction:R};seed={HoldOutSeed};size={ImageSize}" +
        // Added later: written only when set, so that fingerprints (and caches) of earlier loads stay valid.
        (TestFraction > 0 ? $";testholdout={TestFraction:R}" : "") + (ClassMap is null ? "" : $";classmap={ClassMapText}")
        + (FaceCrop is null ? "" : $";faces={FaceCrop.Detector.Description};margin={FaceCrop.Margin:R}");
}
