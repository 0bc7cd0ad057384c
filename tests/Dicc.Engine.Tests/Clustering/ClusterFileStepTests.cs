using System.ComponentModel;
using System.Diagnostics;
using Dicc.Engine.Clustering;
using Dicc.Engine.IO;
using Dicc.Engine.Randomness;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Clustering;

public class ClusterFileStepTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("dicc-cluster-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Writes a long-tailed batch with every one of the 7 classes present; labels as int64 like NumPy's.</summary>
    private (string Features, string Labels, float[] F, int[] L) WriteBatch(string name, ulong seed, int n, int m)
    {
        var (features, labels) = IntraClassClusteringTests.RandomBatch(new RandomStream(seed), n, m, 7);
        for (int c = 0; c < 7; c++) labels[c] = c; // make sure every class is there
        string f = PathOf(name + "-features.npy"), l = PathOf(name + "-labels.npy");
        Npy.Write<float>(f, features, n, m);
        Npy.Write<long>(l, Array.ConvertAll(labels, v => (long)v), n);
        return (f, l, features, labels);
    }

    [TestCase(PartitionMode.Interval)]
    [TestCase(PartitionMode.Rank)]
    public void OneStep_WritesThePseudoLabelsAndCentresOfTheModule(PartitionMode mode)
    {
        var (f, l, features, labels) = WriteBatch("a", 1, 300, 40);
        var result = ClusterFileStep.Run(new ClusterFileOptions
        {
            FeaturesPath = f, LabelsPath = l, Subclasses = "auto", Partition = mode,
            OutPath = PathOf("p.npy"), CentersOutPath = PathOf("c.npy"),
        });

        var counts = Dicc.Engine.Imbalance.ClassStatistics.Count(labels, 7);
        var plan = SubclassPlan.Auto(counts);
        Assert.That(result.Plan, Is.EqualTo(plan));
        var module = new IntraClassClustering(new ClusteringConfig(plan, 40, mode));
        var expected = new int[labels.Length];
        module.Assign(features, labels, expected);

        var written = Npy.Read(PathOf("p.npy"));
        Assert.That(written.DType, Is.EqualTo(NpyDType.Int64));
        Assert.That(written.Shape.ToArray(), Is.EqualTo(new long[] { 300 }));
        Assert.That(written.ToInt32Array(), Is.EqualTo(expected));
        var centers = Npy.Read(PathOf("c.npy"));
        Assert.That(centers.DType, Is.EqualTo(NpyDType.Float32));
        Assert.That(centers.Shape.ToArray(), Is.EqualTo(new long[] { 7, 40 }));
        Assert.That(centers.ToSingleArray(), Is.EqualTo(module.Centers.ToArray()));
        Assert.That(result.ClassCounts, Is.EqualTo(counts));
    }

    [Test]
    public void GivenCentres_AreBlendedIntoEveryClass()
    {
        var (f, l, features, labels) = WriteBatch("a", 2, 100, 33);
        var start = new float[7 * 33];
        for (int k = 0; k < start.Length; k++) start[k] = k % 5 - 2;
        Npy.Write<double>(PathOf("c0.npy"), Array.ConvertAll(start, v => (double)v), 7, 33); // float64 is accepted
        ClusterFileStep.Run(new ClusterFileOptions
        {
            FeaturesPath = f, LabelsPath = l, Subclasses = "fer2013-b10", CentersPath = PathOf("c0.npy"), EmaDecay = 0.9,
            OutPath = PathOf("p.npy"), CentersOutPath = PathOf("c1.npy"),
        });
        var module = new IntraClassClustering(new ClusteringConfig(SubclassPlan.Preset("fer2013-b10"), 33, PartitionMode.Interval, 0.9));
        module.SetCenters(start);
        var expected = new int[labels.Length];
        module.Assign(features, labels, expected);
        Assert.That(Npy.Read(PathOf("p.npy")).ToInt32Array(), Is.EqualTo(expected));
        Assert.That(Npy.Read(PathOf("c1.npy")).ToSingleArray(), Is.EqualTo(module.Centers.ToArray()));
    }

    [Test]
    public void InconsistentInputs_AreNamed()
    {
        var (f, l, _, _) = WriteBatch("a", 3, 50, 8);
        Npy.Write<long>(PathOf("short.npy"), [0, 1, 2], 3);
        Npy.Write<float>(PathOf("flat.npy"), new float[8], 8);
        Npy.Write<float>(PathOf("float-labels.npy"), new float[50], 50);
        Npy.Write<int>(PathOf("int-features.npy"), new int[400], 50, 8);
        Npy.Write<float>(PathOf("c-wide.npy"), new float[7 * 9], 7, 9);
        Npy.Write<float>(PathOf("c-rows.npy"), new float[5 * 8], 5, 8);
        var big = new long[50];
        big[17] = 9;
        Npy.Write<long>(PathOf("big-label.npy"), big, 50);
        var negative = new long[50];
        negative[4] = -1;
        Npy.Write<long>(PathOf("negative.npy"), negative, 50);

        Expect<ClusterInputException>(o => o with { LabelsPath = PathOf("short.npy") }, $"{PathOf("short.npy")} holds 3 labels but {f} holds 50 feature rows");
        Expect<NpyFormatException>(o => o with { FeaturesPath = PathOf("flat.npy") }, "features must be a 2-D array");
        Expect<NpyFormatException>(o => o with { LabelsPath = PathOf("float-labels.npy") }, "expected integers, got float32");
        Expect<NpyFormatException>(o => o with { FeaturesPath = PathOf("int-features.npy") }, "features must be float32 or float64, got int32");
        Expect<ClusterInputException>(o => o with { CentersPath = PathOf("c-wide.npy") }, "has 9 columns but the features");
        Expect<ClusterInputException>(o => o with { CentersPath = PathOf("c-rows.npy") }, "has 5 centres but the subclass plan '4,1,6,10,8,2,8' has 7 classes");
        Expect<ClusterInputException>(o => o with { LabelsPath = PathOf("big-label.npy") }, "label 17 is 9, but the subclass plan '4,1,6,10,8,2,8' has 7 classes");
        Expect<ClusterInputException>(o => o with { LabelsPath = PathOf("negative.npy") }, "label 4 is -1; labels must be >= 0");
        Expect<InputException>(o => o with { EmaDecay = 1.5 }, "emaDecay must be in [0, 1], got 1.5");
        Expect<ClusterInputException>(o => o with { Subclasses = "4,1,6" }, "label 3 is 3, but the subclass plan '4,1,6' has 3 classes");
        Expect<SubclassPlanException>(o => o with { Subclasses = "4,0,6,10,8,2,8" }, "entry 2 is 0");
        Expect<SubclassPlanException>(o => o with { Subclasses = "fer2013" }, "unknown subclass preset 'fer2013'");
        Expect<NpyFormatException>(o => o with { FeaturesPath = PathOf("nope.npy") }, "no such file");
        Assert.That(File.Exists(PathOf("p.npy")), Is.False, "nothing written on bad input");

        void Expect<TException>(Func<ClusterFileOptions, ClusterFileOptions> change, string message) where TException : Exception
        {
            var options = change(new ClusterFileOptions { FeaturesPath = f, LabelsPath = l, Subclasses = "4,1,6,10,8,2,8", OutPath = PathOf("p.npy") });
            var e = Assert.Throws<TException>(() => ClusterFileStep.Run(options));
            Assert.That(e!.Message, Does.Contain(message));
        }
    }

    // An independent NumPy implementation of the clustering step of docs/method.md (float64 arithmetic in NumPy's own summation order,
    // float32 centres), run on the .npy files this engine writes; it writes its answers with np.save.
    private const string NumPyReference = """
        import sys
        import numpy as np

        def dicc_step(features, labels, ns, mode, decay, centers, seen):
            offsets = np.concatenate(([0], np.cumsum(ns)[:-1]))
            pseudo = np.empty(len(labels), dtype=np.int64)
            for c in range(len(ns)):
                idx = np.flatnonzero(labels == c)
                if idx.size == 0:
                    continue
                f = features[idx].astype(np.float64)
                y = f.mean(axis=0)
                mu = decay * centers[c].astype(np.float64) + (1 - decay) * y if seen[c] else y
                centers[c] = mu.astype(np.float32)
                seen[c] = True
                d = np.sqrt(((f - centers[c].astype(np.float64)) ** 2).sum(axis=1))
                if mode == "interval":
                    delta = d.max() / ns[c]
                    n = np.zeros(idx.size, np.int64) if delta == 0 else np.minimum(np.floor(d / delta), ns[c] - 1).astype(np.int64)
                else:
                    order = np.lexsort((idx, d))  # by distance, ties by batch position
                    rank = np.empty(idx.size, np.int64)
                    rank[order] = np.arange(idx.size)
                    n = rank * ns[c] // idx.size
                pseudo[idx] = offsets[c] + n
            return pseudo

        ns = [int(v) for v in sys.argv[1].split(",")]
        mode, decay, out = sys.argv[2], float(sys.argv[3]), sys.argv[4]
        batches = sys.argv[5:]
        centers, seen = None, [False] * len(ns)
        for k in range(0, len(batches), 2):
            features, labels = np.load(batches[k]), np.load(batches[k + 1])
            assert features.dtype == np.float32 and labels.dtype == np.int64, (features.dtype, labels.dtype)
            if centers is None:
                centers = np.zeros((len(ns), features.shape[1]), np.float32)
            pseudo = dicc_step(features, labels, ns, mode, decay, centers, seen)
            np.save(f"{out}/numpy-pseudo-{k // 2}.npy", pseudo)
            np.save(f"{out}/numpy-centers-{k // 2}.npy", centers)
        """;

    [TestCase(PartitionMode.Interval)]
    [TestCase(PartitionMode.Rank)]
    public void TwoSteps_AgreeWithAnIndependentNumPyImplementation(PartitionMode mode)
    {
        string python = PythonWithNumPy.Find()
            ?? throw new IgnoreException("No python3 with NumPy here (apt-get install python3-numpy); the NumPy cross-check is skipped.");
        var (f1, l1, _, _) = WriteBatch("b1", 10, 400, 40);
        var (f2, l2, _, _) = WriteBatch("b2", 11, 350, 40);
        const string plan = "4,1,3,8,5,2,6";
        const double decay = 0.9;

        // Step 1 from an empty state, step 2 from the centres step 1 wrote (every class was in batch 1).
        ClusterFileStep.Run(new ClusterFileOptions
        {
            FeaturesPath = f1, LabelsPath = l1, Subclasses = plan, Partition = mode, EmaDecay = decay,
            OutPath = PathOf("dicc-pseudo-0.npy"), CentersOutPath = PathOf("dicc-centers-0.npy"),
        });
        ClusterFileStep.Run(new ClusterFileOptions
        {
            FeaturesPath = f2, LabelsPath = l2, Subclasses = plan, Partition = mode, EmaDecay = decay,
            CentersPath = PathOf("dicc-centers-0.npy"),
            OutPath = PathOf("dicc-pseudo-1.npy"), CentersOutPath = PathOf("dicc-centers-1.npy"),
        });

        string script = PathOf("dicc_reference.py");
        File.WriteAllText(script, NumPyReference);
        PythonWithNumPy.Run(python, script, plan, mode.Name(), decay.ToString(System.Globalization.CultureInfo.InvariantCulture), _dir, f1, l1, f2, l2);

        for (int step = 0; step < 2; step++)
        {
            var ours = Npy.Read(PathOf($"dicc-pseudo-{step}.npy")).ToInt32Array();
            var theirs = Npy.Read(PathOf($"numpy-pseudo-{step}.npy"));
            Assert.That(theirs.DType, Is.EqualTo(NpyDType.Int64), "NumPy's labels read back");
            Assert.That(ours, Is.EqualTo(theirs.ToInt32Array()), $"pseudo-labels of step {step}");
            // Summation orders differ (NumPy sums pairwise), so a centre may differ in its last bit.
            Assert.That(Npy.Read(PathOf($"dicc-centers-{step}.npy")).ToSingleArray(),
                Is.EqualTo(Npy.Read(PathOf($"numpy-centers-{step}.npy")).ToSingleArray()).Within(1e-5f).Percent, $"centres of step {step}");
        }
    }
}

/// <summary>Finds a Python interpreter that can import NumPy, and runs scripts with it.</summary>
internal static class PythonWithNumPy
{
    public static string? Find()
    {
        foreach (string candidate in new[] { "python3", "/usr/bin/python3", "python" })
        {
            try
            {
                var (code, _) = Execute(candidate, "-c", "import numpy");
                if (code == 0) return candidate;
            }
            catch (Win32Exception)
            {
                // Not installed under this name.
            }
        }
        return null;
    }

    public static void Run(string python, params string[] arguments)
    {
        var (code, output) = Execute(python, arguments);
        if (code != 0) Assert.Fail($"{python} {string.Join(' ', arguments)} exited with {code}:\n{output}");
    }

    private static (int Code, string Output) Execute(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(60_000))
        {
            process.Kill();
            return (-1, "timed out after 60 s");
        }
        return (process.ExitCode, stdout.Result + stderr);
    }
}
