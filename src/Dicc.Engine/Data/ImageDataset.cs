namespace Dicc.Engine.Data;

/// <summary>
/// One split of a dataset in memory: <see cref="Count"/> grayscale images stored as one contiguous uint8
/// block [Count, Height, Width] (row-major, 0 = black), an int label per image, the class names, and
/// optionally where each image came from. The pixel block is what a trainer batches from and what a GPU
/// backend uploads in one copy; it may live in managed memory or in a memory-mapped pack file.
/// </summary>
public sealed class ImageDataset
{
    private readonly int[] _labels;
    private readonly string[]? _sources;

    /// <param name="pixels">Count * height * width bytes, image after image.</param>
    /// <param name="labels">One label per image, each in [0, classNames.Count).</param>
    /// <param name="classNames">Class names in label order.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="split">Which split these images are.</param>
    /// <param name="sources">Optional origin of each image (a file path, or "file:line" for CSV rows).</param>
    public ImageDataset(ReadOnlyMemory<byte> pixels, int[] labels, IReadOnlyList<string> classNames,
        int height = DefaultSize, int width = DefaultSize, Split split = Split.Train, string[]? sources = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"Image size {height}x{width} must be positive.");
        if (classNames.Count == 0) throw new ArgumentException("A dataset needs at least one class.", nameof(classNames));
        if (pixels.Length != (long)labels.Length * height * width)
            throw new ArgumentException($"{labels.Length} images of {height}x{width} need {(long)labels.Length * height * width} bytes; got {pixels.Length}.", nameof(pixels));
        if (sources is not null && sources.Length != labels.Length)
            throw new ArgumentException($"{labels.Length} images but {sources.Length} sources.", nameof(sources));
        foreach (int label in labels)
            if ((uint)label >= (uint)classNames.Count)
                throw new ArgumentException($"Label {label} is outside [0, {classNames.Count}).", nameof(labels));
        Pixels = pixels;
        _labels = labels;
        ClassNames = classNames;
        Height = height;
        Width = width;
        Split = split;
        _sources = sources;
    }

    /// <summary>The side of the images the loaders produce (FER2013's 48x48).</summary>
    public const int DefaultSize = 48;

    /// <summary>Which split these images are.</summary>
    public Split Split { get; }
    /// <summary>The number of images.</summary>
    public int Count => _labels.Length;
    /// <summary>Image height in pixels.</summary>
    public int Height { get; }
    /// <summary>Image width in pixels.</summary>
    public int Width { get; }
    /// <summary>Bytes per image (height x width).</summary>
    public int PixelsPerImage => Height * Width;
    /// <summary>The number of classes.</summary>
    public int ClassCount => ClassNames.Count;
    /// <summary>The class names in label order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>All images, [Count, Height, Width] uint8, contiguous.</summary>
    public ReadOnlyMemory<byte> Pixels { get; }

    /// <summary>Labels in image order.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>Where each image came from, or null (synthetic data).</summary>
    public IReadOnlyList<string>? Sources => _sources;

    /// <summary>The pixels of image <paramref name="index"/>, row-major.</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"Image {index} of {Count}.");
        return Pixels.Span.Slice(index * PixelsPerImage, PixelsPerImage);
    }

    /// <summary>The label of image <paramref name="index"/>.</summary>
    public int Label(int index) => _labels[index];

    /// <summary>Number of images of each class, in label order.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassCount];
        foreach (int label in _labels) counts[label]++;
        return counts;
    }

    /// <summary>A new dataset (its own memory) of the images at <paramref name="indices"/>, in that order.</summary>
    public ImageDataset Subset(ReadOnlySpan<int> indices, Split? split = null)
    {
        var pixels = new byte[(long)indices.Length * PixelsPerImage];
        var labels = new int[indices.Length];
        var sources = _sources is null ? null : new string[indices.Length];
        var src = Pixels.Span;
        for (int i = 0; i < indices.Length; i++)
        {
            int j = indices[i];
            if ((uint)j >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Index {j} outside a dataset of {Count}.");
            src.Slice(j * PixelsPerImage, PixelsPerImage).CopyTo(pixels.AsSpan(i * PixelsPerImage, PixelsPerImage));
            labels[i] = _labels[j];
            if (sources is not null) sources[i] = _sources![j];
        }
        return new ImageDataset(pixels, labels, ClassNames, Height, Width, split ?? Split, sources);
    }

    /// <summary>The same images relabelled as another split (no copy).</summary>
    public ImageDataset AsSplit(Split split) => new(Pixels, _labels, ClassNames, Height, Width, split, _sources);

    /// <summary>An empty split with the given classes and image size.</summary>
    public static ImageDataset Empty(IReadOnlyList<string> classNames, Split split, int height = DefaultSize, int width = DefaultSize) =>
        new(ReadOnlyMemory<byte>.Empty, [], classNames, height, width, split);

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Split.Name()}: {Count} images {Height}x{Width}, per class {string.Join(", ", ClassCounts().Select((c, i) => $"{ClassNames[i]} {c}"))}";
}
