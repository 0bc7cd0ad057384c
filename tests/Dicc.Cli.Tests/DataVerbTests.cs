using System.Text.Json;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Cli.Tests;

/// <summary>dicc synth, longtail and pack, run in-process on small data.</summary>
public class DataVerbTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private static DatasetLoadOptions NoCache => new() { Cache = PackCacheMode.Off };

    /// <summary>The row of a printed table whose first cell is <paramref name="name"/>, split into cells.</summary>
    private static string[] Row(CliRun run, string name) =>
        run.Lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).FirstOrDefault(cells => cells.Length > 0 && cells[0] == name)
        ?? throw new AssertionException($"no table row '{name}' in:\n{run.Output}");

    [Test]
    public void Synth_WritesFoldersThatTheLoaderReadsBackToTheGeneratedPixels()
    {
        string dir = _temp["synth"];
        var run = Run("synth", "--out", dir, "--per-class", "30", "--beta", "10", "--val-per-class", "5", "--test-per-class", "4", "--seed", "2");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        var options = new SyntheticFaceOptions { TrainPerClass = 30, Beta = 10, ValidationPerClass = 5, TestPerClass = 4, Seed = 2 };
        using var expected = SyntheticFaces.Generate(options);
        using var loaded = DatasetLoader.Load(dir, NoCache);
        foreach (var split in SplitNames.All)
        {
            Assert.That(loaded[split].Labels.ToArray(), Is.EqualTo(expected[split].Labels.ToArray()), $"{split} labels");
            Assert.That(loaded[split].Pixels.ToArray(), Is.EqualTo(expected[split].Pixels.ToArray()), $"{split} pixels");
        }
        // The table: happy is the head class (30), disgust the tail (3); beta 30 / 3 = 10.
        int[] counts = SyntheticFaces.TrainCounts(options);
        Assert.That(Row(run, "happy"), Is.EqualTo(new[] { "happy", "30", "5", "4" }));
        Assert.That(Row(run, "disgust"), Is.EqualTo(new[] { "disgust", counts[1].ToString(), "5", "4" }));
        Assert.That(Row(run, "total")[1], Is.EqualTo(counts.Sum().ToString()));
        Assert.That(run.Output, Does.Contain("β = n_max / n_min = 10 "));
        Assert.That(run.Output, Does.Contain($"Wrote {counts.Sum() + 7 * 9} synthetic faces"));
    }

    [Test]
    public void Synth_Json_ReportsTheFilesAndCounts()
    {
        var run = Run("synth", "--out", _temp["s"], "--counts", "1,2,3,4,5,6,7", "--val-per-class", "0", "--test-per-class", "1", "--size", "20", "--json");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var json = JsonDocument.Parse(run.Output);
        Assert.That(json.RootElement.GetProperty("files").GetInt32(), Is.EqualTo(28 + 7));
        Assert.That(json.RootElement.GetProperty("size").GetInt32(), Is.EqualTo(20));
        Assert.That(json.RootElement.GetProperty("beta").GetDouble(), Is.EqualTo(7.0));
        Assert.That(json.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetProperty("train").GetInt32()),
            Is.EqualTo(new[] { 1, 2, 3, 4, 5, 6, 7 }));
        Assert.That(Directory.GetFiles(_temp["s"], "*.png", SearchOption.AllDirectories), Has.Length.EqualTo(35));
    }

    [TestCase("--beta", "0.5", "--beta must be a finite number >= 1")]
    [TestCase("--counts", "1,2", "--counts: 2 counts given for 7 classes")]
    [TestCase("--counts", "1,x,3,4,5,6,7", "--counts: 'x' is not a count")]
    [TestCase("--profile", "zigzag", "--profile: 'zigzag' is not a profile")]
    [TestCase("--seed", "abc", "--seed: 'abc' is not a whole number >= 0")]
    [TestCase("--seed=-3", null, "--seed: '-3' is not a whole number >= 0")]
    [TestCase("--per-class", "-1", "--per-class must not be negative")]
    [TestCase("--size", "8", "--size must be in 16..512")]
    [TestCase("--bogus", null, "Unknown option 'bogus'")]
    public void Synth_BadValues_AreOneLineNamingTheOption(string option, string? value, string expected)
    {
        var args = new List<string> { "synth", "--out", _temp["x"], option };
        if (value is not null) args.Add(value);
        var run = Run(args.ToArray());
        AssertBadUsage(run, expected);
        Assert.That(run.ErrorOutput, Does.Contain("--help"), "the hint to --help, on standard error");
        Assert.That(Directory.Exists(_temp["x"]), Is.False, "nothing written");
    }

    [Test]
    public void Synth_RefusesAFolderThatIsNotEmpty_AndAMissingOut()
    {
        File.WriteAllText(_temp["keep.txt"], "mine");
        AssertBadUsage(Run("synth", "--out", _temp.Path), "is not empty");
        AssertBadUsage(Run("synth"), "missing required option 'out'");
        Assert.That(File.ReadAllText(_temp["keep.txt"]), Is.EqualTo("mine"));
    }

    /// <summary>A balanced image folder: 40 train, 4 val and 4 test images per class.</summary>
    private string BalancedFolder()
    {
        string dir = _temp["balanced"];
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 40, ValidationPerClass = 4, TestPerClass = 4, Seed = 9 });
        ImageFolderWriter.Write(data, dir);
        return dir;
    }

    [Test]
    public void LongTail_PrintsCountsBeforeAndAfterAndTheRealisedBeta_AndWritesALoadableManifest()
    {
        string data = BalancedFolder(), manifest = _temp["b10.manifest"];
        var run = Run("longtail", "--data", data, "--beta", "10", "--seed", "1", "--out", manifest, "--no-cache");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        // Ties in frequency rank by label: angry is the head. floor(40 * 10^(-r/6)) = 40, 27, 18, 12, 8, 5, 4.
        int[] after = [40, 27, 18, 12, 8, 5, 4];
        for (int c = 0; c < 7; c++)
        {
            var row = Row(run, EmotionClasses.Canonical[c]);
            Assert.That(row[1..3], Is.EqualTo(new[] { "40", after[c].ToString() }), EmotionClasses.Canonical[c]);
        }
        Assert.That(Row(run, "total")[1..3], Is.EqualTo(new[] { "280", after.Sum().ToString() }));
        Assert.That(run.Output, Does.Contain("1 before, 10 after (asked 10, exponential profile"));

        using var loaded = DatasetLoader.Load(manifest, NoCache);
        Assert.That(loaded.Train.ClassCounts(), Is.EqualTo(after));
        Assert.That(loaded.Validation.ClassCounts(), Is.EqualTo(Enumerable.Repeat(4, 7)));
        Assert.That(loaded.Test.ClassCounts(), Is.EqualTo(Enumerable.Repeat(4, 7)));
    }

    [Test]
    public void LongTail_Json_AndCsvOutput()
    {
        string data = BalancedFolder(), csv = _temp["b4.csv"];
        var run = Run("longtail", "--data", data, "--beta", "4", "--profile", "step", "--out", csv, "--no-cache", "--json");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var json = JsonDocument.Parse(run.Output);
        // Step: the frequent half (4 of 7 classes) keep 40, the rest 40 / 4 = 10.
        Assert.That(json.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetProperty("after").GetInt32()),
            Is.EqualTo(new[] { 40, 40, 40, 40, 10, 10, 10 }));
        Assert.That(json.RootElement.GetProperty("beta").GetDouble(), Is.EqualTo(4.0));
        Assert.That(json.RootElement.GetProperty("format").GetString(), Is.EqualTo("csv"));
        using var loaded = DatasetLoader.Load(csv, NoCache);
        Assert.That(loaded.Train.ClassCounts(), Is.EqualTo(new[] { 40, 40, 40, 40, 10, 10, 10 }));
    }

    [Test]
    public void LongTail_BadInput_IsOneLineNamingTheCulprit()
    {
        string data = BalancedFolder();
        AssertBadUsage(Run("longtail", "--data", data, "--out", _temp["m"]), "--beta is required");
        AssertBadUsage(Run("longtail", "--data", data, "--beta", "10", "--counts", "1,2,3,4,5,6,7", "--out", _temp["m"]), "leave out --beta");
        AssertBadUsage(Run("longtail", "--data", data, "--counts", "fer2013-beta10", "--out", _temp["m"], "--no-cache"),
            "--counts: angry asks for 1308 images; only 40 available");
        AssertBadUsage(Run("longtail", "--data", _temp["nowhere"], "--beta", "10", "--out", _temp["m"]), "--data: '");
        AssertBadUsage(Run("longtail", "--data", data, "--beta", "10", "--out", data), "is a folder");
        AssertBadUsage(Run("longtail", "--data", data, "--beta", "10", "--out", _temp["m"], "--classes", "a,a"), "--classes: 'a' appears twice");
        Assert.That(File.Exists(_temp["m"]), Is.False);
    }

    [Test]
    public void Pack_RoundTrip_EqualsLoadingTheSource()
    {
        string data = BalancedFolder(), pack = _temp["faces.diccpack"];
        var run = Run("pack", "--data", data, "--out", pack);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Output, Does.Contain("Wrote " + pack + ": 336 images of 48x48"));
        Assert.That(Row(run, "total")[1..4], Is.EqualTo(new[] { "280", "28", "28" }));

        using var source = DatasetLoader.Load(data, NoCache);
        using var packed = DatasetPack.Open(pack);
        foreach (var split in SplitNames.All)
        {
            Assert.That(packed[split].Labels.ToArray(), Is.EqualTo(source[split].Labels.ToArray()), $"{split} labels");
            Assert.That(packed[split].Pixels.ToArray(), Is.EqualTo(source[split].Pixels.ToArray()), $"{split} pixels");
        }
    }

    [Test]
    public void Pack_ACorruptImage_FailsNamingIt_OrIsSkippedWhenAsked()
    {
        string data = BalancedFolder();
        string bad = Path.Combine(data, "train", "angry", "broken.png");
        File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);

        var failed = Run("pack", "--data", data, "--out", _temp["a.diccpack"]);
        AssertBadUsage(failed, "broken.png");
        Assert.That(File.Exists(_temp["a.diccpack"]), Is.False);

        var skipped = Run("pack", "--data", data, "--out", _temp["b.diccpack"], "--on-bad-image", "skip", "--json");
        Assert.That(skipped.ExitCode, Is.EqualTo(0), skipped.ToString());
        using var json = JsonDocument.Parse(skipped.Output);
        Assert.That(json.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(336));
        Assert.That(json.RootElement.GetProperty("skipped").EnumerateArray().Single().GetString(), Does.Contain("broken.png"));

        AssertBadUsage(Run("pack", "--data", data, "--out", _temp["c"], "--on-bad-image", "ignore"), "--on-bad-image: 'ignore' is not one of fail, skip");
        AssertBadUsage(Run("pack", "--out", _temp["c"]), "missing required option 'data'");
    }
}
