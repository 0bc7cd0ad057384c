using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Clustering;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>
/// The GPU clustering against the reference (<see cref="IntraClassClustering"/>) on many random batches, both
/// kernel paths, both partition modes: pseudo-labels and centres must be equal, bit for bit, step after step.
/// </summary>
[Category("Gpu")]
public class CudaClusteringTests
{
    private CudaBackend _gpu = null!;

    [OneTimeSetUp]
    public void Open() => _gpu = (CudaBackend)TestBackends.Create("cuda");

    [OneTimeTearDown]
    public void Close() => _gpu?.Dispose();

    /// <summary>A long-tailed batch: class c with probability proportional to 1 / (c + 1); some rows repeated (exact distance ties).</summary>
    private static (float[] Features, int[] Labels) Batch(RandomStream r, int n, int m, int classes)
    {
        var labels = new int[n];
        double total = Enumerable.Range(1, classes).Sum(c => 1.0 / c);
        for (int i = 0; i < n; i++)
        {
            double u = r.NextDouble() * total;
            int c = 0;
            while (c < classes - 1 && (u -= 1.0 / (c + 1)) > 0) c++;
            labels[i] = c;
        }
        var features = TestSupport.RandomFloats(n * m, r.NextUInt(), 2f);
        for (int i = 1; i < n; i += 7) // duplicates of an earlier row of the same class tie in distance
        {
            int j = Array.FindIndex(labels, 0, i, l => l == labels[i]);
            if (j >= 0) Array.Copy(features, j * m, features, i * m, m);
        }
        for (int k = 0; k < features.Length; k++) features[k] = MathF.Max(features[k], 0f); // post-ReLU-like features
        return (features, labels);
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var partition in new[] { PartitionMode.Interval, PartitionMode.Rank })
        {
            // Batches that take the one-block kernel, then ones that take the multi-block path (see LaunchShapes).
            yield return new TestCaseData(partition, 512, new[] { 8, 32, 256, 1, 1000 }, 0.99).SetName($"Fused_{partition}_M512");
            yield return new TestCaseData(partition, 512, new[] { 1300, 4096, 2000 }, 0.99).SetName($"MultiBlock_{partition}_M512");
            yield return new TestCaseData(partition, 100, new[] { 64, 3000, 5, 3000 }, 0.5).SetName($"BothPaths_{partition}_M100");
            yield return new TestCaseData(partition, 4100, new[] { 16, 40 }, 0.99).SetName($"WideFeatures_{partition}_M4100");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void PseudoLabelsAndCentres_EqualTheReference(PartitionMode partition, int m, int[] batches, double decay)
    {
        var plan = SubclassPlan.FromCounts([4, 1, 6, 10, 8, 2, 8]);
        using var module = (DeviceClustering)IClustering.Create(_gpu, new ClusteringConfig(plan, m, partition, decay));
        var reference = new IntraClassClustering(new ClusteringConfig(plan, m, partition, decay));
        var r = new RandomStream(1234);
        int step = 0;
        foreach (int n in batches.Concat(batches))
        {
            bool fused = LaunchShapes.UsesFusedClustering(n, plan.ClassCount, m);
            var (features, labels) = Batch(r, n, m, plan.ClassCount);
            var expected = new int[n];
            reference.Assign(features, labels, expected);
            var f = _gpu.Create(new Shape(n, m));
            var y = _gpu.Create(new Shape(n), DType.Int32);
            var pseudo = _gpu.Create(new Shape(n), DType.Int32);
            _gpu.CopyIn<float>(f, features);
            _gpu.CopyIn<int>(y, labels);
            module.Assign(f, y, pseudo);
            var got = _gpu.ToArray<int>(pseudo);
            int wrong = got.Zip(expected).Count(p => p.First != p.Second);
            Assert.That(wrong, Is.Zero, $"step {step}, batch {n} ({(fused ? "one block" : "multi-block")}): {wrong} pseudo-labels differ");
            var state = module.ReadState();
            int centreBits = state.Centers.Zip(reference.Centers.ToArray()).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
            Assert.That(centreBits, Is.Zero, $"step {step}: {centreBits} centre values differ in some bit");
            Assert.That(state.Seen, Is.EqualTo(reference.Seen.ToArray()));
            Assert.That(state.Step, Is.EqualTo(reference.Step));
            step++;
            f.Storage.Dispose();
            y.Storage.Dispose();
            pseudo.Storage.Dispose();
        }
        TestContext.Out.WriteLine($"{step} batches equal the reference");
    }

    [Test]
    public void WrittenState_IsWhereTheNextStepStarts()
    {
        var plan = SubclassPlan.FromCounts([3, 2]);
        using var module = IClustering.Create(_gpu, new ClusteringConfig(plan, 64, PartitionMode.Interval, 0.9));
        var reference = new IntraClassClustering(new ClusteringConfig(plan, 64, PartitionMode.Interval, 0.9));
        var centres = TestSupport.RandomFloats(128, 5);
        module.WriteState(new ClusteringState(centres, [true, false], 41));
        reference.Restore(centres, [true, false], 41);
        var (features, labels) = Batch(new RandomStream(6), 50, 64, 2);
        var expected = new int[50];
        reference.Assign(features, labels, expected);
        var f = _gpu.Create(new Shape(50, 64));
        var y = _gpu.Create(new Shape(50), DType.Int32);
        var pseudo = _gpu.Create(new Shape(50), DType.Int32);
        _gpu.CopyIn<float>(f, features);
        _gpu.CopyIn<int>(y, labels);
        module.Assign(f, y, pseudo);
        Assert.That(_gpu.ToArray<int>(pseudo), Is.EqualTo(expected));
        var state = module.ReadState();
        Assert.That(state.Centers, Is.EqualTo(reference.Centers.ToArray()));
        Assert.That(state.Step, Is.EqualTo(42L));
    }

    [Test]
    public void EmbeddingApi_WorksOnTheCallersBuffersAndStream()
    {
        // An application's own context handle, memory and stream: the engine only borrows them.
        using var context = CudaContext.Create();
        var stream = context.CreateStream();
        var plan = SubclassPlan.FromCounts([2, 3, 1]);
        using var clustering = new DeviceClustering(context, new ClusteringConfig(plan, 32, PartitionMode.Rank, 0.99), maxBatchSize: 4096);
        var reference = new IntraClassClustering(new ClusteringConfig(plan, 32, PartitionMode.Rank, 0.99));
        var r = new RandomStream(8);
        foreach (int n in new[] { 100, 3000 })
        {
            var (features, labels) = Batch(r, n, 32, 3);
            using var f = context.Allocate<float>(features.Length);
            using var y = context.Allocate<int>(n);
            using var pseudo = context.Allocate<int>(n);
            f.CopyToDevice(features);
            y.CopyToDevice(labels);
            clustering.Assign(f.DevicePointer, y.DevicePointer, pseudo.DevicePointer, n, stream.Handle);
            clustering.ThrowIfFailed(stream.Handle);
            var expected = new int[n];
            reference.Assign(features, labels, expected);
            Assert.That(pseudo.ToArray(), Is.EqualTo(expected), $"batch of {n}");
        }
        Assert.That(clustering.ReadState(stream.Handle).Centers, Is.EqualTo(reference.Centers.ToArray()));

        // A bad label is reported on that stream, as the reference reports it, and changes nothing.
        using var bad = context.Allocate<int>(2);
        bad.CopyToDevice([0, 9]);
        using var two = context.Allocate<float>(64);
        using var out2 = context.Allocate<int>(2);
        clustering.Assign(two.DevicePointer, bad.DevicePointer, out2.DevicePointer, 2, stream.Handle);
        var e = Assert.Throws<ArgumentException>(() => clustering.ThrowIfFailed(stream.Handle))!;
        Assert.That(e.Message, Does.StartWith("Label 9 of sample 1 is outside [0, 3)."));
        Assert.That(clustering.ReadState(stream.Handle).Step, Is.EqualTo(2L));
        stream.Dispose();
    }
}
