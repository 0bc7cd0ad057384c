using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.PixelFormats;

namespace Dicc.Engine.Tests.Support;

internal static class DataTestSupport
{
    /// <summary>
    /// Options for tests: no caches, no hold-out, unless a test asks; and classes may lack training images,
    /// since most tests write a few images of a few classes (the check that every class has training images,
    /// the loader's default, has its own tests).
    /// </summary>
    public static DatasetLoadOptions Plain { get; } = new() { Cache = PackCacheMode.Off, ValidationFraction = 0, AllowMissingClasses = true };

    /// <summary>A small balanced synthetic set (train split only).</summary>
    public static ImageDataset Faces(int perClass, ulong seed = 1) =>
        SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = perClass, ValidationPerClass = 0, TestPerClass = 0, Seed = seed }).Train;

    public static IImageEncoder Encoder(string extension) => extension.ToLowerInvariant() switch
    {
        ".png" => new PngEncoder(),
        ".jpg" or ".jpeg" => new JpegEncoder { Quality = 95 },
        ".bmp" => new BmpEncoder(),
        ".gif" => new GifEncoder(),
        ".tif" or ".tiff" => new TiffEncoder(),
        _ => throw new ArgumentException(extension),
    };

    /// <summary>Writes a 48x48 grayscale image as a grayscale (or, with <paramref name="colour"/>, an RGB) file of the extension's format.</summary>
    public static void WriteImage(string path, ReadOnlySpan<byte> pixels, int size = 48, bool colour = false)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var encoder = Encoder(System.IO.Path.GetExtension(path));
        if (colour)
        {
            using var rgb = new Image<Rgb24>(size, size);
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    byte g = pixels[y * size + x];
                    rgb[x, y] = new Rgb24(g, g, g);
                }
            rgb.Save(path, encoder);
            return;
        }
        using var image = Image.LoadPixelData<L8>(pixels, size, size);
        image.Save(path, encoder);
    }

    /// <summary>Writes image i of <paramref name="faces"/> into root/&lt;split&gt;/&lt;class&gt;/name.</summary>
    public static string WriteFace(ImageDataset faces, int i, string folder, string? name = null, string extension = ".png")
    {
        var path = System.IO.Path.Combine(folder, name ?? $"img_{i:D4}{extension}");
        WriteImage(path, faces.Image(i));
        return path;
    }

    /// <summary>
    /// A split-layout folder of PNGs: train (perClassTrain of each class) and test (perClassTest),
    /// class folders named by <paramref name="folderName"/> (default: canonical names).
    /// </summary>
    public static void WriteSplitFolder(string root, ImageDataset faces, int perClassTrain, int perClassTest, Func<int, string>? folderName = null)
    {
        folderName ??= c => EmotionClasses.Canonical[c];
        var seen = new int[faces.ClassCount];
        for (int i = 0; i < faces.Count; i++)
        {
            int c = faces.Label(i);
            int k = seen[c]++;
            if (k < perClassTrain) WriteFace(faces, i, System.IO.Path.Combine(root, "train", folderName(c)), $"tr_{k:D4}.png");
            else if (k < perClassTrain + perClassTest) WriteFace(faces, i, System.IO.Path.Combine(root, "test", folderName(c)), $"te_{k:D4}.png");
        }
    }

    /// <summary>A FER2013 CSV row for an image.</summary>
    public static string CsvRow(int label, ReadOnlySpan<byte> pixels, string? usage)
    {
        var text = string.Join(' ', pixels.ToArray());
        return usage is null ? $"{label},{text}" : $"{label},{text},{usage}";
    }
}
