using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace Dicc.Engine.Data;

/// <summary>
/// Writes a dataset as an image-folder tree <c>dir/&lt;train|val|test&gt;/&lt;class&gt;/&lt;class&gt;_NNNNNN.png</c>
/// (8-bit grayscale PNG, lossless), which <see cref="DatasetLoader"/> reads back to the same pixels, labels
/// and order. Empty splits and classes get no folder. This is what <c>dicc synth</c> writes.
/// </summary>
public static class ImageFolderWriter
{
    private static readonly PngEncoder Encoder = new()
    {
        ColorType = PngColorType.Grayscale,
        BitDepth = PngBitDepth.Bit8,
        CompressionLevel = PngCompressionLevel.DefaultCompression,
    };

    /// <summary>Writes every non-empty split; returns the number of files written. An unwritable folder is a <see cref="DataArgumentException"/> for "out".</summary>
    public static int Write(DatasetSplits data, string directory, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (File.Exists(directory)) throw new DataArgumentException("out", $"{directory} is a file, not a folder");
        return DataOutput.Writing(directory, () =>
        {
            int written = 0;
            foreach (var split in SplitNames.All)
                if (data[split].Count > 0)
                    written += Write(data[split], Path.Combine(directory, split.Name()), threads);
            return written;
        });
    }

    /// <summary>Writes one split's images into class folders under <paramref name="directory"/>.</summary>
    public static int Write(ImageDataset dataset, string directory, int? threads = null)
    {
        var counts = dataset.ClassCounts();
        for (int c = 0; c < dataset.ClassCount; c++)
            if (counts[c] > 0) Directory.CreateDirectory(Path.Combine(directory, dataset.ClassNames[c]));
        var paths = new string[dataset.Count];
        var seen = new int[dataset.ClassCount];
        for (int i = 0; i < dataset.Count; i++)
        {
            int c = dataset.Label(i);
            paths[i] = Path.Combine(directory, dataset.ClassNames[c], $"{dataset.ClassNames[c]}_{seen[c]++:D6}.png");
        }
        int workers = Math.Max(1, threads ?? Environment.ProcessorCount);
        int ranges = Math.Max(1, Math.Min(workers, dataset.Count / 16));
        Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = workers }, r =>
        {
            int start = (int)((long)dataset.Count * r / ranges), end = (int)((long)dataset.Count * (r + 1) / ranges);
            for (int i = start; i < end; i++)
            {
                using var image = Image.LoadPixelData<L8>(dataset.Image(i), dataset.Width, dataset.Height);
                image.Save(paths[i], Encoder);
            }
        });
        return dataset.Count;
    }
}
