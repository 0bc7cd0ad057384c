using Dicc.Engine.Data;
using NUnit.Framework;
using static Dicc.Engine.Tests.Support.DataTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Data;

public class ImageFolderTests
{
    [Test]
    public void SplitLayout_RoundTripsPixelsLabelsAndSources()
    {
        using var dir = new TempDirectory();
        var faces = Faces(3);
        WriteSplitFolder(dir.Path, faces, perClassTrain: 2, perClassTest: 1);

        using var data = DatasetLoader.Load(dir.Path, Plain);

        Assert.That(data.Origin, Is.EqualTo(DatasetOrigin.ImageFolder));
        Assert.That(data.Train.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 7)));
        Assert.That(data.Test.ClassCounts(), Is.EqualTo(Enumerable.Repeat(1, 7)));
        Assert.That(data.Validation.Count, Is.Zero);
        // Files sort by split, label, path: train holds faces 0,1 of each class in label order.
        for (int c = 0, j = 0; c < 7; c++)
            for (int k = 0; k < 2; k++, j++)
            {
                Assert.That(data.Train.Label(j), Is.EqualTo(c));
                Assert.That(data.Train.Image(j).ToArray(), Is.EqualTo(faces.Image(c * 3 + k).ToArray()), "PNG is lossless");
                Assert.That(data.Train.Sources![j], Is.EqualTo(Path.Combine(dir.Path, "train", EmotionClasses.Canonical[c], $"tr_{k:D4}.png")));
            }
    }

    [Test]
    public void EveryFormat_ColourAndOtherSizes_BecomeGray48()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var formats = new[] { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff" };
        for (int f = 0; f < formats.Length; f++)
            WriteImage(Path.Combine(dir.Path, "happy", "face" + formats[f]), faces.Image(3), colour: f % 2 == 0);
        // A 96x96 image of the same face (each pixel doubled) must come back close to the 48x48 one.
        var big = new byte[96 * 96];
        for (int y = 0; y < 96; y++) for (int x = 0; x < 96; x++) big[y * 96 + x] = faces.Image(3)[y / 2 * 48 + x / 2];
        WriteImage(Path.Combine(dir.Path, "happy", "big.png"), big, size: 96);

        using var data = DatasetLoader.Load(dir.Path, Plain);

        Assert.That(data.Train.Count, Is.EqualTo(formats.Length + 1));
        Assert.That(data.Train.Height, Is.EqualTo(48));
        var original = faces.Image(3).ToArray();
        for (int i = 0; i < data.Train.Count; i++)
        {
            var source = Path.GetFileName(data.Train.Sources![i]);
            var image = data.Train.Image(i).ToArray();
            double meanError = image.Zip(original, (a, b) => Math.Abs(a - b)).Average();
            // Lossless formats are exact; JPEG at quality 95 and GIF's palette stay within a few levels.
            double tolerance = source is "face.png" or "face.bmp" or "face.tif" or "face.tiff" ? 0 : source == "big.png" ? 6 : 4;
            Assert.That(meanError, Is.LessThanOrEqualTo(tolerance), source);
        }
    }

    [Test]
    public void ColourImages_UsePilLuminanceWeights()
    {
        // PIL's convert("L") (what torchvision pipelines see): red 76, green 150, blue 29, white 255.
        using var dir = new TempDirectory();
        using (var rgb = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(48, 48))
        {
            for (int y = 0; y < 48; y++)
                for (int x = 0; x < 48; x++)
                    rgb[x, y] = (x / 12) switch
                    {
                        0 => new(255, 0, 0),
                        1 => new(0, 255, 0),
                        2 => new(0, 0, 255),
                        _ => new(255, 255, 255),
                    };
            Directory.CreateDirectory(Path.Combine(dir.Path, "happy"));
            SixLabors.ImageSharp.ImageExtensions.Save(rgb, Path.Combine(dir.Path, "happy", "colours.png"));
            SixLabors.ImageSharp.ImageExtensions.Save(rgb, Path.Combine(dir.Path, "happy", "colours.bmp"));
        }
        using var data = DatasetLoader.Load(dir.Path, Plain);
        for (int i = 0; i < 2; i++)
        {
            var image = data.Train.Image(i);
            Assert.That(new[] { image[5], image[17], image[29], image[41] }, Is.EqualTo(new byte[] { 76, 150, 29, 255 }), data.Train.Sources![i]);
        }
    }

    [Test]
    public void GrayscaleJpeg_IsRecognisedFromItsFrameHeader()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        using (var gray = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.L8>(faces.Image(0), 48, 48))
        {
            SixLabors.ImageSharp.ImageExtensions.Save(gray, dir["gray.jpg"], new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { ColorType = SixLabors.ImageSharp.Formats.Jpeg.JpegColorType.Luminance });
            SixLabors.ImageSharp.ImageExtensions.Save(gray, dir["colour.jpg"], new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { ColorType = SixLabors.ImageSharp.Formats.Jpeg.JpegColorType.YCbCrRatio444 });
        }
        Assert.That(ImageIntegrity.IsGrayscaleJpeg(File.ReadAllBytes(dir["gray.jpg"])), Is.True);
        Assert.That(ImageIntegrity.IsGrayscaleJpeg(File.ReadAllBytes(dir["colour.jpg"])), Is.False);
        Assert.That(ImageIntegrity.IsGrayscaleJpeg(File.ReadAllBytes(dir["gray.jpg"])[..20]), Is.False);
        if (Fer2013FolderTests.Locate() is { } fer)
            Assert.That(ImageIntegrity.IsGrayscaleJpeg(File.ReadAllBytes(Directory.EnumerateFiles(Path.Combine(fer, "train", "happy")).First())), Is.True, "FER2013's JPEGs are single-component");
    }

    [Test]
    public void ClassRoot_IsOneSplit_AndAliasesMapCaseInsensitively()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        string[] folders = ["Anger", "DISGUSTED", "fearful", "Happiness", "sadness", "Surprised", "Neutral"];
        for (int c = 0; c < 7; c++) WriteFace(faces, c, Path.Combine(dir.Path, folders[c]));

        using var train = DatasetLoader.Load(dir.Path, Plain);
        Assert.That(train.Train.Labels.ToArray(), Is.EqualTo(Enumerable.Range(0, 7)));
        Assert.That(train.ClassNames, Is.EqualTo(EmotionClasses.Canonical));
        Assert.That(train.Train.Image(4).ToArray(), Is.EqualTo(faces.Image(4).ToArray()));

        using var test = DatasetLoader.Load(dir.Path, Plain with { SingleSplit = Split.Test });
        Assert.That((test.Train.Count, test.Test.Count), Is.EqualTo((0, 7)));
    }

    [Test]
    public void KaggleTestFolder_SplitsIntoPublicValidationAndPrivateTest()
    {
        using var dir = new TempDirectory();
        var faces = Faces(4);
        for (int i = 0; i < faces.Count; i++)
        {
            var cls = EmotionClasses.Canonical[faces.Label(i)];
            string name = (i % 4) switch { 0 => $"Training_{i}.png", 1 => $"Training_{i}x.png", 2 => $"PublicTest_{i}.png", _ => $"PrivateTest_{i}.png" };
            WriteFace(faces, i, Path.Combine(dir.Path, i % 4 < 2 ? "train" : "test", cls), name);
        }

        using var data = DatasetLoader.Load(dir.Path, Plain);
        Assert.That((data.Train.Count, data.Validation.Count, data.Test.Count), Is.EqualTo((14, 7, 7)));
        Assert.That(data.Validation.Sources!.All(s => Path.GetFileName(s).StartsWith("PublicTest_")));
        Assert.That(data.Test.Sources!.All(s => Path.GetFileName(s).StartsWith("PrivateTest_")));
        Assert.That(data.ValidationHeldOut, Is.False);

        using var unsplit = DatasetLoader.Load(dir.Path, Plain with { SplitKaggleTest = false });
        Assert.That((unsplit.Validation.Count, unsplit.Test.Count), Is.EqualTo((0, 14)));
    }

    [Test]
    public void NoValidationSplit_HoldsOutASeededStratifiedPartOfTrain()
    {
        using var dir = new TempDirectory();
        var faces = Faces(10);
        WriteSplitFolder(dir.Path, faces, perClassTrain: 10, perClassTest: 0);
        var options = Plain with { ValidationFraction = 0.2, HoldOutSeed = 5 };

        using var a = DatasetLoader.Load(dir.Path, options);
        using var b = DatasetLoader.Load(dir.Path, options);
        using var c = DatasetLoader.Load(dir.Path, options with { HoldOutSeed = 6 });

        Assert.That(a.ValidationHeldOut, Is.True);
        Assert.That(a.Validation.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 7)), "round(10 * 0.2) per class");
        Assert.That(a.Train.ClassCounts(), Is.EqualTo(Enumerable.Repeat(8, 7)));
        Assert.That(a.Validation.Sources, Is.EqualTo(b.Validation.Sources), "same seed, same hold-out");
        Assert.That(a.Validation.Sources, Is.Not.EqualTo(c.Validation.Sources), "another seed, another hold-out");
        Assert.That(a.Train.Sources!.Intersect(a.Validation.Sources!), Is.Empty);
    }

    [Test]
    public void NoTestSplit_AndATestFraction_HoldsOutASeededStratifiedTestSplitBeforeValidation()
    {
        using var dir = new TempDirectory();
        var faces = Faces(10);
        WriteSplitFolder(dir.Path, faces, perClassTrain: 10, perClassTest: 0);
        var options = Plain with { TestFraction = 0.2, ValidationFraction = 0.25, HoldOutSeed = 5 };

        using var a = DatasetLoader.Load(dir.Path, options);
        using var b = DatasetLoader.Load(dir.Path, options);
        using var c = DatasetLoader.Load(dir.Path, options with { HoldOutSeed = 6 });

        Assert.That(a.TestHeldOut && a.ValidationHeldOut);
        Assert.That(a.Test.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 7)), "round(10 * 0.2) per class");
        Assert.That(a.Validation.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 7)), "round(8 * 0.25) of what remains");
        Assert.That(a.Train.ClassCounts(), Is.EqualTo(Enumerable.Repeat(6, 7)));
        Assert.That(a.Test.Sources, Is.EqualTo(b.Test.Sources), "same seed, same hold-out");
        Assert.That(a.Test.Sources, Is.Not.EqualTo(c.Test.Sources), "another seed, another hold-out");
        Assert.That(a.Train.Sources!.Concat(a.Validation.Sources!).Intersect(a.Test.Sources!), Is.Empty);
        Assert.That(a.Fingerprint, Is.Not.EqualTo(DatasetLoader.Load(dir.Path, Plain with { ValidationFraction = 0.25, HoldOutSeed = 5 }).Fingerprint),
            "the test fraction is part of the fingerprint (and of a cache's key)");

        WriteSplitFolder(dir["with-test"], faces, perClassTrain: 8, perClassTest: 2);
        using var withTest = DatasetLoader.Load(dir["with-test"], options);
        Assert.That(withTest.TestHeldOut, Is.False, "a source with a test split keeps it");
        Assert.That(withTest.Test.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 7)));
    }

    [Test]
    public void AMissingClassFolder_IsAnErrorNamingTheClass_UnlessAllowed()
    {
        using var dir = new TempDirectory();
        WriteSplitFolder(dir.Path, Faces(2), perClassTrain: 1, perClassTest: 1, c => EmotionClasses.Canonical[c]);
        Directory.Delete(Path.Combine(dir.Path, "train", "disgust"), recursive: true);
        var strict = Plain with { AllowMissingClasses = false };
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, strict))!;
        Assert.That(e.Message, Is.EqualTo($"{Path.Combine(dir.Path, "train")}: no folder for class 'disgust': every class needs training images; " +
                                          "list only the classes to train on, or allow missing classes"));

        using var allowed = DatasetLoader.Load(dir.Path, strict with { AllowMissingClasses = true });
        Assert.That(allowed.Train.ClassCounts()[1], Is.Zero);

        // A test split may lack a class (its figures are then undefined): not an error.
        Directory.Delete(Path.Combine(dir.Path, "test", "fear"), recursive: true);
        Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, strict), "still train/disgust");
        WriteFace(Faces(2), 2, Path.Combine(dir.Path, "train", "disgust"));
        using var noTestFear = DatasetLoader.Load(dir.Path, strict);
        Assert.That(noTestFear.Test.ClassCounts()[2], Is.Zero);
    }

    [Test]
    public void NumberedClassFolders_AreReadThroughAClassMap()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        // RAF-DB's numbering: 1 surprise, 2 fear, 3 disgust, 4 happy, 5 sad, 6 angry, 7 neutral.
        string[] order = ["surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"];
        for (int k = 0; k < 7; k++)
            WriteFace(faces, EmotionClasses.Canonical.ToList().IndexOf(order[k]), Path.Combine(dir.Path, "train", (k + 1).ToString()));
        var map = Enumerable.Range(0, 7).ToDictionary(k => (k + 1).ToString(), k => order[k]);
        using var data = DatasetLoader.Load(dir.Path, Plain with { ClassMap = map, AllowMissingClasses = false });
        Assert.That(data.ClassNames, Is.EqualTo(EmotionClasses.Canonical));
        for (int i = 0; i < data.Train.Count; i++)
            Assert.That(data.Train.Image(i).ToArray(), Is.EqualTo(faces.Image(data.Train.Label(i)).ToArray()), "each folder's face has its class's label");

        var unmapped = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain))!;
        Assert.That(unmapped.Message, Does.Contain("unknown class folder '1'"));
        var wrong = Assert.Throws<DataArgumentException>(() => DatasetLoader.Load(dir.Path, Plain with { ClassMap = new Dictionary<string, string> { ["1"] = "joyous" } }))!;
        Assert.That(wrong.Message, Does.StartWith("class map: 1=joyous: 'joyous' is not a class"));
        Assert.That(DatasetLoader.Load(dir.Path, Plain with { ClassMap = map }).Fingerprint,
            Is.Not.EqualTo(DatasetLoader.Load(dir.Path, Plain with { ClassMap = map.ToDictionary(kv => kv.Key, kv => kv.Key == "1" ? "fear" : kv.Key == "2" ? "surprise" : kv.Value) }).Fingerprint),
            "the map is part of the fingerprint");
    }

    [Test]
    public void ExplicitClassList_ReadsUnusualFolderNames()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        WriteFace(faces, 0, Path.Combine(dir.Path, "train", "0_anger_cls"));
        WriteFace(faces, 3, Path.Combine(dir.Path, "train", "3_joyful_cls"));
        var options = Plain with { ClassNames = ["0_anger_cls", "3_joyful_cls"] };

        using var data = DatasetLoader.Load(dir.Path, options);
        Assert.That(data.ClassNames, Is.EqualTo(new[] { "0_anger_cls", "3_joyful_cls" }));
        Assert.That(data.Train.Labels.ToArray(), Is.EqualTo(new[] { 0, 1 }));

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain))!;
        Assert.That(e.Message, Does.Contain("unknown class folder '0_anger_cls'").And.Contain("class list"));
    }

    [Test]
    public void PathThatDoesNotExist_IsNamed()
    {
        var path = Path.Combine(Path.GetTempPath(), "dicc-no-such-dataset-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, Plain))!;
        Assert.That(e.Message, Is.EqualTo($"{path}: no such file or folder"));
    }

    [Test]
    public void UnknownClassFolder_EmptyClassFolder_UnknownSplitSibling_AreNamed()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        WriteFace(faces, 0, Path.Combine(dir.Path, "train", "angry"));
        Directory.CreateDirectory(Path.Combine(dir.Path, "train", "contempt"));
        WriteFace(faces, 1, Path.Combine(dir.Path, "train", "contempt"));
        var unknown = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain))!;
        Assert.That(unknown.Path, Is.EqualTo(Path.Combine(dir.Path, "train", "contempt")));
        Assert.That(unknown.Message, Does.Contain("unknown class folder 'contempt'"));

        Directory.Delete(Path.Combine(dir.Path, "train", "contempt"), true);
        Directory.CreateDirectory(Path.Combine(dir.Path, "train", "sad"));
        var empty = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain with { AllowMissingClasses = false }))!;
        Assert.That(empty.Message, Is.EqualTo($"{Path.Combine(dir.Path, "train", "sad")}: class folder is empty"));

        Directory.Delete(Path.Combine(dir.Path, "train", "sad"));
        Directory.CreateDirectory(Path.Combine(dir.Path, "extras"));
        var sibling = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain))!;
        Assert.That(sibling.Message, Does.Contain("unknown folder 'extras'"));
    }

    private static readonly object[] BadFiles =
    [
        new object[] { "corrupt.png", new Func<byte[], byte[]>(png => png.Select((b, i) => i >= 40 ? (byte)(b ^ 0x5A) : b).ToArray()), "corrupt or unsupported image" },
        new object[] { "truncated.png", new Func<byte[], byte[]>(png => png[..(png.Length / 2)]), "corrupt or unsupported image" },
        new object[] { "truncated.jpg", new Func<byte[], byte[]>(jpg => jpg[..(jpg.Length * 2 / 3)]), "corrupt or truncated JPEG" },
        new object[] { "corrupt.jpg", new Func<byte[], byte[]>(jpg => jpg.Select((b, i) => i >= 20 && i < 400 ? (byte)(b ^ 0x5A) : b).ToArray()), "corrupt" },
        new object[] { "truncated.gif", new Func<byte[], byte[]>(gif => gif[..(gif.Length / 2)]), "truncated GIF" },
        new object[] { "truncated.bmp", new Func<byte[], byte[]>(bmp => bmp[..(bmp.Length / 2)]), "truncated BMP" },
        new object[] { "truncated.tif", new Func<byte[], byte[]>(tif => tif[..(tif.Length / 2)]), "corrupt or unsupported image" },
        new object[] { "text.jpg", new Func<byte[], byte[]>(_ => "not an image at all"u8.ToArray()), "not a readable image (unknown format)" },
        new object[] { "empty.png", new Func<byte[], byte[]>(_ => []), "empty file" },
        new object[] { "notes.txt", new Func<byte[], byte[]>(_ => "hello"u8.ToArray()), "not an image file (extension '.txt')" },
    ];

    [TestCaseSource(nameof(BadFiles))]
    public void BadFile_FailsWithOneLineNamingTheFile(string name, Func<byte[], byte[]> damage, string problem)
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var extension = Path.GetExtension(name) is ".txt" ? ".png" : Path.GetExtension(name);
        var good = WriteFace(faces, 0, Path.Combine(dir.Path, "angry"), "a_good" + extension);
        var bad = Path.Combine(dir.Path, "angry", name);
        File.WriteAllBytes(bad, damage(File.ReadAllBytes(good)));
        WriteFace(faces, 1, Path.Combine(dir.Path, "disgust"));

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain))!;
        Assert.That(e.Path, Is.EqualTo(bad));
        Assert.That(e.Message, Does.StartWith(bad + ": " + problem));
        Assert.That(e.Message, Does.Not.Contain('\n'));

        using var skipped = DatasetLoader.Load(dir.Path, Plain with { OnBadImage = BadInputPolicy.Skip });
        Assert.That(skipped.Train.Count, Is.EqualTo(2));
        Assert.That(skipped.Skipped.Select(s => s.Path), Is.EqualTo(new[] { bad }));
        Assert.That(skipped.Skipped[0].ToString(), Is.EqualTo(e.Message));
    }

    [Test]
    public void StrayFileInSplitFolder_AndHiddenFiles()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        WriteFace(faces, 0, Path.Combine(dir.Path, "train", "angry"));
        File.WriteAllText(Path.Combine(dir.Path, "train", "angry", ".DS_Store"), "x");
        File.WriteAllText(Path.Combine(dir.Path, "README.txt"), "datasets ship readmes at their root");
        File.WriteAllText(Path.Combine(dir.Path, "train", "labels.txt"), "x");

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain))!;
        Assert.That(e.Message, Is.EqualTo($"{Path.Combine(dir.Path, "train", "labels.txt")}: file is not inside a class folder"));
        using var data = DatasetLoader.Load(dir.Path, Plain with { OnBadImage = BadInputPolicy.Skip });
        Assert.That(data.Train.Count, Is.EqualTo(1));
        Assert.That(data.Skipped, Has.Count.EqualTo(1), "hidden files and root files are not data and not bad data");
    }

    [Test]
    public void FailPolicy_ReportsTheFirstBadFileInOrder_WhateverTheThreads()
    {
        using var dir = new TempDirectory();
        var faces = Faces(20);
        for (int i = 0; i < faces.Count; i++) WriteFace(faces, i, Path.Combine(dir.Path, EmotionClasses.Canonical[faces.Label(i)]));
        // Two bad files in different classes; the one in the lower class comes first in load order.
        File.WriteAllText(Path.Combine(dir.Path, "sad", "img_9999.png"), "bad");
        File.WriteAllText(Path.Combine(dir.Path, "fear", "img_9999.png"), "bad");
        foreach (int threads in new[] { 1, 2, 4 })
        {
            var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain with { Threads = threads }))!;
            Assert.That(e.Path, Is.EqualTo(Path.Combine(dir.Path, "fear", "img_9999.png")), $"threads {threads}");
        }
    }

    [Test]
    public void AllFilesBad_UnderSkip_IsStillAnError()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(dir.Path, "happy"));
        File.WriteAllText(Path.Combine(dir.Path, "happy", "x.png"), "bad");
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir.Path, Plain with { OnBadImage = BadInputPolicy.Skip }))!;
        Assert.That(e.Message, Does.StartWith(dir.Path + ": no readable images"));
    }
}
