using Dicc.Engine.Data;
using NUnit.Framework;
using static Dicc.Engine.Tests.Support.DataTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Data;

public class Fer2013CsvTests
{
    [Test]
    public void ThreeColumnCsv_MapsUsageToSplitsAndKeepsPixelsAndOrder()
    {
        using var dir = new TempDirectory();
        var faces = Faces(3);
        string[] usages = ["Training", "PublicTest", "PrivateTest"];
        var lines = new List<string> { "emotion,pixels,Usage" };
        for (int i = 0; i < faces.Count; i++) lines.Add(CsvRow(faces.Label(i), faces.Image(i), usages[i % 3]));
        File.WriteAllLines(dir["fer.csv"], lines);

        using var data = DatasetLoader.Load(dir["fer.csv"], Plain);

        Assert.That(data.Origin, Is.EqualTo(DatasetOrigin.Fer2013Csv));
        Assert.That((data.Train.Count, data.Validation.Count, data.Test.Count), Is.EqualTo((7, 7, 7)));
        for (int i = 0; i < faces.Count; i++)
        {
            var split = data[(Split)(i % 3)];
            int j = i / 3;
            Assert.That(split.Label(j), Is.EqualTo(faces.Label(i)));
            Assert.That(split.Image(j).ToArray(), Is.EqualTo(faces.Image(i).ToArray()), $"row {i + 2}");
        }
        Assert.That(data.ClassNames, Is.EqualTo(EmotionClasses.Canonical));
        Assert.That(data.Skipped, Is.Empty);
    }

    [Test]
    public void ALabelNoTrainingRowHas_IsAnErrorNamingTheClass_UnlessAllowed()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var lines = new List<string> { "emotion,pixels,Usage" };
        for (int i = 0; i < faces.Count; i++)
            if (faces.Label(i) is not (1 or 5)) lines.Add(CsvRow(faces.Label(i), faces.Image(i), "Training"));
        File.WriteAllLines(dir["fer.csv"], lines);
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir["fer.csv"], Plain with { AllowMissingClasses = false }))!;
        Assert.That(e.Message, Is.EqualTo($"{dir["fer.csv"]}: no training images of class 'disgust', 'surprise': every class needs training images; " +
                                          "list only the classes to train on, or allow missing classes"));
        using var allowed = DatasetLoader.Load(dir["fer.csv"], Plain);
        Assert.That(allowed.Train.ClassCounts(), Is.EqualTo(new[] { 1, 0, 1, 1, 1, 0, 1 }));
    }

    [Test]
    public void TwoColumnCsv_IsOneSplit_TrainByDefault()
    {
        using var dir = new TempDirectory();
        var faces = Faces(2);
        File.WriteAllLines(dir["lt.csv"], new[] { "emotion,pixels" }.Concat(Enumerable.Range(0, faces.Count).Select(i => CsvRow(faces.Label(i), faces.Image(i), null))));

        using var train = DatasetLoader.Load(dir["lt.csv"], Plain);
        Assert.That((train.Train.Count, train.Validation.Count, train.Test.Count), Is.EqualTo((14, 0, 0)));
        Assert.That(train.Train.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 7)));

        using var test = DatasetLoader.Load(dir["lt.csv"], Plain with { SingleSplit = Split.Test });
        Assert.That((test.Train.Count, test.Test.Count), Is.EqualTo((0, 14)));
    }

    [Test]
    public void StreamingAcrossManyBlocks_KeepsEveryRowInOrder()
    {
        // 8x8 images keep the file small while crossing the reader's 2048-line blocks several times.
        using var dir = new TempDirectory();
        const int rows = 5000;
        var lines = new List<string> { "emotion,pixels,Usage" };
        for (int i = 0; i < rows; i++)
        {
            var pixels = Enumerable.Range(0, 64).Select(p => (byte)((i * 7 + p) % 256)).ToArray();
            lines.Add(CsvRow(i % 7, pixels, i % 10 == 0 ? "PrivateTest" : "Training"));
        }
        File.WriteAllLines(dir["big.csv"], lines);

        using var data = DatasetLoader.Load(dir["big.csv"], Plain with { ImageSize = 8 });

        Assert.That((data.Train.Count, data.Test.Count), Is.EqualTo((4500, 500)));
        int train = 0, test = 0;
        for (int i = 0; i < rows; i++)
        {
            var (split, j) = i % 10 == 0 ? (data.Test, test++) : (data.Train, train++);
            Assert.That(split.Label(j), Is.EqualTo(i % 7));
            Assert.That(split.Image(j)[5], Is.EqualTo((byte)((i * 7 + 5) % 256)), $"row {i}");
        }
    }

    [Test]
    public void QuotedPixelsAndCrLfLineEndsAndBlankLines_AreAccepted()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var text = "emotion,pixels,Usage\r\n" + $"{faces.Label(0)},\"{string.Join(' ', faces.Image(0).ToArray())}\",Training\r\n\r\n";
        File.WriteAllText(dir["q.csv"], text);
        using var data = DatasetLoader.Load(dir["q.csv"], Plain);
        Assert.That(data.Train.Image(0).ToArray(), Is.EqualTo(faces.Image(0).ToArray()));
    }

    private static readonly object[] BadRows =
    [
        new object[] { "3," + string.Join(' ', Enumerable.Repeat("1", 2303)) + ",Training", "expected 2304 pixel values, found 2303" },
        new object[] { "3," + string.Join(' ', Enumerable.Repeat("1", 2305)) + ",Training", "expected 2304 pixel values, found 2305" },
        new object[] { "7," + string.Join(' ', Enumerable.Repeat("1", 2304)) + ",Training", "emotion label 7 is out of range 0..6" },
        new object[] { "-1," + string.Join(' ', Enumerable.Repeat("1", 2304)) + ",Training", "emotion label -1 is out of range 0..6" },
        new object[] { "x," + string.Join(' ', Enumerable.Repeat("1", 2304)) + ",Training", "emotion 'x' is not an integer label" },
        // The message gives the pixel's position and the value it holds (it once gave the position as the value).
        new object[] { "3," + string.Join(' ', Enumerable.Repeat("256", 2304)) + ",Training", "pixel 1 is 256; pixel values are 0..255" },
        new object[] { "3,1 2 3 4 1300 " + string.Join(' ', Enumerable.Repeat("1", 2299)) + ",Training", "pixel 5 is 1300; pixel values are 0..255" },
        new object[] { "3," + string.Join(' ', Enumerable.Repeat("1", 2303)) + " a,Training", "invalid character 'a'" },
        new object[] { "3," + string.Join(' ', Enumerable.Repeat("1", 2304)) + ",Holdout", "unknown Usage 'Holdout'" },
        new object[] { "3", "expected at least 3 comma-separated fields, found 1" },
    ];

    [TestCaseSource(nameof(BadRows))]
    public void BadRow_FailsWithOneLineNamingFileAndLine(string badRow, string problem)
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var path = dir["bad.csv"];
        File.WriteAllLines(path, ["emotion,pixels,Usage", CsvRow(0, faces.Image(0), "Training"), badRow, CsvRow(1, faces.Image(1), "Training")]);

        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, Plain))!;
        Assert.That(e.Path, Is.EqualTo(path));
        Assert.That(e.Line, Is.EqualTo(3));
        Assert.That(e.Message, Does.StartWith($"{path}, line 3: ").And.Contain(problem));
        Assert.That(e.Message, Does.Not.Contain('\n'));
    }

    [TestCaseSource(nameof(BadRows))]
    public void BadRow_UnderSkip_IsListedAndTheRestLoads(string badRow, string problem)
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var path = dir["bad.csv"];
        File.WriteAllLines(path, ["emotion,pixels,Usage", CsvRow(0, faces.Image(0), "Training"), badRow, CsvRow(1, faces.Image(1), "Training")]);

        using var data = DatasetLoader.Load(path, Plain with { OnBadImage = BadInputPolicy.Skip });
        Assert.That(data.Train.Count, Is.EqualTo(2));
        Assert.That(data.Train.Labels.ToArray(), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(data.Skipped, Has.Count.EqualTo(1));
        Assert.That(data.Skipped[0].Path, Is.EqualTo(path));
        Assert.That(data.Skipped[0].Line, Is.EqualTo(3));
        Assert.That(data.Skipped[0].Reason, Does.Contain(problem));
    }

    [Test]
    public void ExplicitClassList_BoundsTheLabels()
    {
        using var dir = new TempDirectory();
        var faces = Faces(1);
        var path = dir["three.csv"];
        File.WriteAllLines(path, ["emotion,pixels", CsvRow(2, faces.Image(0), null), CsvRow(3, faces.Image(1), null)]);
        var options = Plain with { ClassNames = ["a", "b", "c"] };
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(path, options))!;
        Assert.That(e.Message, Does.Contain("line 3").And.Contain("out of range 0..2"));
    }

    [Test]
    public void MissingHeader_EmptyFile_AndNotADataset_AreNamed()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir["empty.csv"], "");
        File.WriteAllLines(dir["noheader.csv"], ["3,1 2 3,Training"]);
        File.WriteAllText(dir["notes.txt"], "hello");

        var empty = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir["empty.csv"], Plain))!;
        Assert.That(empty.Message, Does.StartWith(dir["empty.csv"]).And.Contain("not a dataset"));
        var noHeader = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir["noheader.csv"], Plain))!;
        Assert.That(noHeader.Message, Does.StartWith(dir["noheader.csv"]).And.Contain("not a dataset"));
        var notes = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(dir["notes.txt"], Plain))!;
        Assert.That(notes.Message, Does.StartWith(dir["notes.txt"]));
    }

    [Test]
    public void Writer_RoundTripsBothForms()
    {
        using var dir = new TempDirectory();
        var faces = Faces(2);
        Fer2013Csv.Write(dir["two.csv"], [faces], includeUsage: false);
        using (var back = DatasetLoader.Load(dir["two.csv"], Plain))
        {
            Assert.That(back.Train.Pixels.ToArray(), Is.EqualTo(faces.Pixels.ToArray()));
            Assert.That(back.Train.Labels.ToArray(), Is.EqualTo(faces.Labels.ToArray()));
        }
        Assert.That(File.ReadLines(dir["two.csv"]).First(), Is.EqualTo("emotion,pixels"));

        Fer2013Csv.Write(dir["three.csv"], [faces, faces.AsSplit(Split.Test)]);
        using var both = DatasetLoader.Load(dir["three.csv"], Plain);
        Assert.That(both.Test.Pixels.ToArray(), Is.EqualTo(faces.Pixels.ToArray()));
        Assert.That(File.ReadLines(dir["three.csv"]).Last(), Does.EndWith(",PrivateTest"));
    }
}
