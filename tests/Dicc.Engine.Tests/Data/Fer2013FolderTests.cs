using System.Diagnostics;
using System.Security.Cryptography;
using Dicc.Engine.Data;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Data;

/// <summary>
/// The real FER2013 image folder (35,887 JPEGs), when this machine has it: exact counts per split and class,
/// load speed, the pack cache, and the paper's long-tailed subset. Skipped with the reason when absent.
/// </summary>
[Category("FER2013")]
public class Fer2013FolderTests
{
    private static string? _root;
    private static DatasetSplits? _decoded;
    private static double _decodeSeconds;

    /// <summary>$DICC_FER2013, else shared/data/fer2013 in the repository's parent folders.</summary>
    internal static string? Locate()
    {
        if (Environment.GetEnvironmentVariable("DICC_FER2013") is { Length: > 0 } explicitPath && Directory.Exists(explicitPath)) return explicitPath;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data", "fer2013");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static string Root()
    {
        _root ??= Locate();
        if (_root is null)
            Assert.Ignore("FER2013 image folder not found: set DICC_FER2013 or place it at <parent>/shared/data/fer2013 (it is not part of the repository).");
        return _root!;
    }

    /// <summary>One full decode shared by the tests that only read it (decoding is the slow part).</summary>
    private static DatasetSplits Decoded()
    {
        var root = Root();
        if (_decoded is null)
        {
            var stopwatch = Stopwatch.StartNew();
            _decoded = DatasetLoader.Load(root, new DatasetLoadOptions { Cache = PackCacheMode.Off });
            _decodeSeconds = stopwatch.Elapsed.TotalSeconds;
        }
        return _decoded;
    }

    [OneTimeTearDown]
    public void Release()
    {
        _decoded?.Dispose();
        _decoded = null;
    }

    // From shared/data/README.md: train per class, and test (PublicTest + PrivateTest) per class.
    private static readonly int[] TrainCounts = [3995, 436, 4097, 7215, 4830, 3171, 4965];
    private static readonly int[] TestBothHalves = [958, 111, 1024, 1774, 1247, 831, 1233];

    [Test]
    public void FullLoad_HasTheOfficialCountsPerSplitAndClass_AndIsFast()
    {
        var data = Decoded();
        double seconds = _decodeSeconds;
        TestContext.Out.WriteLine($"FER2013 folder: {data.TotalCount} images decoded in {seconds:F2} s = {data.TotalCount / seconds:F0} images/s on {Environment.ProcessorCount} cores");

        Assert.That(data.Train.ClassCounts(), Is.EqualTo(TrainCounts));
        Assert.That((data.Validation.Count, data.Test.Count), Is.EqualTo((3589, 3589)));
        var both = data.Validation.ClassCounts().Zip(data.Test.ClassCounts(), (a, b) => a + b);
        Assert.That(both, Is.EqualTo(TestBothHalves));
        Assert.That(data.Validation.Sources!.All(s => Path.GetFileName(s).StartsWith("PublicTest_")));
        Assert.That(data.Test.Sources!.All(s => Path.GetFileName(s).StartsWith("PrivateTest_")));
        Assert.That(data.Skipped, Is.Empty);
        Assert.That(data.ValidationHeldOut, Is.False);
        // Generous bound for a shared 2-core machine; the figure above is what to read.
        Assert.That(seconds, Is.LessThan(60), "decoding FER2013 must take seconds, not minutes");
    }

    [Test]
    public void PackCache_IsWrittenOnce_ThenMappedWithIdenticalContent()
    {
        var root = Root();
        using var cache = new TempDirectory();
        var options = new DatasetLoadOptions { CacheDirectory = cache.Path };
        var stopwatch = Stopwatch.StartNew();
        using var decoded = DatasetLoader.Load(root, options);
        double decodeSeconds = stopwatch.Elapsed.TotalSeconds;
        Assert.That(decoded.PackPath, Is.Null);
        Assert.That(decoded.CacheNote, Does.StartWith("cache written to"));

        stopwatch.Restart();
        using var mapped = DatasetLoader.Load(root, options);
        double mapSeconds = stopwatch.Elapsed.TotalSeconds;
        TestContext.Out.WriteLine($"FER2013: decode + write pack {decodeSeconds:F2} s; freshness check + map pack {mapSeconds * 1000:F0} ms " +
            $"({new FileInfo(mapped.PackPath!).Length / 1e6:F1} MB)");

        Assert.That(mapped.PackPath, Is.EqualTo(DatasetLoader.CachePath(root, options)));
        foreach (var split in SplitNames.All)
        {
            Assert.That(SHA256.HashData(mapped[split].Pixels.Span), Is.EqualTo(SHA256.HashData(decoded[split].Pixels.Span)), split.Name());
            Assert.That(mapped[split].Labels.ToArray(), Is.EqualTo(decoded[split].Labels.ToArray()));
            Assert.That(mapped[split].Sources, Is.EqualTo(decoded[split].Sources));
        }
    }

    [Test]
    public void PaperLongTail_DrawsExactlyThePaperCounts_AndLeavesValidationAndTestAlone()
    {
        var data = Decoded();
        var paper = LongTail.Apply(data, new LongTailOptions { Counts = LongTail.PaperFer2013Beta10, Seed = 1 });
        Assert.That(paper.Train.ClassCounts(), Is.EqualTo(LongTail.PaperFer2013Beta10));
        Assert.That(LongTail.ImbalanceFactor(paper.Train.ClassCounts()), Is.EqualTo(10));
        Assert.That(paper.Validation, Is.SameAs(data.Validation));
        Assert.That(paper.Test, Is.SameAs(data.Test));

        // The exponential profile at beta 10 with the largest feasible n_max: bounded by the 436 disgust images.
        var exp = LongTail.Apply(data, new LongTailOptions { Beta = 10, Seed = 1 });
        Assert.That(exp.Train.ClassCounts(), Is.EqualTo(new[] { 939, 436, 1378, 4360, 2023, 639, 2970 }));
        // At beta 100 the head class keeps all its 7215 images.
        var exp100 = LongTail.Apply(data, new LongTailOptions { Beta = 100, Seed = 1 });
        Assert.That(exp100.Train.ClassCounts(), Is.EqualTo(new[] { 334, 72, 721, 7215, 1554, 155, 3348 }));
    }
}
