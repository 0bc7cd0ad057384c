namespace Dicc.Engine.Data;

/// <summary>Where a dataset was read from.</summary>
public enum DatasetOrigin
{
    /// <summary>Image folders.</summary>
    ImageFolder,
    /// <summary>A FER2013 CSV.</summary>
    Fer2013Csv,
    /// <summary>A manifest.</summary>
    Manifest,
    /// <summary>A .diccpack.</summary>
    Pack,
    /// <summary>Generated synthetic faces.</summary>
    Synthetic,
}

/// <summary>An input that was left out under <see cref="BadInputPolicy.Skip"/>: the file (and CSV line) and why.</summary>
public sealed record SkippedInput(string Path, int? Line, string Reason)
{
    /// <inheritdoc/>
    public override string ToString() => DataFormatException.Describe(Path, Line, Reason);
}

/// <summary>
/// A loaded dataset: train, validation and test splits (each possibly empty) over the same classes, what
/// was skipped, and where it came from. Dispose it when it was read from a memory-mapped pack; disposing
/// any other one is harmless.
/// </summary>
public sealed class DatasetSplits : IDisposable
{
    private IDisposable? _owner;

    /// <summary>The three splits of one dataset (same classes and image size) and where they came from.</summary>
    public DatasetSplits(ImageDataset train, ImageDataset validation, ImageDataset test, DatasetOrigin origin,
        string source, IReadOnlyList<SkippedInput>? skipped = null, string? fingerprint = null, IDisposable? owner = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        ArgumentNullException.ThrowIfNull(test);
        if (!train.ClassNames.SequenceEqual(validation.ClassNames) || !train.ClassNames.SequenceEqual(test.ClassNames))
            throw new ArgumentException("All splits must have the same classes.");
        if (train.Height != validation.Height || train.Height != test.Height || train.Width != validation.Width || train.Width != test.Width)
            throw new ArgumentException("All splits must have the same image size.");
        if (train.Split != Split.Train || validation.Split != Split.Validation || test.Split != Split.Test)
            throw new ArgumentException("Splits are out of place: expected train, validation, test.");
        Train = train;
        Validation = validation;
        Test = test;
        Origin = origin;
        Source = source;
        Skipped = skipped ?? [];
        Fingerprint = fingerprint;
        _owner = owner;
    }

    /// <summary>The training split.</summary>
    public ImageDataset Train { get; }
    /// <summary>The validation split (model selection).</summary>
    public ImageDataset Validation { get; }
    /// <summary>The test split (reported, never used to select).</summary>
    public ImageDataset Test { get; }
    /// <summary>The class names in label order.</summary>
    public IReadOnlyList<string> ClassNames => Train.ClassNames;
    /// <summary>Image height in pixels.</summary>
    public int Height => Train.Height;
    /// <summary>Image width in pixels.</summary>
    public int Width => Train.Width;
    /// <summary>Where the data was read from.</summary>
    public DatasetOrigin Origin { get; }

    /// <summary>The path that was loaded (or a description, for synthetic data).</summary>
    public string Source { get; }

    /// <summary>Inputs left out under <see cref="BadInputPolicy.Skip"/>, in input order.</summary>
    public IReadOnlyList<SkippedInput> Skipped { get; }

    /// <summary>Hex SHA-256 of the source listing and load options (what a pack's freshness is judged by); null for synthetic data.</summary>
    public string? Fingerprint { get; }

    /// <summary>The folder that image sources live under (image folders and manifests), or null.</summary>
    public string? SourceRoot { get; init; }

    /// <summary>The pack file the images were mapped from, when the loader used one.</summary>
    public string? PackPath { get; init; }

    /// <summary>Why a pack cache could not be written (the load itself succeeded), or null.</summary>
    public string? CacheNote { get; init; }

    /// <summary>True when the validation split was held out of train (no validation split in the source).</summary>
    public bool ValidationHeldOut { get; init; }

    /// <summary>True when the test split was held out of train (no test split in the source, a test fraction asked for).</summary>
    public bool TestHeldOut { get; init; }

    /// <summary>The split named <paramref name="split"/>.</summary>
    public ImageDataset this[Split split] => split switch
    {
        Split.Train => Train,
        Split.Validation => Validation,
        Split.Test => Test,
        _ => throw new ArgumentOutOfRangeException(nameof(split)),
    };

    /// <summary>Images in all three splits.</summary>
    public int TotalCount => Train.Count + Validation.Count + Test.Count;

    /// <summary>The same data with another train split (for long-tail subsets); the others are kept as they are.</summary>
    public DatasetSplits WithTrain(ImageDataset train) =>
        new(train.AsSplit(Split.Train), Validation, Test, Origin, Source, Skipped, Fingerprint, _owner)
        {
            PackPath = PackPath,
            SourceRoot = SourceRoot,
            CacheNote = CacheNote,
            ValidationHeldOut = ValidationHeldOut,
            TestHeldOut = TestHeldOut,
        };

    /// <summary>Releases the memory mapping, if any. Images read from a pack must not be used afterwards.</summary>
    public void Dispose()
    {
        _owner?.Dispose();
        _owner = null;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Source} ({Origin}): train {Train.Count}, val {Validation.Count}, test {Test.Count}" +
        (Skipped.Count > 0 ? $", {Skipped.Count} skipped" : "");
}
