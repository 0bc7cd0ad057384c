namespace Dicc.Engine.Data;

/// <summary>Where a dataset was read from.</summary>
public enum DatasetOrigin
{
    ImageFolder,
    Fer2013Csv,
    Manifest,
    Pack,
    Synthetic,
}

/// <summary>An input that was left out under <see cref="BadInputPolicy.Skip"/>: the file (and CSV line) and why.</summary>
public sealed record SkippedInput(string Path, int? Line, string Reason)
{
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

    public ImageDataset Train { get; }
    public ImageDataset Validation { get; }
    public ImageDataset Test { get; }
    public IReadOnlyList<string> ClassNames => Train.ClassNames;
    public int Height => Train.Height;
    public int Width => Train.Width;
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

    public ImageDataset this[Split split] => split switch
    {
        Split.Train => Train,
        Split.Validation => Validation,
        Split.Test => Test,
        _ => throw new ArgumentOutOfRangeException(nameof(split)),
    };

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

    public override string ToString() =>
        $"{Source} ({Origin}): train {Train.Count}, val {Validation.Count}, test {Test.Count}" +
        (Skipped.Count > 0 ? $", {Skipped.Count} skipped" : "");
}
