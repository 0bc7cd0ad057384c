using Dicc.Engine.Data;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Data;

/// <summary>
/// The loader's face cropping around a detector (the engine has none: the real one, OpenCV's, is tested in
/// Dicc.Cli.Tests). Here a detector that reports the box where the test drew the face, so that the crop
/// geometry and the bad-image policy are checked exactly.
/// </summary>
public class FaceCropTests
{
    /// <summary>Reports the square of pixels brighter than 200 as the face (the tests draw faces as bright squares), or none.</summary>
    private sealed class BrightSquareDetector : IFaceDetector
    {
        public string Name => "bright-square";
        public string? ModelPath => null;
        public string Description => "bright squares";

        public IReadOnlyList<FaceBox> Detect(GrayImage image)
        {
            int x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
            for (int y = 0; y < image.Height; y++)
                for (int x = 0; x < image.Width; x++)
                    if (image.Pixels[y * image.Width + x] > 200)
                    {
                        x0 = Math.Min(x0, x); y0 = Math.Min(y0, y); x1 = Math.Max(x1, x); y1 = Math.Max(y1, y);
                    }
            return x1 < 0 ? [] : [new FaceBox(x0, y0, x1 - x0 + 1, y1 - y0 + 1)];
        }
    }

    [Test]
    public void Region_GrowsTheBoxByTheMargin_StaysSquare_AndInsideTheImage()
    {
        Assert.Multiple(() =>
        {
            Assert.That(FaceCrops.Region(new FaceBox(100, 100, 50, 50), 0.1, 400, 300), Is.EqualTo(new FaceBox(95, 95, 60, 60)));
            Assert.That(FaceCrops.Region(new FaceBox(100, 100, 40, 50), 0, 400, 300), Is.EqualTo(new FaceBox(95, 100, 50, 50)), "square on the longer side");
            Assert.That(FaceCrops.Region(new FaceBox(0, 0, 50, 50), 0.2, 400, 300), Is.EqualTo(new FaceBox(0, 0, 70, 70)), "moved inside at the corner");
            Assert.That(FaceCrops.Region(new FaceBox(350, 250, 50, 50), 0.2, 400, 300), Is.EqualTo(new FaceBox(330, 230, 70, 70)));
            Assert.That(FaceCrops.Region(new FaceBox(50, 20, 260, 260), 0.5, 400, 300), Is.EqualTo(new FaceBox(30, 0, 300, 300)), "no larger than the image");
        });
    }

    [Test]
    public void Loader_CropsTheFace_AndAnImageWithoutOneFollowsTheBadImagePolicy()
    {
        using var temp = new TempDirectory();
        // Whole-head pictures: a 40x40 bright square (the "face") with a dark 10x10 mark at its top-left, at a known place.
        void Picture(string path, int x, int y)
        {
            var pixels = new byte[160 * 120];
            Array.Fill(pixels, (byte)60);
            for (int r = 0; r < 40; r++)
                for (int c = 0; c < 40; c++) pixels[(y + r) * 160 + x + c] = (byte)(r < 10 && c < 10 ? 201 : 250);
            FacePicturesWriter.Save(path, pixels, 160, 120);
        }
        Picture(temp["heads/happy/a.png"], 10, 20);
        Picture(temp["heads/happy/b.png"], 100, 70);
        FacePicturesWriter.Save(temp["heads/sad/blank.png"], new byte[160 * 120], 160, 120);
        var faces = new FaceCropOptions(new BrightSquareDetector(), Margin: 0);
        var options = DataTestSupport.Plain with { FaceCrop = faces, ImageSize = 20 };

        var failed = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(temp["heads"], options))!;
        Assert.That(failed.Message, Is.EqualTo($"{temp["heads/sad/blank.png"]}: no face found (bright squares)"));

        using var data = DatasetLoader.Load(temp["heads"], options with { OnBadImage = BadInputPolicy.Skip });
        Assert.That(data.Skipped.Select(s => s.ToString()), Is.EqualTo(new[] { $"{temp["heads/sad/blank.png"]}: no face found (bright squares)" }));
        Assert.That(data.Train.Count, Is.EqualTo(2));
        foreach (int i in new[] { 0, 1 })
        {
            var crop = data.Train.Image(i);
            // The 40x40 face fills the 20x20 crop: everything bright, the mark in the top-left quarter.
            Assert.That(crop.ToArray().Min(), Is.GreaterThan(190), $"image {i} is the face only");
            Assert.That(crop[2 * 20 + 2], Is.LessThan(crop[15 * 20 + 15]), $"image {i}: the mark is top-left");
        }
        Assert.That(data.Fingerprint, Is.Not.EqualTo(DatasetLoader.Load(temp["heads"], options with { OnBadImage = BadInputPolicy.Skip, FaceCrop = faces with { Margin = 0.2 } }).Fingerprint),
            "the margin is part of the fingerprint (caches of other crops are not used)");
        var margin = Assert.Throws<DataArgumentException>(() => DatasetLoader.Load(temp["heads"], options with { FaceCrop = faces with { Margin = 3 } }))!;
        Assert.That(margin.Message, Is.EqualTo("face margin: 3 is outside [0, 1]."));
    }
}

/// <summary>Writes grayscale pictures of any size as PNG.</summary>
internal static class FacePicturesWriter
{
    public static void Save(string path, byte[] pixels, int width, int height)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.L8>(pixels, width, height);
        SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, path);
    }
}
