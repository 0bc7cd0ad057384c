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

    /// <summary>
    /// A CK+-style dataset of synthetic faces in <c>root/&lt;class&gt;/</c>, named as CK+48 names its files
    /// (<c>S010_004_00000017.png</c>: subject S010, sequence 004, frame 17): <paramref name="subjects"/> subjects
    /// (S100, S101, ...), each with a seeded 2 to 5 of the seven expressions and 1 to 3 frames of each, as CK+
    /// subjects have several expressions each. Returns each file's subject.
    /// </summary>
    public static Dictionary<string, string> WriteCkPlusStyle(string root, int subjects, ulong seed)
    {
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = subjects * 3, ValidationPerClass = 0, TestPerClass = 0, Seed = seed }).Train;
        var next = new int[faces.ClassCount];
        int perClass = subjects * 3;
        var random = new Dicc.Engine.Randomness.RandomStream(seed, 0xC4);
        var subjectOf = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < subjects; s++)
        {
            string subject = $"S{100 + s:D3}";
            var classes = Enumerable.Range(0, faces.ClassCount).OrderBy(_ => random.NextUInt()).Take(2 + (int)(random.NextUInt() % 4)).Order().ToList();
            int sequence = 1;
            foreach (int c in classes)
            {
                int frames = 1 + (int)(random.NextUInt() % 3);
                for (int f = 0; f < frames; f++)
                {
                    int index = c * perClass + next[c]++;
                    string path = WriteFace(faces, index, System.IO.Path.Combine(root, EmotionClasses.Canonical[c]), $"{subject}_{sequence:D3}_{10 + f:D8}.png");
                    subjectOf[path] = subject;
                }
                sequence++;
            }
        }
        return subjectOf;
    }

    /// <summary>
    /// A JAFFE-style dataset of synthetic faces in <c>root/&lt;class&gt;/</c>, named as JAFFE names its files
    /// (<c>KA.HA1.29.tiff</c>: subject KA, happy, first image, number 29): JAFFE's ten subjects, each with
    /// <paramref name="perExpression"/> TIFF images of each of the seven expressions. Returns each file's subject.
    /// </summary>
    public static Dictionary<string, string> WriteJaffeStyle(string root, int perExpression, ulong seed)
    {
        string[] subjects = ["KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM"];
        string[] codes = ["AN", "DI", "FE", "HA", "SA", "SU", "NE"];
        int perClass = subjects.Length * perExpression;
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = perClass, ValidationPerClass = 0, TestPerClass = 0, Seed = seed }).Train;
        var subjectOf = new Dictionary<string, string>(StringComparer.Ordinal);
        int number = 1;
        for (int s = 0; s < subjects.Length; s++)
            for (int c = 0; c < codes.Length; c++)
                for (int k = 0; k < perExpression; k++)
                {
                    int index = c * perClass + s * perExpression + k;
                    string path = WriteFace(faces, index, System.IO.Path.Combine(root, EmotionClasses.Canonical[c]), $"{subjects[s]}.{codes[c]}{k + 1}.{number++}.tiff");
                    subjectOf[path] = subjects[s];
                }
        return subjectOf;
    }

    /// <summary>A FER2013 CSV row for an image.</summary>
    public static string CsvRow(int label, ReadOnlySpan<byte> pixels, string? usage)
    {
        var text = string.Join(' ', pixels.ToArray());
        return usage is null ? $"{label},{text}" : $"{label},{text},{usage}";
    }
}
