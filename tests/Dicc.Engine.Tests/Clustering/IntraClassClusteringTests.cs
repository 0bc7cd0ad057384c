using Dicc.Engine.Clustering;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Clustering;

// Hand-computed cases: features are 2-D points embedded in the first two of M coordinates (the rest 0),
// so every mean and distance below is exact. M = 2 and 45 take the scalar tail of the 32-lane distance,
// M = 32 and 64 its vector path; all must give the same labels.
public class IntraClassClusteringTests
{
    private static float[] Embed(int m, params (float X, float Y)[] points)
    {
        var f = new float[points.Length * m];
        for (int i = 0; i < points.Length; i++)
        {
            f[i * m] = points[i].X;
            f[i * m + 1] = points[i].Y;
        }
        return f;
    }

    private static int[] Run(IntraClassClustering clustering, float[] features, int[] labels)
    {
        var pseudo = new int[labels.Length];
        clustering.Assign(features, labels, pseudo);
        return pseudo;
    }

    // Plan [5, 1, 3, 2, 3]: offsets 0, 5, 6, 9, 11; K = 14. Class 3 is absent from the batch.
    // Class 0: x = 0, 1, 3, 8 -> mean 3, d = 3, 2, 0, 5. Class 1: (10,10), (12,10) -> Ns = 1.
    // Class 2: one sample (d = 0). Class 4: two identical samples (all d = 0, delta = 0).
    private static readonly int[] MixedLabels = [0, 1, 0, 4, 2, 0, 1, 4, 0];
    private static float[] MixedFeatures(int m) => Embed(m,
        (0, 0), (10, 10), (1, 0), (7, 7), (5, -5), (3, 0), (12, 10), (7, 7), (8, 0));

    [TestCase(2)]
    [TestCase(32)]
    [TestCase(45)]
    public void Interval_SeveralClasses_MatchHandComputedLabels(int m)
    {
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([5, 1, 3, 2, 3]), m, PartitionMode.Interval));
        var pseudo = Run(clustering, MixedFeatures(m), MixedLabels);
        // Class 0: delta = 5 / 5 = 1, n = 3, 2, 0, min(5, 4) = 4. Class 1: 5. Class 2: 6. Class 4: delta 0 -> 11.
        Assert.That(pseudo, Is.EqualTo(new[] { 3, 5, 2, 11, 6, 0, 5, 11, 4 }));
        Assert.That(clustering.LastDistances.ToArray(), Is.EqualTo(new double[] { 3, 1, 2, 0, 0, 0, 1, 0, 5 }));
        Assert.That(clustering.Seen.ToArray(), Is.EqualTo(new[] { true, true, true, false, true }));
        Assert.That(clustering.Centers.Slice(0, 2).ToArray(), Is.EqualTo(new float[] { 3, 0 }));
        Assert.That(clustering.Centers.Slice(1 * m, 2).ToArray(), Is.EqualTo(new float[] { 11, 10 }));
        Assert.That(clustering.Centers.Slice(3 * m, m).ToArray(), Is.All.EqualTo(0f), "absent class keeps its (empty) centre");
        Assert.That(clustering.Step, Is.EqualTo(1));
    }

    [TestCase(2)]
    [TestCase(32)]
    [TestCase(45)]
    public void Rank_SeveralClasses_MatchHandComputedLabels(int m)
    {
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([5, 1, 3, 2, 3]), m, PartitionMode.Rank));
        var pseudo = Run(clustering, MixedFeatures(m), MixedLabels);
        // Class 0 by distance: pos 5 (0), pos 2 (2), pos 0 (3), pos 8 (5) -> ranks 2, 1, 0, 3 for pos 0, 2, 5, 8;
        // n = floor(r * 5 / 4) = 2, 1, 0, 3. Class 4 (Ns = 3): a tie, broken by position: ranks 0, 1 -> n = 0, floor(3/2) = 1.
        Assert.That(pseudo, Is.EqualTo(new[] { 2, 5, 1, 11, 6, 0, 5, 12, 3 }));
    }

    [TestCase(2)]
    [TestCase(64)]
    public void Interval_DistanceOnAMultipleOfDelta_StartsTheNextSubclass_AndTheMaximumTakesTheLast(int m)
    {
        // x = 0, 2, 4, 6, 8 around the mean 4: d = 4, 2, 0, 2, 4 in both classes (class 1 shifted by 100).
        var features = Embed(m, (0, 0), (2, 0), (4, 0), (6, 0), (8, 0), (100, 0), (102, 0), (104, 0), (106, 0), (108, 0));
        int[] labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([4, 2]), m, PartitionMode.Interval));
        var pseudo = Run(clustering, features, labels);
        // Ns = 4: delta = 1; d = 4 -> min(4, 3) = 3, d = 2 -> 2 (exactly on the boundary: the upper interval).
        // Ns = 2: delta = 2; d = 4 -> min(2, 1) = 1, d = 2 -> floor(1) = 1, d = 0 -> 0. Offset of class 1: 4.
        Assert.That(pseudo, Is.EqualTo(new[] { 3, 2, 0, 2, 3, 5, 5, 4, 5, 5 }));
    }

    [Test]
    public void EqualNonZeroDistances_FallInTheLastInterval_ButSplitByPositionInRankMode()
    {
        // Four points at distance 1 from their mean (0, 0), interleaved with a class-1 pair.
        var features = Embed(2, (1, 0), (9, 9), (0, 1), (-1, 0), (9, 9), (0, -1));
        int[] labels = [0, 1, 0, 0, 1, 0];
        var plan = SubclassPlan.FromCounts([2, 5]);
        var interval = Run(new IntraClassClustering(new ClusteringConfig(plan, 2, PartitionMode.Interval)), features, labels);
        var rank = Run(new IntraClassClustering(new ClusteringConfig(plan, 2, PartitionMode.Rank)), features, labels);
        // Interval: delta = 1 / 2, d / delta = 2 -> min(2, 1) = 1 for all; the class-1 pair has delta = 0 -> offset 2.
        Assert.That(interval, Is.EqualTo(new[] { 1, 2, 1, 1, 2, 1 }));
        // Rank: the tie is broken by batch position: ranks 0..3 -> floor(r * 2 / 4) = 0, 0, 1, 1.
        // Class 1 (Ns = 5 > 2 samples): ranks 0, 1 -> floor(0) = 0, floor(5 / 2) = 2 -> 2, 4.
        Assert.That(rank, Is.EqualTo(new[] { 0, 2, 0, 1, 4, 1 }));
    }

    [Test]
    public void SubclassNumberOne_PutsEveryoneInTheClassOffset()
    {
        var features = Embed(3, (0, 0), (5, 1), (-3, 2), (4, 4));
        int[] labels = [1, 1, 1, 0];
        foreach (var mode in new[] { PartitionMode.Interval, PartitionMode.Rank })
        {
            var pseudo = Run(new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([2, 1]), 3, mode)), features, labels);
            Assert.That(pseudo, Is.EqualTo(new[] { 2, 2, 2, 0 }), mode.ToString());
        }
    }

    [Test]
    public void Ema_OverThreeBatches_MatchesHandComputation_WithExactDecayOneHalf()
    {
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([2, 1]), 2, PartitionMode.Interval, 0.5));
        // Batch 1: y0 = (3, 6) and y1 = (1, 1) set the centres.
        Run(clustering, Embed(2, (2, 4), (1, 1), (4, 8)), [0, 1, 0]);
        Assert.That(clustering.Centers.ToArray(), Is.EqualTo(new float[] { 3, 6, 1, 1 }));
        // Batch 2: only class 0, y0 = (7, 2): mu0 = 0.5 (3, 6) + 0.5 (7, 2) = (5, 4); class 1 keeps (1, 1).
        // Distances use the updated centre: (6,2) - (5,4) -> sqrt 5, (8,2) - (5,4) -> sqrt 13.
        Run(clustering, Embed(2, (6, 2), (8, 2)), [0, 0]);
        Assert.That(clustering.Centers.ToArray(), Is.EqualTo(new float[] { 5, 4, 1, 1 }));
        Assert.That(clustering.LastDistances.ToArray(), Is.EqualTo(new[] { Math.Sqrt(5), Math.Sqrt(13) }));
        // Batch 3: y0 = (1, 0) -> mu0 = (3, 2); y1 = (3, 3) -> mu1 = (2, 2).
        Run(clustering, Embed(2, (1, 0), (3, 3), (1, 0)), [0, 1, 0]);
        Assert.That(clustering.Centers.ToArray(), Is.EqualTo(new float[] { 3, 2, 2, 2 }));
        Assert.That(clustering.LastDistances.ToArray(), Is.EqualTo(new[] { Math.Sqrt(8), Math.Sqrt(2), Math.Sqrt(8) }));
        Assert.That(clustering.Step, Is.EqualTo(3));
    }

    [Test]
    public void Ema_WithTheDefaultDecay_KeepsNinetyNinePercentOfTheOldCentre()
    {
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([2, 1]), 2));
        Assert.That(clustering.Config.EmaDecay, Is.EqualTo(0.99));
        Run(clustering, Embed(2, (2, 4), (1, 1), (4, 8)), [0, 1, 0]);
        Run(clustering, Embed(2, (6, 2), (8, 2)), [0, 0]);
        Run(clustering, Embed(2, (1, 0), (3, 3), (1, 0)), [0, 1, 0]);
        // mu0: (3, 6) -> (0.99*3 + 0.01*7, 0.99*6 + 0.01*2) = (3.04, 5.96) -> (0.99*3.04 + 0.01*1, 0.99*5.96) = (3.0196, 5.9004).
        // mu1: (1, 1) -> unchanged -> 0.99*1 + 0.01*3 = 1.02.
        float[] expected = [3.0196f, 5.9004f, 1.02f, 1.02f];
        Assert.That(clustering.Centers.ToArray(), Is.EqualTo(expected).Within(1e-6f));
    }

    [Test]
    public void GivenCenters_CountAsSeen_AndAreBlendedByTheEmaRule()
    {
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([2, 2]), 2, PartitionMode.Interval, 0.5));
        clustering.SetCenters([0, 0, 10, 10]);
        Assert.That(clustering.Seen.ToArray(), Is.All.True);
        Run(clustering, Embed(2, (2, 2), (4, 4)), [0, 0]);
        // y0 = (3, 3): mu0 = 0.5 (0, 0) + 0.5 (3, 3); class 1 is absent and keeps its given centre.
        Assert.That(clustering.Centers.ToArray(), Is.EqualTo(new float[] { 1.5f, 1.5f, 10, 10 }));
    }

    [Test]
    public void RestoredState_ContinuesExactlyLikeTheOriginal()
    {
        var (features, labels) = RandomBatch(new RandomStream(5), 200, 40, 4);
        var plan = SubclassPlan.FromCounts([3, 4, 2, 6]);
        var original = new IntraClassClustering(new ClusteringConfig(plan, 40, PartitionMode.Rank));
        Run(original, features, labels);
        var resumed = new IntraClassClustering(new ClusteringConfig(plan, 40, PartitionMode.Rank));
        resumed.Restore(original.Centers, original.Seen, original.Step);
        var (next, nextLabels) = RandomBatch(new RandomStream(6), 150, 40, 4);
        Assert.That(Run(resumed, next, nextLabels), Is.EqualTo(Run(original, next, nextLabels)));
        Assert.That(resumed.Centers.ToArray(), Is.EqualTo(original.Centers.ToArray()));
        Assert.That(resumed.Step, Is.EqualTo(2));
    }

    [TestCase(PartitionMode.Interval)]
    [TestCase(PartitionMode.Rank)]
    public void RandomBatch_LabelsStayInsideTheirClassRange_AndRankModeMakesEqualSizes(PartitionMode mode)
    {
        var (features, labels) = RandomBatch(new RandomStream(11), 4096, 512, 7);
        var plan = SubclassPlan.FromCounts([8, 1, 20, 100, 40, 4, 80]);
        var clustering = new IntraClassClustering(new ClusteringConfig(plan, 512, mode));
        var pseudo = Run(clustering, features, labels);
        Assert.That(Run(new IntraClassClustering(new ClusteringConfig(plan, 512, mode)), features, labels), Is.EqualTo(pseudo), "deterministic");
        var perSubclass = new int[plan.TotalSubclasses];
        for (int i = 0; i < labels.Length; i++)
        {
            Assert.That(plan.ClassOf(pseudo[i]), Is.EqualTo(labels[i]), $"sample {i}");
            perSubclass[pseudo[i]]++;
        }
        if (mode != PartitionMode.Rank) return;
        var counts = clustering.LastClassCounts.ToArray();
        for (int c = 0; c < plan.ClassCount; c++)
        {
            // floor(r * Ns / count) gives each subclass floor or ceil of count / Ns samples.
            double share = (double)counts[c] / plan.Count(c);
            for (int k = 0; k < plan.Count(c); k++)
                Assert.That(perSubclass[plan.Offset(c) + k], Is.InRange(Math.Floor(share), Math.Ceiling(share)), $"class {c}, subclass {k}");
        }
    }

    [Test]
    public void Interval_OnHighDimensionalGaussianFeatures_FillsOnlyTheOuterSubclasses()
    {
        // Distances of isotropic 512-d Gaussian samples concentrate near sqrt(512) = 22.6 (about +-0.7), far
        // from 0, so the inner intervals [0, k * max / Ns) are empty; rank mode still makes Ns equal groups.
        var random = new RandomStream(1);
        const int n = 600, m = 512;
        var features = new float[n * m];
        for (int k = 0; k < features.Length; k++) features[k] = (float)random.NextNormal();
        var labels = new int[n];
        var plan = SubclassPlan.FromCounts([8]);
        var interval = Run(new IntraClassClustering(new ClusteringConfig(plan, m, PartitionMode.Interval)), features, labels);
        var rank = Run(new IntraClassClustering(new ClusteringConfig(plan, m, PartitionMode.Rank)), features, labels);
        Assert.That(interval.Min(), Is.GreaterThanOrEqualTo(5), "subclasses 0..4 empty");
        Assert.That(interval.Count(p => p == 7), Is.GreaterThan(n * 3 / 4));
        Assert.That(Enumerable.Range(0, 8).Select(k => rank.Count(p => p == k)), Is.All.EqualTo(n / 8));
    }

    [TestCase(PartitionMode.Interval)]
    [TestCase(PartitionMode.Rank)]
    public void Assign_AllocatesNothing_OnceSized(PartitionMode mode)
    {
        var (features, labels) = RandomBatch(new RandomStream(3), 256, 512, 7);
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([8, 1, 20, 100, 40, 4, 80]), 512, mode), 256);
        var pseudo = new int[labels.Length];
        clustering.Assign(features, labels, pseudo); // JIT warm-up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int k = 0; k < 20; k++) clustering.Assign(features, labels, pseudo);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [Test]
    public void BadLabelOrNonFiniteFeature_IsReportedWithItsSample_AndLeavesTheStateUntouched()
    {
        var clustering = new IntraClassClustering(new ClusteringConfig(SubclassPlan.FromCounts([2, 2]), 2));
        var pseudo = new int[3];
        var e = Assert.Throws<ArgumentException>(() => clustering.Assign(Embed(2, (0, 0), (1, 1), (2, 2)), [0, 1, 2], pseudo));
        Assert.That(e!.Message, Does.Contain("Label 2 of sample 2"));
        var features = Embed(2, (0, 0), (1, float.NaN), (2, 2));
        e = Assert.Throws<ArgumentException>(() => clustering.Assign(features, [0, 1, 1], pseudo));
        Assert.That(e!.Message, Does.Contain("Feature 1 of sample 1"));
        Assert.That(clustering.Seen.ToArray(), Is.All.False);
        Assert.That(clustering.Step, Is.Zero);
        Assert.Throws<ShapeMismatchException>(() => clustering.Assign(new float[5], [0, 1, 1], pseudo));
        Assert.Throws<ShapeMismatchException>(() => clustering.Assign(new float[6], [0, 1, 1], new int[2]));
    }

    [TestCase(-0.01)]
    [TestCase(1.5)]
    [TestCase(double.NaN)]
    public void Config_RefusesAnEmaDecayOutsideZeroToOne_NamingTheParameter(double decay)
    {
        var e = Assert.Throws<InputException>(() => _ = new ClusteringConfig(SubclassPlan.FromCounts([1]), 2, PartitionMode.Interval, decay))!;
        Assert.That(e.Parameter, Is.EqualTo("emaDecay"));
        Assert.That(e.Message, Does.StartWith("emaDecay must be in [0, 1]"));
        Assert.That(new ClusteringConfig(SubclassPlan.FromCounts([1]), 2, PartitionMode.Interval, 1.0).EmaDecay, Is.EqualTo(1.0), "1 is allowed");
        Assert.That(new ClusteringConfig(SubclassPlan.FromCounts([1]), 2).EmaDecay, Is.EqualTo(ClusteringConfig.DefaultEmaDecay));
    }

    [TestCase(1)]
    [TestCase(31)]
    [TestCase(32)]
    [TestCase(100)]
    [TestCase(512)]
    public void Distance_FollowsTheDocumented32LaneOrder_BitForBit(int m)
    {
        var random = new RandomStream(21, (ulong)m);
        var f = new float[m];
        var mu = new double[m];
        for (int j = 0; j < m; j++)
        {
            f[j] = (float)(random.NextNormal() * 3);
            mu[j] = (float)random.NextNormal();
        }
        double fast = ClusterMath.Distance(f, mu, new double[ClusterMath.Lanes]);

        // The recipe a CUDA warp follows: lane k sums fma(e, e, s) over j = k, k + 32, ...; then s[k] += s[k + o]
        // for o = 16, 8, 4, 2, 1; then sqrt.
        var lanes = new double[32];
        for (int j = 0; j < m; j++)
        {
            double e = (double)f[j] - mu[j];
            lanes[j % 32] = Math.FusedMultiplyAdd(e, e, lanes[j % 32]);
        }
        for (int o = 16; o > 0; o /= 2)
            for (int k = 0; k < o; k++) lanes[k] += lanes[k + o];
        Assert.That(fast, Is.EqualTo(Math.Sqrt(lanes[0])), "bit-identical to the warp recipe");

        double naive = 0;
        for (int j = 0; j < m; j++) naive += ((double)f[j] - mu[j]) * ((double)f[j] - mu[j]);
        Assert.That(fast, Is.EqualTo(Math.Sqrt(naive)).Within(1e-11).Percent);
    }

    [TestCase(3, false)]
    [TestCase(45, false)]
    [TestCase(45, true)]
    [TestCase(512, true)]
    public void CentreUpdate_IsTheDocumentedScalarFormula_BitForBit(int m, bool seen)
    {
        var random = new RandomStream(8, (ulong)m);
        var sum = new double[m];
        var centre = new float[m];
        for (int j = 0; j < m; j++)
        {
            sum[j] = random.NextNormal() * 100;
            centre[j] = (float)random.NextNormal();
        }
        const int count = 37;
        const double keep = 0.99, blend = 1.0 - keep;
        var expected = new float[m];
        for (int j = 0; j < m; j++)
        {
            double y = sum[j] / count;
            expected[j] = seen ? (float)Math.FusedMultiplyAdd(keep, centre[j], blend * y) : (float)y;
        }
        var wide = new double[m];
        ClusterMath.UpdateCentre(sum, count, seen, keep, blend, centre, wide);
        Assert.That(centre, Is.EqualTo(expected));
        Assert.That(wide, Is.EqualTo(expected.Select(v => (double)v).ToArray()));
    }

    [Test]
    public void AllFinite_FindsNaNAndInfinityInTheVectorBodyAndTheTail()
    {
        var values = new double[11];
        Assert.That(ClusterMath.AllFinite(values), Is.True);
        foreach (int at in new[] { 0, 5, 10 })
            foreach (double bad in new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity })
            {
                values[at] = bad;
                Assert.That(ClusterMath.AllFinite(values), Is.False, $"{bad} at {at}");
                values[at] = -3.5;
            }
    }

    /// <summary>Gaussian features around a random centre per class, labels drawn long-tailed.</summary>
    internal static (float[] Features, int[] Labels) RandomBatch(RandomStream random, int n, int m, int classes)
    {
        var centres = new double[classes * m];
        for (int k = 0; k < centres.Length; k++) centres[k] = random.NextNormal() * 2;
        var labels = new int[n];
        var features = new float[n * m];
        for (int i = 0; i < n; i++)
        {
            // Class c with weight 2^-c: long-tailed, every class likely present in a large batch.
            int c = 0;
            while (c < classes - 1 && random.NextFloat() < 0.5f) c++;
            labels[i] = c;
            for (int j = 0; j < m; j++) features[i * m + j] = (float)(centres[c * m + j] + random.NextNormal() * (1 + 0.3 * c));
        }
        return (features, labels);
    }
}
