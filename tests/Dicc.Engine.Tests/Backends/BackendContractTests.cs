using Dicc.Engine.Backends;
using Dicc.Engine.Clustering;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Backends;

/// <summary>
/// The backend contract's semantics on small inputs whose results are worked out by hand (or by the formula the
/// contract states), one test body per device: on the CPU here, on the GPU where there is one. Together with
/// the GPU-against-CPU comparisons this pins down ties, conventions and error reporting, not just closeness.
/// </summary>
#if !EMULATED_DEVICE // Dicc.Emulated.Tests compiles this file too, for the cuda fixture only
[TestFixture("cpu")]
#endif
[TestFixture("cuda", Category = "Gpu")]
public class BackendContractTests(string device)
{
    private Backend _b = null!;

    [OneTimeSetUp]
    public void Open() => _b = TestBackends.Create(device);

    [OneTimeTearDown]
    public void Close() => _b?.Dispose();

    private Tensor F(float[] values, params int[] shape)
    {
        var t = _b.Create(new Shape(shape));
        _b.CopyIn<float>(t, values);
        return t;
    }

    private Tensor I(int[] values, params int[] shape)
    {
        var t = _b.Create(new Shape(shape), DType.Int32);
        _b.CopyIn<int>(t, values);
        return t;
    }

    [Test]
    public void MaxPool_GivesTheGradientToTheFirstOfEqualMaxima()
    {
        var g = new PoolGeometry(1, 1, 2, 4, 2, 2, 2, 2, 0, 0);
        var x = F([1, 5, 5, 0, 5, 2, 3, 5], 1, 1, 2, 4);
        var y = _b.Create(g.OutputShape);
        var dx = _b.Create(g.InputShape);
        _b.MaxPoolForward(g, x, y);
        _b.MaxPoolBackward(g, x, y, F([10, 20], 1, 1, 1, 2), dx);
        Assert.That(_b.ToArray(y), Is.EqualTo(new float[] { 5, 5 }));
        Assert.That(_b.ToArray(dx), Is.EqualTo(new float[] { 0, 10, 20, 0, 0, 0, 0, 0 }), "row-major first maximum of each window");

        // Overlapping windows (stride 1): each window's first maximum gets its gradient; a NaN wins its windows.
        var o = new PoolGeometry(1, 1, 1, 4, 1, 2, 1, 1, 0, 0);
        var xo = F([2, 2, float.NaN, 1], 1, 1, 1, 4);
        var yo = _b.Create(o.OutputShape);
        var dxo = _b.Create(o.InputShape);
        _b.MaxPoolForward(o, xo, yo);
        _b.MaxPoolBackward(o, xo, yo, F([1, 2, 4], 1, 1, 1, 3), dxo);
        var yv = _b.ToArray(yo);
        Assert.That(yv[0], Is.EqualTo(2f));
        Assert.That(float.IsNaN(yv[1]) && float.IsNaN(yv[2]), Is.True, "NaN propagates");
        Assert.That(_b.ToArray(dxo), Is.EqualTo(new float[] { 1, 0, 6, 0 }));
    }

    [Test]
    public void BatchNormTraining_NormalisesWithTheBiasedVariance_AndKeepsTheUnbiasedOneRunning()
    {
        var x = F([1, 2, 3, 6], 4, 1);
        var y = _b.Create(new Shape(4, 1));
        var rm = F([0], 1);
        var rv = F([1], 1);
        var sm = _b.Create(new Shape(1));
        var si = _b.Create(new Shape(1));
        _b.BatchNormTrainingForward(x, F([2], 1), F([1], 1), y, rm, rv, 0.1f, 1e-5f, sm, si);
        // mean 3, biased variance 14 / 4, unbiased 14 / 3.
        double invStd = 1 / Math.Sqrt(3.5 + 1e-5);
        Assert.That(_b.ToArray(y), Is.EqualTo(new[] { 1, 2, 3, 6 }.Select(v => (float)(2 * (v - 3) * invStd + 1)).ToArray()).Within(2e-6));
        Assert.That(_b.ToArray(sm)[0], Is.EqualTo(3f));
        Assert.That(_b.ToArray(si)[0], Is.EqualTo((float)invStd));
        Assert.That(_b.ToArray(rm)[0], Is.EqualTo(0.3f).Within(1e-7));
        Assert.That(_b.ToArray(rv)[0], Is.EqualTo((float)(0.9 + 0.1 * 14.0 / 3)).Within(1e-6), "running variance is unbiased (PyTorch)");

        // Evaluation uses the running statistics.
        _b.BatchNormInferenceForward(x, F([2], 1), F([1], 1), rm, rv, 1e-5f, y);
        float scale = 2f / MathF.Sqrt(_b.ToArray(rv)[0] + 1e-5f);
        Assert.That(_b.ToArray(y), Is.EqualTo(new[] { 1f, 2, 3, 6 }.Select(v => v * scale + (1 - 0.3f * scale)).ToArray()).Within(1e-6));
    }

    [Test]
    public void CrossEntropy_WithClassWeights_IsPyTorchsWeightedMean()
    {
        float[] z = [1, 2, 0.5f, -1, 0, 3];
        var logits = F(z, 2, 3);
        var loss = _b.Create(new Shape(1));
        var dz = _b.Create(new Shape(2, 3));
        _b.SoftmaxCrossEntropy(logits, I([0, 2], 2), F([1, 1, 3], 3), loss, dz);
        double Lse(int row) => Math.Log(Enumerable.Range(0, 3).Sum(j => Math.Exp(z[row * 3 + j])));
        double expected = (1 * (Lse(0) - z[0]) + 3 * (Lse(1) - z[5])) / 4;
        Assert.That(_b.ToArray(loss)[0], Is.EqualTo(expected).Within(1e-6));
        var grad = _b.ToArray(dz);
        for (int row = 0; row < 2; row++)
            for (int j = 0; j < 3; j++)
            {
                double p = Math.Exp(z[row * 3 + j] - Lse(row)), w = row == 0 ? 1 : 3;
                int label = row == 0 ? 0 : 2;
                Assert.That(grad[row * 3 + j], Is.EqualTo(w / 4 * (p - (j == label ? 1 : 0))).Within(1e-6), $"dlogits[{row}, {j}]");
            }
    }

    [Test]
    public void BadLabelsAndIndices_ThrowTheSameErrors_AndTheBackendStaysUsable()
    {
        var loss = _b.Create(new Shape(1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            _b.SoftmaxCrossEntropy(F([0, 0, 0, 0, 0, 0], 2, 3), I([0, 3], 2), null, loss, null);
            _b.ToArray(loss); // a GPU reports at its next sync point
        })!;
        Assert.That(e.Message, Does.StartWith("Label of row 1 is outside [0, 3)."));

        var gathered = _b.Create(new Shape(2), DType.Int32);
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            _b.Gather(I([7, 8, 9], 3), I([2, 3], 2), gathered);
            _b.Synchronize();
        })!.Message, Does.StartWith("Index 3 at position 1 is outside [0, 3)."));

        var crops = _b.Create(new Shape(2, 1, 4, 4));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            _b.CropImages(_b.Create(new Shape(2, 6, 6), DType.UInt8), I([-1, 0], 2), crops, CropMode.Center, 4);
            _b.Synchronize();
        })!.Message, Does.StartWith("Image index -1 at batch position 0 is outside [0, 2)."));

        // The failure was reported once; the next ops run normally.
        _b.Gather(I([7, 8, 9], 3), I([2, 0], 2), gathered);
        Assert.That(_b.ToArray<int>(gathered), Is.EqualTo(new[] { 9, 7 }));
    }

    [Test]
    public void Sgd_IsPyTorchsFormulaInFloat()
    {
        float[] w0 = [1, -2, 0.5f], g = [0.5f, 0.25f, -1], v0 = [0.1f, 0, 2];
        foreach (bool nesterov in new[] { false, true })
        {
            var w = F(w0, 3);
            var v = F(v0, 3);
            _b.SgdStep(w, F(g, 3), v, 0.1f, 0.9f, 0.01f, nesterov);
            var ew = new float[3];
            var ev = new float[3];
            for (int i = 0; i < 3; i++)
            {
                float gi = g[i] + 0.01f * w0[i];
                ev[i] = 0.9f * v0[i] + gi;
                ew[i] = w0[i] - 0.1f * (nesterov ? gi + 0.9f * ev[i] : ev[i]);
            }
            Assert.That(_b.ToArray(w), Is.EqualTo(ew), $"weights, nesterov {nesterov}");
            Assert.That(_b.ToArray(v), Is.EqualTo(ev), $"momentum, nesterov {nesterov}");
        }
    }

    [Test]
    public void Dropout_MaskIsThePhiloxStreamAtSeedAndOffset()
    {
        const int n = 1001;
        const float p = 0.3f;
        const ulong seed = 99, offset = (7UL << 32) + 3;
        var x = F(TestSupport.RandomFloats(n, 4), n);
        var y = _b.Create(new Shape(n));
        var mask = _b.Create(new Shape(n));
        _b.DropoutForward(x, y, mask, p, seed, offset);
        float scale = 1f / (1f - p);
        var expected = Enumerable.Range(0, n).Select(i => Philox.ToUniform(Philox.Word(seed, 0, offset + (ulong)i)) >= p ? scale : 0f).ToArray();
        Assert.That(_b.ToArray(mask), Is.EqualTo(expected));
        var xs = _b.ToArray(x);
        Assert.That(_b.ToArray(y), Is.EqualTo(xs.Select((v, i) => v * expected[i]).ToArray()));
    }

    [TestCase(CropMode.Random)]
    [TestCase(CropMode.Center)]
    [TestCase(CropMode.TenCrop)]
    public void CropImages_EqualTheHostAugmentation(CropMode mode)
    {
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 2, ValidationPerClass = 0, TestPerClass = 0, Seed = 3 });
        var resident = new DeviceDataset(_b, data.Train);
        int[] picks = [5, 0, 13, 5];
        int views = mode == CropMode.TenCrop ? 10 : 1;
        var output = _b.Create(new Shape(picks.Length * views, 1, 44, 44));
        _b.CropImages(resident.Images, I(picks, picks.Length), output, mode, 44, seed: 17, firstSample: 1UL << 33);
        var expected = new float[output.ElementCount];
        if (mode == CropMode.Random) Augmentation.RandomCropFlip(data.Train, picks, expected, 17, 1UL << 33);
        else if (mode == CropMode.Center) Augmentation.CenterCrop(data.Train, picks, expected);
        else Augmentation.TenCrop(data.Train, picks, expected);
        Assert.That(_b.ToArray(output), Is.EqualTo(expected));
    }

    [Test]
    public void Linear_ForwardAndBackward_AreTheMatrixProducts()
    {
        TestSupport.RequireVendorLibraries(_b);
        // x [2, 3], w [2, 3] (out, in), b [2].
        var x = F([1, 2, 3, 4, 5, 6], 2, 3);
        var w = F([1, 0, -1, 2, 1, 0], 2, 3);
        var y = _b.Create(new Shape(2, 2));
        _b.LinearForward(x, w, F([10, 20], 2), y);
        Assert.That(_b.ToArray(y), Is.EqualTo(new float[] { 1 - 3 + 10, 2 + 2 + 20, 4 - 6 + 10, 8 + 5 + 20 }));
        var dy = F([1, 2, 3, 4], 2, 2);
        var dx = _b.Create(new Shape(2, 3));
        var dw = _b.Create(new Shape(2, 3));
        var db = _b.Create(new Shape(2));
        _b.LinearBackward(x, w, dy, dx, dw, db);
        Assert.That(_b.ToArray(dx), Is.EqualTo(new float[] { 1 + 4, 2, -1, 3 + 8, 4, -3 }), "dx = dy w");
        Assert.That(_b.ToArray(dw), Is.EqualTo(new float[] { 1 + 12, 2 + 15, 3 + 18, 2 + 16, 4 + 20, 6 + 24 }), "dw = dy^T x");
        Assert.That(_b.ToArray(db), Is.EqualTo(new float[] { 4, 6 }), "db = column sums of dy");
    }

    [Test]
    public void Convolution_WithACentredUnitKernel_IsTheIdentity()
    {
        TestSupport.RequireVendorLibraries(_b);
        var g = new ConvolutionGeometry(2, 1, 4, 5, 1, 3, 3, 1, 1, 1, 1);
        _b.ReserveWorkspace(_b.ConvolutionWorkspaceBytes(g));
        var xs = TestSupport.RandomFloats(40, 8);
        var x = F(xs, 2, 1, 4, 5);
        var w = F([0, 0, 0, 0, 1, 0, 0, 0, 0], 1, 1, 3, 3);
        var y = _b.Create(g.OutputShape);
        _b.ConvolutionForward(g, x, w, F([0.5f], 1), y);
        Assert.That(_b.ToArray(y), Is.EqualTo(xs.Select(v => v + 0.5f).ToArray()).Within(1e-6));
        var dys = TestSupport.RandomFloats(40, 9);
        var dy = F(dys, 2, 1, 4, 5);
        var dx = _b.Create(g.InputShape);
        var dw = _b.Create(g.WeightShape);
        var db = _b.Create(new Shape(1));
        _b.ConvolutionBackwardData(g, dy, w, dx);
        _b.ConvolutionBackwardFilter(g, x, dy, dw, db);
        Assert.That(_b.ToArray(dx), Is.EqualTo(dys).Within(1e-6));
        Assert.That(_b.ToArray(dw)[4], Is.EqualTo(xs.Zip(dys, (a, b) => (double)a * b).Sum()).Within(1e-5), "centre tap: sum of x * dy");
        Assert.That(_b.ToArray(db)[0], Is.EqualTo(dys.Sum(v => (double)v)).Within(1e-5));
    }

    [Test]
    public void NormalizeRows_IsFNormalize_AndItsGradientIsTheProjectionOverTheNorm()
    {
        // Row 0: (3, 4) / 5. Row 1: all zeros, norm 0 <= eps: y = x / eps = 0, and the gradient is dy / eps.
        var x = F([3, 4, 0, 0], 2, 2);
        var y = _b.Create(new Shape(2, 2));
        var norms = _b.Create(new Shape(2));
        _b.NormalizeRows(x, y, norms);
        Assert.That(_b.ToArray(y), Is.EqualTo(new[] { 0.6f, 0.8f, 0f, 0f }).Within(1e-7f));
        Assert.That(_b.ToArray(norms), Is.EqualTo(new[] { 5f, 0f }));
        // dx = (dy - y (y . dy)) / |x|: y . dy = 0.6, so row 0 is ((1 - 0.36) / 5, (0 - 0.48) / 5) = (0.128, -0.096).
        var dx = _b.Create(new Shape(2, 2));
        _b.NormalizeRowsBackward(y, norms, F([1, 0, 2, 3], 2, 2), dx);
        var g = _b.ToArray(dx);
        Assert.That(g[0], Is.EqualTo(0.128f).Within(1e-7f));
        Assert.That(g[1], Is.EqualTo(-0.096f).Within(1e-7f));
        Assert.That(g[2], Is.EqualTo(2f / Backend.RowNormEpsilon).Within(1e6f));
        Assert.That(g[3], Is.EqualTo(3f / Backend.RowNormEpsilon).Within(1e6f));
    }

    [Test]
    public void Softmax_AndRelu_FollowTheirFormulas()
    {
        var z = F([1, 2, 3, -1000, 0, 1000], 2, 3);
        var p = _b.Create(new Shape(2, 3));
        _b.Softmax(z, p);
        double e1 = Math.Exp(1), e2 = Math.Exp(2), e3 = Math.Exp(3), s = e1 + e2 + e3;
        Assert.That(_b.ToArray(p), Is.EqualTo(new[] { e1 / s, e2 / s, e3 / s, 0, 0, 1 }).Within(1e-6), "stable for large logits");

        var x = F([-1, 0, 2, float.NaN], 4);
        var r = _b.Create(new Shape(4));
        _b.ReluForward(x, r);
        var rv = _b.ToArray(r);
        Assert.That(rv[..3], Is.EqualTo(new float[] { 0, 0, 2 }));
        Assert.That(float.IsNaN(rv[3]), Is.True, "NaN passes through");
    }

    [Test]
    public void CopyAndFill_HandleEveryElementType()
    {
        var a = I([1, 2, 3], 3);
        var b = _b.Create(new Shape(3), DType.Int32);
        _b.Copy(a, b);
        Assert.That(_b.ToArray<int>(b), Is.EqualTo(new[] { 1, 2, 3 }));
        var bytes = _b.Create(new Shape(5), DType.UInt8);
        _b.CopyIn<byte>(bytes, [9, 8, 7, 6, 5]);
        var copy = _b.Create(new Shape(5), DType.UInt8);
        _b.Copy(bytes, copy);
        Assert.That(_b.ToArray<byte>(copy), Is.EqualTo(new byte[] { 9, 8, 7, 6, 5 }));
        var f = _b.Create(new Shape(1000));
        _b.Fill(f, -2.5f);
        Assert.That(_b.ToArray(f), Is.All.EqualTo(-2.5f));
        Assert.That(_b.ToArray(_b.Create(new Shape(7))), Is.All.EqualTo(0f), "fresh memory is zero");
    }

    [TestCase(PartitionMode.Interval)]
    [TestCase(PartitionMode.Rank)]
    public void Clustering_OnTheBackend_EqualsTheReference(PartitionMode partition)
    {
        var plan = SubclassPlan.FromCounts([2, 1, 4]);
        const int m = 37;
        using var module = IClustering.Create(_b, new ClusteringConfig(plan, m, partition, 0.9));
        var reference = new IntraClassClustering(new ClusteringConfig(plan, m, partition, 0.9));
        var r = new RandomStream(21);
        foreach (int n in new[] { 9, 1, 30, 30 })
        {
            var features = TestSupport.RandomFloats(n * m, r.NextUInt(), 3f);
            var labels = Enumerable.Range(0, n).Select(_ => r.NextInt(2) == 0 ? 2 : r.NextInt(3)).ToArray();
            var expected = new int[n];
            reference.Assign(features, labels, expected);
            var pseudo = _b.Create(new Shape(n), DType.Int32);
            module.Assign(F(features, n, m), I(labels, n), pseudo);
            Assert.That(_b.ToArray<int>(pseudo), Is.EqualTo(expected), $"pseudo-labels of a batch of {n}");
            var state = module.ReadState();
            Assert.That(state.Centers, Is.EqualTo(reference.Centers.ToArray()), "centres bit for bit");
            Assert.That(state.Seen, Is.EqualTo(reference.Seen.ToArray()));
            Assert.That(state.Step, Is.EqualTo(reference.Step));
        }
    }

    [Test]
    public void Clustering_BadInput_ThrowsTheReferencesError_AndChangesNothing()
    {
        var plan = SubclassPlan.FromCounts([2, 3]);
        using var module = IClustering.Create(_b, new ClusteringConfig(plan, 4));
        var pseudo = _b.Create(new Shape(3), DType.Int32);
        module.Assign(F(TestSupport.RandomFloats(12, 1), 3, 4), I([0, 1, 1], 3), pseudo);
        var before = module.ReadState();

        var e = Assert.Throws<ArgumentException>(() =>
        {
            module.Assign(F(new float[12], 3, 4), I([1, 2, 0], 3), pseudo);
            module.ReadState();
        })!;
        Assert.That(e.Message, Does.StartWith("Label 2 of sample 1 is outside [0, 2)."));
        var features = new float[12];
        features[2 * 4 + 1] = float.PositiveInfinity;
        e = Assert.Throws<ArgumentException>(() =>
        {
            module.Assign(F(features, 3, 4), I([0, 1, 1], 3), pseudo);
            module.ReadState();
        })!;
        Assert.That(e.Message, Does.StartWith($"Feature 1 of sample 2 is {float.PositiveInfinity}; clustering needs finite features."));
        var after = module.ReadState();
        Assert.That(after.Centers, Is.EqualTo(before.Centers));
        Assert.That(after.Step, Is.EqualTo(before.Step), "failed steps are not counted");
    }
}
