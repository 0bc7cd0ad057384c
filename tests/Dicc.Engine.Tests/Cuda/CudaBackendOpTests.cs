using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>
/// Every op of the CUDA backend against the CPU backend on the same inputs and weights:
/// <c>|gpu - cpu| &lt;= atol + rtol |cpu|</c> with the largest difference printed. Ops whose arithmetic is the
/// same operation by operation (elementwise ops, dropout, SGD, pooling, crops, gathers, linear bias sums) must be
/// equal bit for bit; reductions and library calls within stated tolerances.
/// </summary>
[Category("Gpu")]
public class CudaBackendOpTests
{
    private CudaBackend _gpu = null!;
    private CpuBackend _cpu = null!;

    [OneTimeSetUp]
    public void Open()
    {
        _gpu = (CudaBackend)TestBackends.Create("cuda");
        _cpu = new CpuBackend(CpuPath.Reference); // the oracle: the kernels follow its arithmetic (docs/architecture.md)
        TestContext.Progress.WriteLine(_gpu.Description);
    }

    [OneTimeTearDown]
    public void Close()
    {
        _gpu?.Dispose();
        _cpu?.Dispose();
    }

    /// <summary>The same values in a new tensor on each backend.</summary>
    private (Tensor Gpu, Tensor Cpu) Pair(float[] values, Shape shape)
    {
        var g = _gpu.Create(shape);
        var c = _cpu.Create(shape);
        _gpu.CopyIn<float>(g, values);
        _cpu.CopyIn<float>(c, values);
        return (g, c);
    }

    private (Tensor Gpu, Tensor Cpu) Pair(int[] values, Shape shape)
    {
        var g = _gpu.Create(shape, DType.Int32);
        var c = _cpu.Create(shape, DType.Int32);
        _gpu.CopyIn<int>(g, values);
        _cpu.CopyIn<int>(c, values);
        return (g, c);
    }

    private (Tensor Gpu, Tensor Cpu) Random(Shape shape, ulong seed, float scale = 1f) =>
        Pair(TestSupport.RandomFloats(checked((int)shape.ElementCount), seed, scale), shape);

    private (Tensor Gpu, Tensor Cpu) Empty(Shape shape) => (_gpu.Create(shape), _cpu.Create(shape));

    private void Close((Tensor Gpu, Tensor Cpu) t, Tolerance tolerance, string what) =>
        Parity.AssertClose(_gpu.ToArray(t.Gpu), _cpu.ToArray(t.Cpu), tolerance, what);

    private void Equal((Tensor Gpu, Tensor Cpu) t, string what) => Parity.AssertBitwise(_gpu.ToArray(t.Gpu), _cpu.ToArray(t.Cpu), what);

    private static IEnumerable<TestCaseData> Convolutions()
    {
        yield return new TestCaseData(new ConvolutionGeometry(4, 1, 44, 44, 64, 3, 3, 1, 1, 1, 1)).SetName("Conv_Vgg1_1x44x44_to64");
        yield return new TestCaseData(new ConvolutionGeometry(4, 64, 22, 22, 128, 3, 3, 1, 1, 1, 1)).SetName("Conv_Vgg_64x22x22_to128");
        yield return new TestCaseData(new ConvolutionGeometry(3, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1)).SetName("Conv_Vgg_512x2x2_to512");
        yield return new TestCaseData(new ConvolutionGeometry(3, 5, 11, 9, 4, 3, 3, 2, 2, 1, 1)).SetName("Conv_Stride2");
        yield return new TestCaseData(new ConvolutionGeometry(2, 16, 4, 4, 32, 1, 1, 1, 1, 0, 0)).SetName("Conv_1x1");
    }

    [TestCaseSource(nameof(Convolutions))]
    public void Convolution_AllThreePassesAndTheBias(ConvolutionGeometry g)
    {
        TestSupport.RequireVendorLibraries(_gpu);
        _gpu.ReserveWorkspace(_gpu.ConvolutionWorkspaceBytes(g));
        _cpu.ReserveWorkspace(_cpu.ConvolutionWorkspaceBytes(g));
        var x = Random(g.InputShape, 1);
        var w = Random(g.WeightShape, 2, (float)Math.Sqrt(2.0 / (g.C * g.R * g.S)));
        var b = Random(new Shape(g.K), 3);
        var dy = Random(g.OutputShape, 4);
        var y = Empty(g.OutputShape);
        var dx = Empty(g.InputShape);
        var dw = Empty(g.WeightShape);
        var db = Empty(new Shape(g.K));
        foreach (Backend be in new Backend[] { _gpu, _cpu })
        {
            bool gpu = be == _gpu;
            Tensor Of((Tensor Gpu, Tensor Cpu) t) => gpu ? t.Gpu : t.Cpu;
            be.ConvolutionForward(g, Of(x), Of(w), Of(b), Of(y));
            be.ConvolutionBackwardData(g, Of(dy), Of(w), Of(dx));
            be.ConvolutionBackwardFilter(g, Of(x), Of(dy), Of(dw), Of(db));
        }
        foreach (string plan in _gpu.ConvolutionPlans) TestContext.Out.WriteLine(plan);
        Close(y, Tolerances.ConvolutionForward, "forward + bias");
        Close(dx, Tolerances.ConvolutionBackwardData, "backward data");
        Close(dw, Tolerances.ConvolutionBackwardFilter, "backward filter");
        Close(db, Tolerances.ConvolutionBiasGradient, "bias gradient (double sums)");
    }

    private static IEnumerable<TestCaseData> NormalisationShapes()
    {
        yield return new TestCaseData(new Shape(16, 8, 40, 40)).SetName("BatchNorm_16x8x40x40_ManySegments");
        yield return new TestCaseData(new Shape(8, 512, 1, 1)).SetName("BatchNorm_8x512x1x1");
        yield return new TestCaseData(new Shape(33, 20)).SetName("BatchNorm_33x20_Rank2");
    }

    [TestCaseSource(nameof(NormalisationShapes))]
    public void BatchNorm_TrainingInferenceAndBackward(Shape shape)
    {
        int c = shape[1];
        var x = Pair(TestSupport.RandomFloats(checked((int)shape.ElementCount), 11, 3f).Select(v => v + 5f).ToArray(), shape); // a mean far from 0
        var gamma = Pair(TestSupport.RandomFloats(c, 12).Select(v => 1f + 0.5f * v).ToArray(), new Shape(c));
        var beta = Random(new Shape(c), 13);
        var rm = Random(new Shape(c), 14);
        var rv = Pair(TestSupport.RandomFloats(c, 15).Select(v => 1f + 0.5f * v).ToArray(), new Shape(c));
        var dy = Random(shape, 16);
        var y = Empty(shape);
        var dx = Empty(shape);
        var sm = Empty(new Shape(c));
        var si = Empty(new Shape(c));
        var dg = Empty(new Shape(c));
        var db = Empty(new Shape(c));
        var yi = Empty(shape);
        foreach (Backend be in new Backend[] { _gpu, _cpu })
        {
            bool gpu = be == _gpu;
            Tensor Of((Tensor Gpu, Tensor Cpu) t) => gpu ? t.Gpu : t.Cpu;
            be.BatchNormTrainingForward(Of(x), Of(gamma), Of(beta), Of(y), Of(rm), Of(rv), 0.1f, 1e-5f, Of(sm), Of(si));
            be.BatchNormBackward(Of(x), Of(dy), Of(gamma), Of(sm), Of(si), Of(dx), Of(dg), Of(db));
            be.BatchNormInferenceForward(Of(x), Of(gamma), Of(beta), Of(rm), Of(rv), 1e-5f, Of(yi));
        }
        Close(sm, Tolerances.BatchNormStatistics, "saved mean");
        Close(si, Tolerances.BatchNormStatistics, "saved inverse std");
        Close(rm, Tolerances.BatchNormStatistics, "running mean");
        Close(rv, Tolerances.BatchNormStatistics, "running variance (unbiased)");
        Close(y, Tolerances.BatchNormOutput, "y");
        Close(dg, Tolerances.BatchNormParameterGradient, "dgamma");
        Close(db, Tolerances.BatchNormParameterGradient, "dbeta");
        Close(dx, Tolerances.BatchNormInputGradient, "dx");
        Close(yi, Tolerances.BatchNormOutput, "inference y");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MaxPool_ForwardAndBackwardEqualTheCpu(bool withTies)
    {
        // VGG's 2x2/2 pooling; overlapping windows with padding; and overlapping windows whose last one ends before the
        // input does (11x9, 3x3 stride 2): the backward pass must clamp the windows an input belongs to at P-1 and Q-1.
        foreach (var g in new[] { new PoolGeometry(4, 64, 44, 44, 2, 2, 2, 2, 0, 0), new PoolGeometry(2, 3, 11, 9, 3, 2, 2, 1, 1, 0),
                     new PoolGeometry(2, 3, 11, 9, 3, 3, 2, 2, 0, 0) })
        {
            var values = TestSupport.RandomFloats(checked((int)g.InputShape.ElementCount), 21);
            if (withTies) values = values.Select(v => MathF.Round(v * 2) / 2).ToArray(); // five values: many equal maxima
            var x = Pair(values, g.InputShape);
            var dy = Random(g.OutputShape, 22);
            var y = Empty(g.OutputShape);
            var dx = Empty(g.InputShape);
            _gpu.MaxPoolForward(g, x.Gpu, y.Gpu);
            _gpu.MaxPoolBackward(g, x.Gpu, y.Gpu, dy.Gpu, dx.Gpu);
            _cpu.MaxPoolForward(g, x.Cpu, y.Cpu);
            _cpu.MaxPoolBackward(g, x.Cpu, y.Cpu, dy.Cpu, dx.Cpu);
            Equal(y, $"pool forward {g}");
            Equal(dx, $"pool backward {g}");
        }
    }

    [Test]
    public void Linear_ForwardAndBackward()
    {
        TestSupport.RequireVendorLibraries(_gpu);
        const int n = 33, fin = 512, fout = 253;
        var x = Random(new Shape(n, fin), 31);
        var w = Random(new Shape(fout, fin), 32, 0.05f);
        var b = Random(new Shape(fout), 33);
        var dy = Random(new Shape(n, fout), 34);
        var y = Empty(new Shape(n, fout));
        var dx = Empty(new Shape(n, fin));
        var dw = Empty(new Shape(fout, fin));
        var db = Empty(new Shape(fout));
        _gpu.LinearForward(x.Gpu, w.Gpu, b.Gpu, y.Gpu);
        _gpu.LinearBackward(x.Gpu, w.Gpu, dy.Gpu, dx.Gpu, dw.Gpu, db.Gpu);
        _cpu.LinearForward(x.Cpu, w.Cpu, b.Cpu, y.Cpu);
        _cpu.LinearBackward(x.Cpu, w.Cpu, dy.Cpu, dx.Cpu, dw.Cpu, db.Cpu);
        Close(y, Tolerances.Gemm, "y = x w^T + b");
        Close(dx, Tolerances.Gemm, "dx = dy w");
        Close(dw, Tolerances.Gemm, "dw = dy^T x");
        Equal(db, "db (column sums in double, rows in order)");
    }

    [TestCase(64, 7, "focal", false)]
    [TestCase(64, 7, "focal", true)]
    [TestCase(64, 7, "ldam", true)]
    [TestCase(300, 253, "offsets", true)]
    [TestCase(300, 253, "all", false)]
    public void AdjustedCrossEntropy(int rows, int k, string loss, bool weighted)
    {
        var z = Random(new Shape(rows, k), 43, 4f);
        var r = new Dicc.Engine.Randomness.RandomStream(44);
        var labels = Pair(Enumerable.Range(0, rows).Select(_ => r.NextInt(k)).ToArray(), new Shape(rows));
        var weights = Pair(Enumerable.Range(0, k).Select(_ => 0.1f + r.NextFloat()).ToArray(), new Shape(k));
        var offsets = Pair(Enumerable.Range(0, k).Select(_ => -3f * r.NextFloat()).ToArray(), new Shape(k));
        var margins = Pair(Enumerable.Range(0, k).Select(_ => 0.5f * r.NextFloat()).ToArray(), new Shape(k));
        bool withOffsets = loss is "offsets" or "all", withMargins = loss is "ldam" or "all";
        float scale = withMargins ? 30f : 1f, gamma = loss is "focal" or "all" ? 2f : 0f;
        var value = Empty(new Shape(1));
        var dz = Empty(new Shape(rows, k));
        _gpu.AdjustedSoftmaxCrossEntropy(z.Gpu, labels.Gpu, weighted ? weights.Gpu : null, withOffsets ? offsets.Gpu : null,
            withMargins ? margins.Gpu : null, scale, gamma, value.Gpu, dz.Gpu);
        _cpu.AdjustedSoftmaxCrossEntropy(z.Cpu, labels.Cpu, weighted ? weights.Cpu : null, withOffsets ? offsets.Cpu : null,
            withMargins ? margins.Cpu : null, scale, gamma, value.Cpu, dz.Cpu);
        Close(value, Tolerances.AdjustedCrossEntropyLoss, "loss");
        Close(dz, Tolerances.AdjustedCrossEntropyGradient.WithAtolScaled(scale * scale / rows), "dlogits");
    }

    [TestCase(64, 7)]
    [TestCase(33, 1000)]
    public void NormalizeRows_ForwardAndBackward(int rows, int f)
    {
        var x = Random(new Shape(rows, f), 45, 3f);
        var dy = Random(new Shape(rows, f), 46);
        var y = Empty(new Shape(rows, f));
        var norms = Empty(new Shape(rows));
        var dx = Empty(new Shape(rows, f));
        _gpu.NormalizeRows(x.Gpu, y.Gpu, norms.Gpu);
        _cpu.NormalizeRows(x.Cpu, y.Cpu, norms.Cpu);
        _gpu.NormalizeRowsBackward(y.Gpu, norms.Gpu, dy.Gpu, dx.Gpu);
        _cpu.NormalizeRowsBackward(y.Cpu, norms.Cpu, dy.Cpu, dx.Cpu);
        Close(norms, Tolerances.RowNormalization, "norms");
        Close(y, Tolerances.RowNormalization, "normalised rows");
        Close(dx, Tolerances.RowNormalization, "gradient");
    }

    [TestCase(64, 7, false)]
    [TestCase(300, 253, true)]
    public void SoftmaxAndCrossEntropy(int rows, int k, bool weighted)
    {
        var z = Random(new Shape(rows, k), 41, 4f);
        var r = new Dicc.Engine.Randomness.RandomStream(42);
        var labels = Pair(Enumerable.Range(0, rows).Select(_ => r.NextInt(k)).ToArray(), new Shape(rows));
        var weights = Pair(Enumerable.Range(0, k).Select(_ => 0.1f + r.NextFloat()).ToArray(), new Shape(k));
        var loss = Empty(new Shape(1));
        var dz = Empty(new Shape(rows, k));
        var p = Empty(new Shape(rows, k));
        _gpu.SoftmaxCrossEntropy(z.Gpu, labels.Gpu, weighted ? weights.Gpu : null, loss.Gpu, dz.Gpu);
        _cpu.SoftmaxCrossEntropy(z.Cpu, labels.Cpu, weighted ? weights.Cpu : null, loss.Cpu, dz.Cpu);
        _gpu.Softmax(z.Gpu, p.Gpu);
        _cpu.Softmax(z.Cpu, p.Cpu);
        Close(loss, Tolerances.CrossEntropyLoss, "loss");
        Close(dz, Tolerances.CrossEntropyGradient.WithAtolScaled(1f / rows), "dlogits");
        Close(p, Tolerances.Softmax, "softmax");
    }

    [Test]
    public void ElementwiseDropoutAndSgd_EqualTheCpuBitForBit()
    {
        const int n = 100_003;
        var x = Random(new Shape(n), 51);
        var dy = Random(new Shape(n), 52);
        var y = Empty(new Shape(n));
        var dx = Empty(new Shape(n));
        var mask = Empty(new Shape(n));
        var prod = Empty(new Shape(n));
        foreach (Backend be in new Backend[] { _gpu, _cpu })
        {
            bool gpu = be == _gpu;
            Tensor Of((Tensor Gpu, Tensor Cpu) t) => gpu ? t.Gpu : t.Cpu;
            be.ReluForward(Of(x), Of(y));
            be.ReluBackward(Of(y), Of(dy), Of(dx));
            be.DropoutForward(Of(x), Of(prod), Of(mask), 0.5f, 1234, 5UL << 32);
            be.Multiply(Of(dy), Of(mask), Of(dx));
        }
        Equal(y, "relu forward");
        Equal(mask, "dropout mask");
        Equal(prod, "dropout output");
        Equal(dx, "multiply");

        var w = Random(new Shape(n), 53);
        var g = Random(new Shape(n), 54);
        var v = Random(new Shape(n), 55);
        for (int step = 0; step < 3; step++)
        {
            _gpu.SgdStep(w.Gpu, g.Gpu, v.Gpu, 0.01f, 0.9f, 5e-4f, step == 2);
            _cpu.SgdStep(w.Cpu, g.Cpu, v.Cpu, 0.01f, 0.9f, 5e-4f, step == 2);
        }
        Equal(w, "SGD weights");
        Equal(v, "SGD momentum");
    }

    [Test]
    public void DatasetBatches_EqualTheCpu()
    {
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 20, ValidationPerClass = 0, TestPerClass = 0, Seed = 6 });
        var onGpu = new DeviceDataset(_gpu, data.Train);
        var onCpu = new DeviceDataset(_cpu, data.Train);
        var r = new Dicc.Engine.Randomness.RandomStream(7);
        var picks = Pair(Enumerable.Range(0, 64).Select(_ => r.NextInt(data.Train.Count)).ToArray(), new Shape(64));
        foreach (var mode in new[] { CropMode.Random, CropMode.Center, CropMode.TenCrop })
        {
            var shape = new Shape(64 * (mode == CropMode.TenCrop ? 10 : 1), 1, 44, 44);
            var crops = Empty(shape);
            _gpu.CropImages(onGpu.Images, picks.Gpu, crops.Gpu, mode, 44, 77, 123_456);
            _cpu.CropImages(onCpu.Images, picks.Cpu, crops.Cpu, mode, 44, 77, 123_456);
            Equal(crops, $"crops, {mode}");
        }
        var labels = (_gpu.Create(new Shape(64), DType.Int32), _cpu.Create(new Shape(64), DType.Int32));
        _gpu.Gather(onGpu.Labels, picks.Gpu, labels.Item1);
        _cpu.Gather(onCpu.Labels, picks.Cpu, labels.Item2);
        Assert.That(_gpu.ToArray<int>(labels.Item1), Is.EqualTo(_cpu.ToArray<int>(labels.Item2)));
    }

    [Test]
    public void MemoryFromThePool_IsReusedAfterFree_AndStaysZeroFilled()
    {
        _gpu.Create(new Shape(1000)).Storage.Dispose(); // a block of this size now exists in the pool
        long chunks = _gpu.DeviceAllocationCount;
        for (int i = 0; i < 50; i++)
        {
            var t = _gpu.Create(new Shape(1000));
            Assert.That(_gpu.ToArray(t), Is.All.EqualTo(0f));
            _gpu.Fill(t, 3f);
            t.Storage.Dispose();
        }
        Assert.That(_gpu.DeviceAllocationCount, Is.EqualTo(chunks), "freed blocks are reused without new cuMemAlloc calls");
    }
}
