using System.Text.Json;
using Dicc.Engine.Clustering;
using Dicc.Engine.IO;
using Dicc.Engine.Randomness;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Cli.Tests;

/// <summary>dicc cluster on small .npy files.</summary>
public class ClusterVerbTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    /// <summary>60 samples x 5 features, labels 0..2 with 30, 20 and 10 samples (int64, as NumPy writes them).</summary>
    private (string Features, string Labels) WriteBatch()
    {
        var random = new RandomStream(11, 0);
        var features = new float[60 * 5];
        for (int k = 0; k < features.Length; k++) features[k] = (float)random.NextNormal();
        var labels = Enumerable.Range(0, 60).Select(i => (long)(i < 30 ? 0 : i < 50 ? 1 : 2)).ToArray();
        string f = _temp["f.npy"], l = _temp["l.npy"];
        Npy.Write<float>(f, features, 60, 5);
        Npy.Write<long>(l, labels, 60);
        return (f, l);
    }

    [TestCase("interval")]
    [TestCase("rank")]
    public void Cluster_WritesWhatTheLibraryStepWrites_AndSummarisesEachClass(string partition)
    {
        var (f, l) = WriteBatch();
        var run = Run("cluster", "--features", f, "--labels", l, "--subclasses", "4,2,1", "--partition", partition,
            "--out", _temp["p.npy"], "--centers-out", _temp["c.npy"]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        var expected = ClusterFileStep.Run(new ClusterFileOptions
        {
            FeaturesPath = f, LabelsPath = l, Subclasses = "4,2,1", Partition = PartitionModes.Parse(partition),
            OutPath = _temp["p-lib.npy"], CentersOutPath = _temp["c-lib.npy"],
        });
        Assert.That(Npy.Read(_temp["p.npy"]).ToInt32Array(), Is.EqualTo(expected.PseudoLabels));
        Assert.That(Npy.Read(_temp["c.npy"]).ToSingleArray(), Is.EqualTo(expected.Centers));

        // Class 0 owns pseudo-labels 0..3, class 1 4..5, class 2 the single label 6.
        var rows = run.Lines.Select(x => x.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(c => c.Length >= 5).ToList();
        Assert.That(rows.Single(c => c[0] == "0")[..4], Is.EqualTo(new[] { "0", "30", "4", "0..3" }));
        Assert.That(rows.Single(c => c[0] == "1")[..4], Is.EqualTo(new[] { "1", "20", "2", "4..5" }));
        Assert.That(rows.Single(c => c[0] == "2")[..4], Is.EqualTo(new[] { "2", "10", "1", "6" }));
        if (partition == "rank") // equal-size subclasses: floor(rank * 4 / 30) puts 8, 7, 8, 7 of the 30 ranks in each
            Assert.That(rows.Single(c => c[0] == "0")[5..], Is.EqualTo(new[] { "8", "7", "8", "7" }));
        Assert.That(run.Output, Does.Contain($"60 samples x 5 features; plan 4,2,1 (K = 7); {partition} partition; started from an empty state"));
    }

    [Test]
    public void Cluster_Json_StartingFromCentres()
    {
        var (f, l) = WriteBatch();
        Npy.Write<float>(_temp["c0.npy"], new float[15], 3, 5);
        var run = Run("cluster", "--features", f, "--labels", l, "--subclasses", "auto", "--centers", _temp["c0.npy"],
            "--ema-decay", "0.5", "--out", _temp["p.npy"], "--json");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var json = JsonDocument.Parse(run.Output);
        Assert.That(json.RootElement.GetProperty("started_from").GetString(), Is.EqualTo("centres"));
        Assert.That(json.RootElement.GetProperty("samples").GetInt32(), Is.EqualTo(60));
        var sizes = json.RootElement.GetProperty("classes").EnumerateArray()
            .Select(c => c.GetProperty("sizes").EnumerateArray().Sum(s => s.GetInt32())).ToArray();
        Assert.That(sizes, Is.EqualTo(new[] { 30, 20, 10 }), "every sample is in one subclass of its class");
    }

    [Test]
    public void Cluster_BadInput_IsOneLineNamingTheFileOrOption()
    {
        var (f, l) = WriteBatch();
        Npy.Write<long>(_temp["short.npy"], new long[10], 10);
        AssertBadUsage(Run("cluster", "--features", f, "--labels", _temp["short.npy"], "--subclasses", "auto", "--out", _temp["p.npy"]),
            "holds 10 labels but");
        AssertBadUsage(Run("cluster", "--features", f, "--labels", l, "--subclasses", "4,2", "--out", _temp["p.npy"]),
            "label 50 is 2, but the subclass plan '4,2' has 2 classes");
        AssertBadUsage(Run("cluster", "--features", f, "--labels", l, "--subclasses", "auto", "--partition", "kmeans", "--out", _temp["p.npy"]),
            "--partition: 'kmeans' is not one of interval, rank");
        AssertBadUsage(Run("cluster", "--features", f, "--labels", l, "--subclasses", "auto", "--ema-decay", "1.5", "--out", _temp["p.npy"]),
            "--ema-decay must be in [0, 1]");
        AssertBadUsage(Run("cluster", "--features", _temp["none.npy"], "--labels", l, "--subclasses", "auto", "--out", _temp["p.npy"]),
            "--features: file '");
        File.WriteAllText(_temp["text.npy"], "not numpy");
        AssertBadUsage(Run("cluster", "--features", _temp["text.npy"], "--labels", l, "--subclasses", "auto", "--out", _temp["p.npy"]),
            "text.npy");
        AssertBadUsage(Run("cluster", "--features", f, "--labels", l, "--out", _temp["p.npy"]), "missing required option 'subclasses'");
        Assert.That(File.Exists(_temp["p.npy"]), Is.False);
    }
}
