using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Cpu;

/// <summary>
/// The CPU backend's fast path (the default) against its reference path, op by op. Where the fast path does
/// the same arithmetic in another order of memory traffic only (implicit-GEMM convolution forward and
/// filter gradient), results must be bit-identical. Where it sums in another order (the input gradient as a
/// convolution with flipped weights), each element must lie within the float rounding bound of both sums:
/// |fast - reference| &lt;= (L + 4) * 2^-24 * sum |terms|, where L is the number of terms the longer sum adds
/// and sum |terms| is the same computation on absolute values. An indexing mistake is off by O(sum |terms|).
/// Winograd F(2x2, 3x3) (the 3x3 layers' forward and input gradient) computes another function of the same
/// products: its transforms add up to 64 magnitudes where the direct sum has 9 (all weights and inputs 1: 64 against
/// 9), so its bound is <see cref="WinogradFactor"/> times the direct one.
/// </summary>
public class CpuFastPathTests
{
    private const double Unit = 1.0 / (1 << 24);

    /// <summary>How much larger Winograd's rounding bound is than the direct sum's: 64 / 9 rounded up.</summary>
    private const double WinogradFactor = 8;

    /// <summary>The same for Winograd's filter gradient (G^T dU G over A dY A^T and B^T d B): at most 36 magnitudes per tile where the direct sum has 4.</summary>
    private const double WinogradFilterFactor = 9;

    private CpuBackend _fast = null!, _reference = null!;

    [SetUp]
    public void SetUp()
    {
        _fast = new CpuBackend();
        _reference = new CpuBackend(CpuPath.Reference);
    }

    [TearDown]
    public void TearDown()
    {
        _fast.Dispose();
        _reference.Dispose();
    }

    // (N, C, H, W, K, R, S, stride, pad): VGG's 3x3 same convolutions at every resolution it has (44 down to 1,
    // the small maps chunked several images to a GEMM), the single-channel first layer, and geometries the
    // implicit packer must also get right: strided, unpadded, pointwise, non-square kernels and inputs.
    public static IEnumerable<TestCaseData> Geometries()
    {
        (int N, int C, int H, int W, int K, int R, int S, int Stride, int Pad)[] cases =
        [
            (2, 1, 44, 44, 8, 3, 3, 1, 1),   // one input channel: the direct first-layer kernel
            (3, 1, 7, 20, 5, 3, 3, 1, 1),    // ... with a partial last vector of a row
            (2, 1, 3, 5, 2, 3, 3, 1, 1),     // ... with rows shorter than a vector
            (2, 16, 44, 44, 16, 3, 3, 1, 1),
            (3, 8, 22, 22, 24, 3, 3, 1, 1),
            (7, 24, 22, 22, 8, 3, 3, 1, 1),   // channels-last filter gradient, chunks of 5 and 2, slivers across kernel positions
            (10, 40, 16, 16, 12, 3, 3, 1, 1), // channels-last filter gradient at its 256-column threshold
            (5, 16, 11, 11, 16, 3, 3, 1, 1),
            (9, 24, 5, 5, 40, 3, 3, 1, 1),
            (33, 16, 2, 2, 16, 3, 3, 1, 1),
            (7, 8, 1, 1, 8, 3, 3, 1, 1),
            (3, 5, 9, 8, 7, 3, 3, 2, 0),
            (3, 5, 9, 8, 7, 3, 3, 2, 1),
            (2, 6, 7, 9, 5, 1, 1, 1, 0),
            (2, 3, 10, 7, 4, 5, 3, 1, 2),
            (4, 3, 6, 6, 5, 3, 3, 1, 0),
        ];
        foreach (var c in cases)
            yield return new TestCaseData(c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.Stride, c.Pad)
                .SetArgDisplayNames($"n{c.N} c{c.C} {c.H}x{c.W} k{c.K} {c.R}x{c.S} s{c.Stride} p{c.Pad}");
    }

    [TestCaseSource(nameof(Geometries))]
    public void ConvolutionForward_IsBitIdenticalToTheReference(int n, int c, int h, int w, int k, int r, int s, int stride, int pad)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, r, s, stride, stride, pad, pad);
        var random = new RandomStream(1);
        float[] x = Normal(g.InputShape.ElementCount, random), wt = Normal(g.WeightShape.ElementCount, random), b = Normal(k, random);
        // The implicit-GEMM direct convolution (every layer when Winograd is off; WinogradConvolution_* test the rest).
        // (and the small-map convolution: SmallMapConvolution_* test it).
        bool winograd = WinogradConvolution.Enabled, smallMaps = SmallMapConvolution.Enabled;
        WinogradConvolution.Enabled = false;
        SmallMapConvolution.Enabled = false;
        try
        {
            Assert.That(Forward(_fast, g, x, wt, b), Is.EqualTo(Forward(_reference, g, x, wt, b)));
            Assert.That(Forward(_fast, g, x, wt, null), Is.EqualTo(Forward(_reference, g, x, wt, null)));
        }
        finally
        {
            WinogradConvolution.Enabled = winograd;
            SmallMapConvolution.Enabled = smallMaps;
        }
    }

    // Geometries that Winograd F(2x2, 3x3) runs: tiles past the map's edge (odd sides), groups of 32 tiles across
    // tile rows and images with a partial last group, tile rows longer and shorter than a 16-tile run, the smallest
    // map it takes (8 x 8), non-square maps, and channel counts that are not multiples of 8 on the input side.
    public static IEnumerable<TestCaseData> WinogradGeometries()
    {
        (int N, int C, int H, int W, int K)[] cases =
        [
            (2, 16, 44, 44, 16),
            (3, 24, 22, 22, 8),
            (5, 16, 11, 11, 16),
            (1, 16, 8, 8, 8),
            (3, 17, 9, 13, 24),
            (2, 32, 15, 40, 16),
            (3, 64, 11, 11, 32),
            (1, 32, 8, 8, 16),
            (9, 32, 22, 22, 16), // 1089 tiles: the filter gradient in two slices, the second partial
            (65, 128, 16, 16, 160), // a dU over 1 MB in five slices (4160 tiles)
        ];
        return MapCases(cases);
    }

    [TestCaseSource(nameof(WinogradGeometries))]
    public void WinogradConvolution_IsWithinItsRoundingBoundOfTheReference(int n, int c, int h, int w, int k)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, 3, 3, 1, 1, 1, 1);
        Assert.That(WinogradConvolution.Applies(g), Is.EqualTo(WinogradConvolution.Enabled && System.Runtime.Intrinsics.X86.Avx512F.IsSupported));
        var random = new RandomStream(5);
        float[] x = Normal(g.InputShape.ElementCount, random), wt = Normal(g.WeightShape.ElementCount, random);
        float[] b = Normal(k, random), dy = Normal(g.OutputShape.ElementCount, random);
        float[] xAbs = x.Select(MathF.Abs).ToArray(), wAbs = wt.Select(MathF.Abs).ToArray(), dyAbs = dy.Select(MathF.Abs).ToArray();
        var bound = Forward(_reference, g, xAbs, wAbs, b.Select(MathF.Abs).ToArray());
        AssertWithinBound(Forward(_fast, g, x, wt, b), Forward(_reference, g, x, wt, b), bound, c * 9 + 1, "y", WinogradFactor);
        AssertWithinBound(Forward(_fast, g, x, wt, null), Forward(_reference, g, x, wt, null), Forward(_reference, g, xAbs, wAbs, null), c * 9, "y", WinogradFactor);
        AssertWithinBound(DataGradient(_fast, g, dy, wt), DataGradient(_reference, g, dy, wt), DataGradient(_reference, g, dyAbs, wAbs),
            k * 9 + k + 9, "dx", WinogradFactor);
        if (!WinogradConvolution.AppliesToFilterGradient(g)) return;
        var (dw, _) = FilterGradient(_fast, g, x, dy);
        var (dwReference, _) = FilterGradient(_reference, g, x, dy);
        var (dwAbs, _) = FilterGradient(_reference, g, xAbs, dyAbs);
        AssertWithinBound(dw, dwReference, dwAbs, n * g.P * g.Q, "dw", WinogradFilterFactor);
    }

    [TestCase(9, 32, 22, 22, 16)] // the sliced filter gradient
    [TestCase(65, 128, 16, 16, 160)] // ... with a dU over 1 MB
    [TestCase(2, 32, 15, 40, 16)] // the chunked one
    public void WinogradConvolution_DoesNotDependOnTheThreadCount(int n, int c, int h, int w, int k)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, 3, 3, 1, 1, 1, 1);
        AssertSameOnOneThread(g, seed: 6);
    }

    [Test]
    public void WinogradConvolution_RunsVggsLayersFrom44To11()
    {
        if (!WinogradConvolution.Enabled || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Ignore("Winograd runs only with AVX-512 and DICC_CPU_WINOGRAD unset.");
        ConvolutionGeometry Layer(int c, int side, int k) => new(32, c, side, side, k, 3, 3, 1, 1, 1, 1);
        Assert.Multiple(() =>
        {
            Assert.That(WinogradConvolution.Applies(Layer(64, 44, 64)), Is.True, "conv1_2");
            Assert.That(WinogradConvolution.Applies(Layer(128, 22, 128)), Is.True, "conv2_2");
            Assert.That(WinogradConvolution.Applies(Layer(256, 11, 256)), Is.True, "conv3_2");
            Assert.That(WinogradConvolution.Applies(Layer(1, 44, 64)), Is.False, "conv1_1: one input channel");
            Assert.That(WinogradConvolution.Applies(Layer(512, 5, 512)), Is.False, "conv4_2: 5 x 5 tiles cover 6 x 6");
            Assert.That(WinogradConvolution.Applies(new ConvolutionGeometry(32, 64, 44, 44, 64, 3, 3, 2, 2, 1, 1)), Is.False, "stride 2");
        });
    }

    // Geometries that the small-map convolution runs: VGG's 5 x 5 and 2 x 2 maps, a partial 32-image sliver (26 of 32)
    // and two slivers, two channel slices (300 channels), non-square and 1 x 1 maps, the largest map it takes (8 x 8
    // goes to Winograd, so 7 x 9), and input channels that are not a multiple of 8 (then dx runs the direct path).
    public static IEnumerable<TestCaseData> SmallMapGeometries()
    {
        (int N, int C, int H, int W, int K)[] cases =
        [
            (32, 16, 5, 5, 24),
            (26, 32, 5, 5, 16),
            (64, 24, 2, 2, 16),
            (48, 300, 3, 4, 16),
            (32, 32, 1, 1, 16),
            (32, 16, 7, 9, 8),
            (25, 17, 5, 5, 16),
            (32, 160, 5, 5, 72), // the filter gradient's blocks of 64 outputs and 128 inputs, each with a partial last one
            (48, 64, 2, 3, 16),
            (3, 64, 5, 5, 16),   // the filter gradient only: three images
            (16, 32, 2, 2, 16),  // half a sliver at 2 x 2
        ];
        return MapCases(cases);
    }

    [TestCaseSource(nameof(SmallMapGeometries))]
    public void SmallMapConvolution_IsWithinRoundingOfTheReference(int n, int c, int h, int w, int k)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, 3, 3, 1, 1, 1, 1);
        bool runs = SmallMapConvolution.Enabled && System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
        Assert.That(SmallMapConvolution.Applies(g), Is.EqualTo(runs && n > 3));
        var random = new RandomStream(7);
        float[] x = Normal(g.InputShape.ElementCount, random), wt = Normal(g.WeightShape.ElementCount, random);
        float[] b = Normal(k, random), dy = Normal(g.OutputShape.ElementCount, random);
        float[] xAbs = x.Select(MathF.Abs).ToArray(), wAbs = wt.Select(MathF.Abs).ToArray(), dyAbs = dy.Select(MathF.Abs).ToArray();
        // The same products as the direct sum, added in another order (taps outermost): its rounding bound holds.
        AssertWithinBound(Forward(_fast, g, x, wt, b), Forward(_reference, g, x, wt, b), Forward(_reference, g, xAbs, wAbs, b.Select(MathF.Abs).ToArray()),
            c * 9 + 1, "y");
        AssertWithinBound(Forward(_fast, g, x, wt, null), Forward(_reference, g, x, wt, null), Forward(_reference, g, xAbs, wAbs, null), c * 9, "y");
        AssertWithinBound(DataGradient(_fast, g, dy, wt), DataGradient(_reference, g, dy, wt), DataGradient(_reference, g, dyAbs, wAbs),
            k * 9 + k + 9, "dx");
        Assert.That(SmallMapConvolution.AppliesToFilterGradient(g), Is.EqualTo(runs && c % 32 == 0));
        var (dw, db) = FilterGradient(_fast, g, x, dy);
        var (dwReference, dbReference) = FilterGradient(_reference, g, x, dy);
        var (dwAbs, dbAbs) = FilterGradient(_reference, g, xAbs, dyAbs);
        AssertWithinBound(dw, dwReference, dwAbs, n * g.P * g.Q, "dw");
        AssertWithinBound(db, dbReference, dbAbs, n * g.P * g.Q, "dbias");
    }

    [TestCase(64, 24, 2, 2, 16)]
    [TestCase(48, 300, 3, 4, 16)]
    [TestCase(32, 160, 5, 5, 72)]
    public void SmallMapConvolution_DoesNotDependOnTheThreadCount(int n, int c, int h, int w, int k)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, 3, 3, 1, 1, 1, 1);
        AssertSameOnOneThread(g, seed: 8);
    }

    [Test]
    public void SmallMapConvolution_RunsVggs5x5And2x2Layers()
    {
        if (!SmallMapConvolution.Enabled || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Ignore("The small-map convolution runs only with AVX-512 and DICC_CPU_SMALL_MAPS unset.");
        ConvolutionGeometry Layer(int n, int c, int side, int k) => new(n, c, side, side, k, 3, 3, 1, 1, 1, 1);
        Assert.Multiple(() =>
        {
            Assert.That(SmallMapConvolution.Applies(Layer(32, 256, 5, 512)), Is.True, "conv4_1");
            Assert.That(SmallMapConvolution.Applies(Layer(32, 512, 5, 256)), Is.True, "conv4_1's input gradient");
            Assert.That(SmallMapConvolution.Applies(Layer(128, 512, 5, 512)), Is.True, "conv4_2 at batch 128");
            Assert.That(SmallMapConvolution.Applies(Layer(32, 512, 2, 512)), Is.True, "conv5_1");
            Assert.That(SmallMapConvolution.Applies(Layer(1, 512, 5, 512)), Is.False, "one image: 31 of 32 lanes padding");
            Assert.That(SmallMapConvolution.Applies(Layer(33, 512, 5, 512)), Is.False, "33 images: two slivers, half padding");
            Assert.That(SmallMapConvolution.Applies(Layer(23, 512, 5, 512)), Is.False, "23 of 32 images at 5 x 5: padding costs more than the taps save");
            Assert.That(SmallMapConvolution.Applies(Layer(16, 512, 2, 512)), Is.True, "16 of 32 images at 2 x 2: 20 of 36 taps saved");
            Assert.That(SmallMapConvolution.Applies(Layer(14, 512, 2, 512)), Is.False, "14 of 32 images at 2 x 2");
            Assert.That(SmallMapConvolution.AppliesToFilterGradient(Layer(1, 512, 5, 512)), Is.True, "the filter gradient pads no images");
            Assert.That(SmallMapConvolution.Applies(Layer(32, 256, 11, 256)), Is.False, "conv3_2: Winograd's");
        });
    }

    [TestCaseSource(nameof(Geometries))]
    public void ConvolutionFilterGradient_IsBitIdenticalToTheReference(int n, int c, int h, int w, int k, int r, int s, int stride, int pad)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, r, s, stride, stride, pad, pad);
        var random = new RandomStream(2);
        float[] x = Normal(g.InputShape.ElementCount, random), dy = Normal(g.OutputShape.ElementCount, random);
        var (dwFast, dbFast) = FilterGradient(_fast, g, x, dy);
        var (dwReference, dbReference) = FilterGradient(_reference, g, x, dy);
        if (WinogradConvolution.AppliesToFilterGradient(g))
        {
            var (dwAbs, _) = FilterGradient(_reference, g, x.Select(MathF.Abs).ToArray(), dy.Select(MathF.Abs).ToArray());
            AssertWithinBound(dwFast, dwReference, dwAbs, terms: n * g.P * g.Q, "dw", WinogradFilterFactor);
        }
        else if (SingleChannelConvolution.Applies(g))
        {
            // The first-layer kernel sums in 16 lanes along the rows: within rounding of both sums, not bit-identical.
            var (dwAbs, _) = FilterGradient(_reference, g, x.Select(MathF.Abs).ToArray(), dy.Select(MathF.Abs).ToArray());
            AssertWithinBound(dwFast, dwReference, dwAbs, terms: n * g.P * g.Q, "dw");
        }
        else Assert.That(dwFast, Is.EqualTo(dwReference));
        // The bias gradient is a float sum on the fast path, a double one on the reference path.
        var (_, dbAbs) = FilterGradient(_reference, g, x, dy.Select(MathF.Abs).ToArray());
        AssertWithinBound(dbFast, dbReference, dbAbs, terms: n * g.P * g.Q, "dbias");
    }

    [TestCaseSource(nameof(Geometries))]
    public void ConvolutionDataGradient_IsWithinRoundingOfTheReference(int n, int c, int h, int w, int k, int r, int s, int stride, int pad)
    {
        var g = new ConvolutionGeometry(n, c, h, w, k, r, s, stride, stride, pad, pad);
        var random = new RandomStream(3);
        float[] dy = Normal(g.OutputShape.ElementCount, random), wt = Normal(g.WeightShape.ElementCount, random);
        var fast = DataGradient(_fast, g, dy, wt);
        var reference = DataGradient(_reference, g, dy, wt);
        var bound = DataGradient(_reference, g, dy.Select(MathF.Abs).ToArray(), wt.Select(MathF.Abs).ToArray());
        bool winograd = stride == 1 && WinogradConvolution.Applies(new ConvolutionGeometry(n, k, g.P, g.Q, c, r, s, 1, 1, r - 1 - pad, s - 1 - pad));
        AssertWithinBound(fast, reference, bound, terms: k * r * s + k + r * s, "dx", winograd ? WinogradFactor : 1);
    }

    [TestCase(16, 11, 11)]
    [TestCase(1, 44, 44)] // the first-layer kernel
    [TestCase(32, 22, 22)] // the channels-last filter gradient; Winograd here and at 16 x 11 x 11
    public void Convolution_DoesNotDependOnTheThreadCount(int c, int h, int w)
    {
        var g = new ConvolutionGeometry(6, c, h, w, 24, 3, 3, 1, 1, 1, 1);
        AssertSameOnOneThread(g, seed: 4);
    }

    /// <summary>Forward, filter and bias gradients and input gradient of <paramref name="g"/> on all threads and on one: bit-identical.</summary>
    private void AssertSameOnOneThread(in ConvolutionGeometry g, ulong seed)
    {
        var random = new RandomStream(seed);
        var geometry = g;
        float[] x = Normal(g.InputShape.ElementCount, random), wt = Normal(g.WeightShape.ElementCount, random);
        float[] dy = Normal(g.OutputShape.ElementCount, random), b = Normal(g.K, random);
        float[][] Run() => [Forward(_fast, geometry, x, wt, b), .. Pair(FilterGradient(_fast, geometry, x, dy)), DataGradient(_fast, geometry, dy, wt)];
        var all = Run();
        using (CpuParallel.LimitThreads(1))
        {
            var one = Run();
            for (int i = 0; i < all.Length; i++) Assert.That(one[i], Is.EqualTo(all[i]), $"output {i}: 1 thread differs from {CpuParallel.Threads}.");
        }
    }

    /// <summary>(N, C, H, W, K) cases of 3x3, stride-1, padding-1 convolutions, named by their sizes.</summary>
    private static IEnumerable<TestCaseData> MapCases((int N, int C, int H, int W, int K)[] cases) =>
        cases.Select(c => new TestCaseData(c.N, c.C, c.H, c.W, c.K).SetArgDisplayNames($"n{c.N} c{c.C} {c.H}x{c.W} k{c.K}"));

    // BatchNorm: the fast path's statistics are float sums over one image's row of a channel (at most H*W = 1936
    // values here, 32 partial sums) added in double, so each row sum is off by at most (H*W/32 + 6) * 2^-24 of
    // the sum of magnitudes, about 4e-6 relative: the mean, the inverse deviation and every output move by a few
    // 1e-6 of their scale. The tolerance, 2e-5 of the output's scale, is several times that bound; a wrong
    // channel, row or statistic is off by O(1).
    public static IEnumerable<TestCaseData> NormShapes()
    {
        int[][] shapes = [[4, 3, 44, 44], [3, 4, 11, 11], [32, 8, 5, 5], [9, 6, 2, 2], [6, 5]];
        foreach (var s in shapes) yield return new TestCaseData(s).SetArgDisplayNames(string.Join("x", s));
    }

    [TestCaseSource(nameof(NormShapes))]
    public void BatchNorm_IsWithinFloatRoundingOfTheReference(int[] dims)
    {
        var shape = new Shape(dims);
        int c = dims[1];
        var random = new RandomStream(6);
        // Offset and scaled inputs, so that the two-pass variance matters.
        float[] x = [.. Normal(shape.ElementCount, random).Select(v => 3f + 2f * v)];
        float[] dy = Normal(shape.ElementCount, random), gamma = [.. Normal(c, random).Select(v => 1f + 0.5f * v)], beta = Normal(c, random);
        var fast = BatchNorm(_fast, shape, x, dy, gamma, beta);
        var reference = BatchNorm(_reference, shape, x, dy, gamma, beta);
        string[] names = ["y", "running mean", "running var", "save mean", "save inv std", "dx", "dgamma", "dbeta"];
        for (int t = 0; t < names.Length; t++)
        {
            double rms = Math.Sqrt(reference[t].Average(v => (double)v * v));
            for (int i = 0; i < reference[t].Length; i++)
                Assert.That(Math.Abs(fast[t][i] - reference[t][i]), Is.LessThanOrEqualTo(2e-5 * (Math.Abs(reference[t][i]) + rms)),
                    $"{names[t]}[{i}]: fast {fast[t][i]} vs reference {reference[t][i]}");
        }
    }

    [Test]
    public void BatchNorm_DoesNotDependOnTheThreadCount()
    {
        var shape = new Shape(8, 16, 11, 11);
        var random = new RandomStream(7);
        float[] x = Normal(shape.ElementCount, random), dy = Normal(shape.ElementCount, random);
        float[] gamma = Normal(16, random), beta = Normal(16, random);
        var all = BatchNorm(_fast, shape, x, dy, gamma, beta);
        using (CpuParallel.LimitThreads(1))
        {
            var one = BatchNorm(_fast, shape, x, dy, gamma, beta);
            for (int i = 0; i < all.Length; i++) Assert.That(one[i], Is.EqualTo(all[i]), $"output {i}");
        }
    }

    /// <summary>y, running mean and variance, saved mean and inverse deviation, dx, dgamma, dbeta of one training step.</summary>
    private static float[][] BatchNorm(Backend backend, Shape shape, float[] x, float[] dy, float[] gamma, float[] beta)
    {
        var cs = new Shape(shape[1]);
        Tensor xt = Upload(backend, shape, x), dyt = Upload(backend, shape, dy), g = Upload(backend, cs, gamma), b = Upload(backend, cs, beta);
        Tensor y = backend.Create(shape), dx = backend.Create(shape), rm = backend.Create(cs), rv = backend.Create(cs);
        Tensor sm = backend.Create(cs), si = backend.Create(cs), dg = backend.Create(cs), db = backend.Create(cs);
        backend.Fill(rv, 1f);
        backend.BatchNormTrainingForward(xt, g, b, y, rm, rv, 0.1f, 1e-5f, sm, si);
        backend.BatchNormBackward(xt, dyt, g, sm, si, dx, dg, db);
        return [.. new[] { y, rm, rv, sm, si, dx, dg, db }.Select(backend.ToArray)];
    }

    // Max pooling selects values: the fast path must pick the same element as the reference in every window
    // (the first maximum in row-major order, the first NaN), so values and gradients are compared bit for bit,
    // on data with ties, signed zeros and NaNs, at even and odd sizes.
    [TestCase(2, 3, 44, 44)]
    [TestCase(3, 2, 11, 11)]
    [TestCase(2, 2, 5, 5)]
    [TestCase(4, 3, 2, 2)]
    [TestCase(1, 2, 17, 35)]
    public void MaxPool_IsBitIdenticalToTheReference(int n, int c, int h, int w)
    {
        var g = new PoolGeometry(n, c, h, w, 2, 2, 2, 2, 0, 0);
        var random = new RandomStream(8);
        var x = new float[g.InputShape.ElementCount];
        for (int i = 0; i < x.Length; i++)
        {
            double u = random.NextFloat();
            x[i] = u < 0.02 ? float.NaN : u < 0.1 ? 0f : u < 0.15 ? -0f : MathF.Round((float)random.NextNormal() * 2f) / 2f;
        }
        float[] dy = Normal(g.OutputShape.ElementCount, random);
        var fast = Pool(_fast, g, x, dy);
        var reference = Pool(_reference, g, x, dy);
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < fast[t].Length; i++)
                Assert.That(BitConverter.SingleToInt32Bits(fast[t][i]), Is.EqualTo(BitConverter.SingleToInt32Bits(reference[t][i])),
                    $"{(t == 0 ? "y" : "dx")}[{i}]: fast {fast[t][i]} vs reference {reference[t][i]}");
    }

    private static float[][] Pool(Backend backend, PoolGeometry g, float[] x, float[] dy)
    {
        Tensor xt = Upload(backend, g.InputShape, x), y = backend.Create(g.OutputShape), dx = Upload(backend, g.InputShape, x);
        backend.MaxPoolForward(g, xt, y);
        backend.MaxPoolBackward(g, xt, y, Upload(backend, g.OutputShape, dy), dx);
        return [backend.ToArray(y), backend.ToArray(dx)];
    }

    private static float[][] Pair((float[] A, float[] B) p) => [p.A, p.B];

    private static void AssertWithinBound(float[] actual, float[] expected, float[] absoluteSum, int terms, string what, double factor = 1)
    {
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double allowed = factor * (terms + 4) * Unit * absoluteSum[i] + 1e-30;
            double excess = Math.Abs(actual[i] - expected[i]) / allowed;
            if (!(excess <= worst)) { worst = excess; worstAt = i; }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1.0),
            $"{what}[{worstAt}]: fast {actual[Math.Max(0, worstAt)]} vs reference {expected[Math.Max(0, worstAt)]} exceeds the rounding bound by {worst:F2}x.");
    }

    private static float[] Normal(long count, RandomStream random)
    {
        var a = new float[count];
        for (long i = 0; i < count; i++) a[i] = (float)random.NextNormal();
        return a;
    }

    private static Tensor Upload(Backend backend, Shape shape, float[] values)
    {
        var t = backend.Create(shape);
        backend.CopyIn<float>(t, values);
        return t;
    }

    private static float[] Forward(Backend backend, ConvolutionGeometry g, float[] x, float[] w, float[]? b)
    {
        backend.ReserveWorkspace(backend.ConvolutionWorkspaceBytes(g));
        var y = backend.Create(g.OutputShape);
        backend.ConvolutionForward(g, Upload(backend, g.InputShape, x), Upload(backend, g.WeightShape, w),
            b is null ? null : Upload(backend, new Shape(g.K), b), y);
        return backend.ToArray(y);
    }

    private static (float[] Dw, float[] Db) FilterGradient(Backend backend, ConvolutionGeometry g, float[] x, float[] dy)
    {
        backend.ReserveWorkspace(backend.ConvolutionWorkspaceBytes(g));
        var dw = backend.Create(g.WeightShape);
        var db = backend.Create(new Shape(g.K));
        backend.ConvolutionBackwardFilter(g, Upload(backend, g.InputShape, x), Upload(backend, g.OutputShape, dy), dw, db);
        return (backend.ToArray(dw), backend.ToArray(db));
    }

    private static float[] DataGradient(Backend backend, ConvolutionGeometry g, float[] dy, float[] w)
    {
        backend.ReserveWorkspace(backend.ConvolutionWorkspaceBytes(g));
        var dx = backend.Create(g.InputShape);
        backend.ConvolutionBackwardData(g, Upload(backend, g.OutputShape, dy), Upload(backend, g.WeightShape, w), dx);
        return backend.ToArray(dx);
    }
}
