using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Randomness;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Cpu;

/// <summary>
/// Gemm.Sgemm against a naive double-precision product. Tolerance: the standard bound for a float dot
/// product of length K, |error| &lt;= (K + 2) * 2^-24 * (|alpha| * sum_p |A_ip * B_pj| + |beta * C_ij|), per
/// element. An indexing or packing mistake is off by O(|A||B|), far outside it.
/// </summary>
[TestFixtureSource(nameof(Kernels))]
public unsafe class GemmTests(string kernelName)
{
    // Every kernel family is tested wherever the CPU can run it (the fixture is named by the kernel).
    public static IEnumerable<string> Kernels() => Enum.GetNames<GemmKernelKind>();

    private readonly GemmKernelKind kernel = Enum.Parse<GemmKernelKind>(kernelName);

    private const float Unit = 1f / (1 << 24);

    [SetUp]
    public void RequireKernel()
    {
        if (!Gemm.IsSupported(kernel)) Assert.Ignore($"This CPU cannot run the {kernel} kernel.");
    }

    // (m, n, k): odd sizes, sizes below and across one micro-tile, thin products that are computed as
    // C^T (n much below the tile width), and sizes across the KC (384), MC (144) and NC (2048) blocks.
    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (1, 7, 17), (7, 1, 33), (7, 17, 33), (33, 7, 17), (17, 33, 100), (100, 257, 7),
        (257, 100, 33), (13, 67, 257), (32, 7, 512), (64, 9, 500), (40, 50, 800), (300, 40, 50),
        (20, 2100, 30), (150, 130, 520),
    ];

    public static IEnumerable<TestCaseData> TransposeCases()
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                yield return new TestCaseData(ta, tb).SetArgDisplayNames(ta ? "At" : "A", tb ? "Bt" : "B");
    }

    [TestCaseSource(nameof(TransposeCases))]
    public void MatchesDoubleReference_ForOddSizes(bool transA, bool transB)
    {
        foreach (var (m, n, k) in Sizes) Check(transA, transB, m, n, k, 1f, 0f, padding: 0);
    }

    [TestCaseSource(nameof(TransposeCases))]
    public void RespectsLeadingDimensionsWiderThanTheMatrix(bool transA, bool transB)
    {
        Check(transA, transB, 37, 45, 29, 1f, 0f, padding: 5);
        Check(transA, transB, 130, 70, 300, 1f, 1f, padding: 3);
    }

    [TestCaseSource(nameof(TransposeCases))]
    public void AppliesAlphaAndBeta(bool transA, bool transB)
    {
        Check(transA, transB, 50, 61, 70, 1f, 1f, padding: 1);
        Check(transA, transB, 50, 61, 300, 2.5f, -0.5f, padding: 0);
        Check(transA, transB, 19, 33, 9, -1f, 0.25f, padding: 2);
    }

    // The two shortcuts of the AVX-512 family against the blocked, packed GEMM they stand in for, bit for bit: tiny
    // products computed straight from A and B (SmallGemm: row updates for B stored [k, n], 16-row strips against at
    // most 16 columns for B stored [n, k]) and B read in place for products of at most 64 rows. Sizes cross their
    // blocks' edges (4 or 16 rows, 8 or 64 columns, 16-lane tails, K slices, partial slivers).
    [TestCase(false, false, 7, 70, 33)]
    [TestCase(true, false, 7, 512, 32)]   // the head's weight gradient
    [TestCase(false, false, 32, 512, 7)]  // the head's input gradient
    [TestCase(true, false, 13, 17, 100)]
    [TestCase(true, false, 128, 128, 32)] // the mapping MLP's weight gradient
    [TestCase(false, true, 32, 7, 512)]   // the head's forward: B stored [n, k], two K slices
    [TestCase(false, true, 5, 9, 33)]     // two column blocks, a partial row strip
    [TestCase(false, true, 40, 16, 800)]  // three K slices, three row strips
    public void SmallProducts_AreBitIdenticalToTheBlockedGemm(bool transA, bool transB, int m, int n, int k)
    {
        if (kernel != GemmKernelKind.Avx512) Assert.Ignore("The small-product path is part of the AVX-512 family.");
        // The shape must take the small path, or the comparison would be of the blocked GEMM with itself.
        var probe = new GemmProblem(transA, transB, m, n, k, 1f, null, transA ? m : k, null, transB ? k : n, 0f, null, n);
        Assert.That(SmallGemm.Handles(probe), Is.EqualTo(SmallGemm.Enabled));
        var (small, blocked) = BothWays(transA, transB, m, n, k, () => SmallGemm.Enabled, v => SmallGemm.Enabled = v);
        Assert.That(small, Is.EqualTo(blocked));
    }

    [TestCase(64, 700, 300, 0)]
    [TestCase(40, 2100, 500, 3)] // two column panels, three K slices, a partial last sliver
    [TestCase(9, 77, 40, 1)]
    public void BReadInPlace_IsBitIdenticalToBPacked(int m, int n, int k, int padding)
    {
        if (kernel != GemmKernelKind.Avx512) Assert.Ignore("Checked with the AVX-512 family.");
        var probe = new GemmProblem(false, false, m, n, k, 1f, null, k, null, n + padding, 0f, null, n);
        Assert.That(GemmDriver<Avx512Kernel>.ReadsBInPlace(probe), Is.EqualTo(GemmDriver<Avx512Kernel>.BInPlaceEnabled));
        var (inPlace, packed) = BothWays(false, false, m, n, k, () => GemmDriver<Avx512Kernel>.BInPlaceEnabled,
            v => GemmDriver<Avx512Kernel>.BInPlaceEnabled = v, padding);
        Assert.That(inPlace, Is.EqualTo(packed));
    }

    [Test]
    public void BReadInPlace_AvoidsStridesThatShareL1Sets()
    {
        // 1024 floats a row: every row's first line in one L1 set.
        Assert.That(GemmDriver<Avx512Kernel>.ReadsBInPlace(new GemmProblem(false, false, 64, 1024, 64, 1f, null, 64, null, 1024, 0f, null, 1024)), Is.False);
        Assert.That(GemmDriver<Avx512Kernel>.ReadsBInPlace(new GemmProblem(false, false, 128, 2000, 64, 1f, null, 64, null, 2000, 0f, null, 2000)), Is.False, "more than 64 rows");
        Assert.That(GemmDriver<Avx512Kernel>.ReadsBInPlace(new GemmProblem(false, true, 64, 2000, 64, 1f, null, 64, null, 64, 0f, null, 2000)), Is.False, "B transposed");
    }

    /// <summary>One product with a switch on and off (C starts random, beta 0.5), the switch restored after.</summary>
    private (float[] On, float[] Off) BothWays(bool transA, bool transB, int m, int n, int k, Func<bool> get, Action<bool> set, int padding = 0)
    {
        var r = new RandomStream((ulong)(m * 31 + n * 7 + k));
        int lda = (transA ? m : k) + padding, ldb = (transB ? k : n) + padding, ldc = n + padding;
        float[] a = Fill((transA ? k : m) * lda, r), b = Fill((transB ? n : k) * ldb, r), c0 = Fill(m * ldc, r);
        float[] on = (float[])c0.Clone(), off = (float[])c0.Clone();
        bool was = get();
        try
        {
            set(true);
            Run(transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, on, ldc);
            set(false);
            Run(transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, off, ldc);
        }
        finally
        {
            set(was);
        }
        return (on, off);
    }

    [Test]
    public void BetaZero_IgnoresNaNInC()
    {
        foreach (var (m, n, k) in new[] { (13, 35, 20), (100, 70, 300) })
        {
            var r = new RandomStream(5);
            float[] a = Fill(m * k, r), b = Fill(k * n, r), c = new float[m * n];
            Array.Fill(c, float.NaN);
            Run(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
            Assert.That(c.All(float.IsFinite), Is.True, $"{m}x{n}x{k}: NaN from C leaked through beta = 0.");
        }
    }

    [Test]
    public void ZeroK_ScalesCByBeta()
    {
        float[] c = [1f, 2f, float.NaN, 4f, 5f, 6f];
        Run(false, false, 2, 3, 0, 1f, [], 1, [], 3, 0f, c, 3);
        Assert.That(c, Is.All.EqualTo(0f), "beta = 0 with k = 0 must clear C, NaN included.");
        float[] d = [1f, 2f, 3f, 4f];
        Run(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0.5f, d, 2);
        Assert.That(d, Is.EqualTo(new[] { 0.5f, 1f, 1.5f, 2f }));
    }

    [Test]
    public void ZeroAlpha_DoesNotReadAOrB()
    {
        float[] a = Enumerable.Repeat(float.NaN, 12).ToArray(), b = Enumerable.Repeat(float.NaN, 12).ToArray();
        float[] c = [1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f];
        Run(false, false, 3, 3, 4, 0f, a, 4, b, 3, 2f, c, 3);
        Assert.That(c, Is.EqualTo(new[] { 2f, 4f, 6f, 8f, 10f, 12f, 14f, 16f, 18f }));
    }

    [Test]
    public void RepeatedCalls_AreBitIdentical()
    {
        const int m = 203, n = 301, k = 517;
        var r = new RandomStream(11);
        float[] a = Fill(m * k, r), b = Fill(k * n, r), c0 = Fill(m * n, r);
        float[] first = (float[])c0.Clone();
        Run(false, true, m, n, k, 1.5f, a, k, b, k, 0.5f, first, n);
        for (int rep = 0; rep < 4; rep++)
        {
            float[] again = (float[])c0.Clone();
            Run(false, true, m, n, k, 1.5f, a, k, b, k, 0.5f, again, n);
            Assert.That(again, Is.EqualTo(first), $"call {rep + 2} differs from the first.");
        }
    }

    [Test]
    [TestCase(190, 250, 300)]
    [TestCase(300, 9, 500)]
    [TestCase(64, 700, 300)]  // A packed once and shared by every part
    [TestCase(700, 64, 300)]  // B packed once and shared
    [TestCase(600, 600, 600)] // A shared and larger than an L2: one part per thread
    [TestCase(40, 160, 4400)] // too few tiles either way for a part each (8 x 32 tiles): a grid of blocks
    public void Result_DoesNotDependOnThreadCount(int m, int n, int k)
    {
        var r = new RandomStream(12);
        float[] a = Fill(m * k, r), b = Fill(k * n, r);
        float[]? reference = null;
        foreach (int threads in new[] { 1, 2, 3, 4, 7 })
        {
            float[] c = new float[m * n];
            fixed (float* ap = a, bp = b, cp = c)
                Gemm.Sgemm(kernel, threads, true, false, m, n, k, 1f, ap, m, bp, n, 0f, cp, n);
            if (reference is null) reference = c;
            else Assert.That(c, Is.EqualTo(reference), $"{threads} threads differ from 1 thread.");
        }
    }

    [Test]
    public void ConcurrentCallers_GetTheSameResultAsOneCaller()
    {
        const int m = 120, n = 140, k = 160;
        var r = new RandomStream(13);
        float[] a = Fill(m * k, r), b = Fill(k * n, r);
        float[] expected = new float[m * n];
        Run(false, false, m, n, k, 1f, a, k, b, n, 0f, expected, n);
        var results = new float[4][];
        Parallel.For(0, results.Length, t =>
        {
            for (int rep = 0; rep < 5; rep++)
            {
                float[] c = new float[m * n];
                Run(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
                results[t] = c;
            }
        });
        foreach (var c in results) Assert.That(c, Is.EqualTo(expected));
    }

    [Test]
    public void BadArguments_ThrowNamingTheArgument()
    {
        float[] buffer = new float[64];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Run(false, false, 4, 4, 4, 1f, buffer, 4, buffer, 4, 0f, buffer, 3));
        Assert.That(e!.ParamName, Is.EqualTo("ldc"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Run(true, false, 4, 4, 2, 1f, buffer, 2, buffer, 4, 0f, buffer, 4));
        Assert.That(e!.ParamName, Is.EqualTo("lda"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Run(false, true, 4, 4, 5, 1f, buffer, 5, buffer, 4, 0f, buffer, 4));
        Assert.That(e!.ParamName, Is.EqualTo("ldb"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Run(false, false, -1, 4, 4, 1f, buffer, 4, buffer, 4, 0f, buffer, 4));
        Assert.That(e!.ParamName, Is.EqualTo("m"));
    }

    /// <summary>Runs one product with random operands stored with `padding` extra columns and compares every element.</summary>
    private void Check(bool transA, bool transB, int m, int n, int k, float alpha, float beta, int padding)
    {
        var r = new RandomStream((ulong)(m * 1000003 + n * 1009 + k));
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        int lda = aCols + padding, ldb = bCols + padding, ldc = n + padding;
        float[] a = Fill(aRows * lda, r), b = Fill(bRows * ldb, r), c = Fill(m * ldc, r);
        float[] before = (float[])c.Clone();
        Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

        double worst = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double av = transA ? a[p * lda + i] : a[i * lda + p];
                    double bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += av * bv;
                    magnitude += Math.Abs(av * bv);
                }
                double old = before[i * ldc + j];
                double expected = alpha * sum + (beta == 0f ? 0 : beta * old);
                double tolerance = (k + 2) * Unit * (Math.Abs(alpha) * magnitude + Math.Abs(beta * old)) + 1e-30;
                double error = Math.Abs(c[i * ldc + j] - expected);
                if (!(error <= tolerance))
                    Assert.Fail($"{kernel} {(transA ? 'T' : 'N')}{(transB ? 'T' : 'N')} {m}x{n}x{k} alpha {alpha} beta {beta} " +
                                $"ld+{padding}: C[{i},{j}] = {c[i * ldc + j]}, expected {expected} (tolerance {tolerance:G3}).");
                worst = Math.Max(worst, error / tolerance);
            }
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                Assert.That(c[i * ldc + j], Is.EqualTo(before[i * ldc + j]), $"C[{i},{j}] lies outside the matrix and was written.");
        Assert.That(worst, Is.LessThanOrEqualTo(1));
    }

    private void Run(bool transA, bool transB, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb,
        float beta, float[] c, int ldc)
    {
        fixed (float* ap = a, bp = b, cp = c)
            Gemm.Sgemm(kernel, CpuParallel.Threads, transA, transB, m, n, k, alpha, ap, lda, bp, ldb, beta, cp, ldc);
    }

    private static float[] Fill(int count, RandomStream r)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = 2f * r.NextFloat() - 1f;
        return x;
    }
}
