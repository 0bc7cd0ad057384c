using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Tensors;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>The NVRTC-compiled kernels against the CPU backend's ops on the same inputs.</summary>
[Category("Gpu")]
public class GpuKernelTests : GpuFixture
{
    private DeviceKernels _kernels = null!;
    private CpuBackend _cpu = null!;
    private string _cacheDir = "";

    [OneTimeSetUp]
    public void LoadKernels()
    {
        // A private cache: the first load compiles with NVRTC, so this also checks NVRTC against the real device.
        _cacheDir = Path.Combine(Path.GetTempPath(), "dicc-gpu-kernels-" + Guid.NewGuid().ToString("N"));
        _kernels = DeviceKernels.Load(Context, new KernelModuleLoader(new KernelCache(_cacheDir), KernelModuleLoader.Default.PrebuiltDirectory));
        foreach (var m in _kernels.Modules) TestContext.Progress.WriteLine($"{m.Name}: {m.Origin}");
        _cpu = new CpuBackend(CpuPath.Reference); // the oracle: the kernels follow its arithmetic (docs/architecture.md)
    }

    [OneTimeTearDown]
    public void Cleanup()
    {
        _cpu?.Dispose();
        if (Directory.Exists(_cacheDir)) Directory.Delete(_cacheDir, true);
    }

    private Tensor Cpu(float[] data, params int[] shape)
    {
        var t = _cpu.Create(new Shape(shape));
        _cpu.CopyIn<float>(t, data);
        return t;
    }

    private float[] Read(CudaDeviceVariable<float> v)
    {
        Context.Stream.Synchronize();
        return v.ToArray();
    }

    /// <summary>Set by scripts/gpu-check.sh when it has built fatbins with nvcc: they must then be the ones used.</summary>
    private static bool ExpectPrebuilt => Environment.GetEnvironmentVariable("DICC_EXPECT_PREBUILT") == "1";

    [Test]
    public void EveryModule_LoadsFromAPrebuiltFatbinOrAFreshNvrtcCompile()
    {
        foreach (var m in _kernels.Modules)
            Assert.That(m.Origin, ExpectPrebuilt ? Does.StartWith("prebuilt") : Does.StartWith("prebuilt").Or.StartWith("NVRTC"), m.Name);
    }

    [Test]
    public void KernelsFromACacheHit_LoadAndRun()
    {
        var again = DeviceKernels.Load(Context, new KernelModuleLoader(new KernelCache(_cacheDir), prebuiltDirectory: null));
        Assert.That(again.Modules.Select(m => m.Origin), Has.All.StartWith("cache"));
        using var x = Context.Allocate<float>(5);
        again.Elementwise.Fill(null, x.DevicePointer, 4.25f, 5);
        Assert.That(Read(x), Is.All.EqualTo(4.25f));
    }

    [TestCase(1)]
    [TestCase(1000)]
    [TestCase(1_000_003)]
    public void FillReluMultiply_MatchTheCpuBitForBit(int n)
    {
        var xs = TestSupport.RandomFloats(n, 11);
        var dys = TestSupport.RandomFloats(n, 12);
        using var x = Upload(xs);
        using var dy = Upload(dys);
        using var y = Context.Allocate<float>(n);
        using var dx = Context.Allocate<float>(n);
        using var prod = Context.Allocate<float>(n);
        _kernels.Elementwise.ReluForward(null, x.DevicePointer, y.DevicePointer, n);
        _kernels.Elementwise.ReluBackward(null, y.DevicePointer, dy.DevicePointer, dx.DevicePointer, n);
        _kernels.Elementwise.Multiply(null, x.DevicePointer, dy.DevicePointer, prod.DevicePointer, n);

        Tensor cx = Cpu(xs, n), cdy = Cpu(dys, n), cy = _cpu.Create(new Shape(n)), cdx = _cpu.Create(new Shape(n)), cp = _cpu.Create(new Shape(n));
        _cpu.ReluForward(cx, cy);
        _cpu.ReluBackward(cy, cdy, cdx);
        _cpu.Multiply(cx, cdy, cp);
        Assert.That(Read(y), Is.EqualTo(_cpu.ToArray(cy)));
        Assert.That(Read(dx), Is.EqualTo(_cpu.ToArray(cdx)));
        Assert.That(Read(prod), Is.EqualTo(_cpu.ToArray(cp)));

        _kernels.Elementwise.Fill(null, y.DevicePointer, -0.375f, n);
        Assert.That(Read(y), Is.All.EqualTo(-0.375f));
    }

    [TestCase(1000, 0.5f, 42UL, 0UL)]
    [TestCase(1003, 0.1f, 7UL, 5UL)]
    [TestCase(4096 * 33 + 1, 0.5f, 123456789UL, 1UL << 33)]
    public void Dropout_MaskIsIdenticalToTheCpuBackendsForTheSameSeedAndOffset(int n, float p, ulong seed, ulong offset)
    {
        var xs = TestSupport.RandomFloats(n, 21);
        using var x = Upload(xs);
        using var y = Context.Allocate<float>(n);
        using var mask = Context.Allocate<float>(n);
        _kernels.Dropout.Forward(null, x.DevicePointer, y.DevicePointer, mask.DevicePointer, n, p, seed, offset);

        Tensor cx = Cpu(xs, n), cy = _cpu.Create(new Shape(n)), cm = _cpu.Create(new Shape(n));
        _cpu.DropoutForward(cx, cy, cm, p, seed, offset);
        var gpuMask = Read(mask);
        Assert.That(gpuMask, Is.EqualTo(_cpu.ToArray(cm)));
        Assert.That(Read(y), Is.EqualTo(_cpu.ToArray(cy)));
        double kept = gpuMask.Count(m => m != 0) / (double)n;
        Assert.That(kept, Is.EqualTo(1 - p).Within(0.05), "about 1 - p of the values are kept");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void SgdStep_MatchesTheCpuBitForBitOverSeveralSteps(bool nesterov)
    {
        const int n = 10_007;
        var w0 = TestSupport.RandomFloats(n, 31);
        using var w = Upload(w0);
        using var v = Context.Allocate<float>(n);
        v.Memset(0);
        Tensor cw = Cpu(w0, n), cv = _cpu.Create(new Shape(n)), cg = _cpu.Create(new Shape(n));
        for (int step = 0; step < 3; step++)
        {
            var gs = TestSupport.RandomFloats(n, 100 + (ulong)step);
            using var g = Upload(gs);
            _kernels.Optimizer.SgdStep(null, w.DevicePointer, g.DevicePointer, v.DevicePointer, n, 0.01f, 0.9f, 5e-4f, nesterov);
            _cpu.CopyIn<float>(cg, gs);
            _cpu.SgdStep(cw, cg, cv, 0.01f, 0.9f, 5e-4f, nesterov);
        }
        Assert.That(Read(w), Is.EqualTo(_cpu.ToArray(cw)));
        Assert.That(Read(v), Is.EqualTo(_cpu.ToArray(cv)));
    }

    [TestCase(1, 7)]
    [TestCase(128, 7)]
    [TestCase(33, 250)]
    [TestCase(4, 3000)]
    public void Softmax_MatchesTheCpu(int rows, int k)
    {
        var zs = TestSupport.RandomFloats(rows * k, 41, scale: 8f);
        using var z = Upload(zs);
        using var p = Context.Allocate<float>(rows * k);
        _kernels.Softmax.Softmax(null, z.DevicePointer, p.DevicePointer, rows, k);
        Tensor cz = Cpu(zs, rows, k), cp = _cpu.Create(new Shape(rows, k));
        _cpu.Softmax(cz, cp);
        // Float sums over up to k/128 + 7 terms per row against the CPU's double sum: a few ulp.
        Parity.AssertClose(Read(p), _cpu.ToArray(cp), Tolerances.Softmax, "softmax");
    }

    [TestCase(128, 7, false)]
    [TestCase(128, 7, true)]
    [TestCase(50, 300, true)]
    public void SoftmaxCrossEntropy_LossAndGradientMatchTheCpu(int rows, int k, bool weighted)
    {
        var zs = TestSupport.RandomFloats(rows * k, 51, scale: 5f);
        var r = new Dicc.Engine.Randomness.RandomStream(52);
        var labels = Enumerable.Range(0, rows).Select(_ => r.NextInt(k)).ToArray();
        var weights = Enumerable.Range(0, k).Select(j => 0.25f + (j % 5) * 0.5f).ToArray();

        using var z = Upload(zs);
        using var y = Upload(labels);
        using var w = Upload(weights);
        using var loss = Context.Allocate<float>(1);
        using var dz = Context.Allocate<float>(rows * k);
        using var ws = Context.Allocate<float>(SoftmaxKernels.CrossEntropyWorkspaceFloats(rows));
        using var status = Context.Allocate<int>(1);
        _kernels.Softmax.CrossEntropy(null, z.DevicePointer, y.DevicePointer, weighted ? w.DevicePointer : DevicePointer.Null,
            loss.DevicePointer, dz.DevicePointer, ws.DevicePointer, status.DevicePointer, rows, k, DevicePointer.Null);

        Tensor cz = Cpu(zs, rows, k), cy = _cpu.Create(new Shape(rows), DType.Int32), cw = Cpu(weights, k);
        _cpu.CopyIn<int>(cy, labels);
        Tensor closs = _cpu.Create(new Shape(1)), cdz = _cpu.Create(new Shape(rows, k));
        _cpu.SoftmaxCrossEntropy(cz, cy, weighted ? cw : null, closs, cdz);

        Context.Stream.Synchronize();
        Assert.That(status.ToArray()[0], Is.Zero, "all labels valid");
        Parity.AssertClose(Read(loss), _cpu.ToArray(closs), Tolerances.CrossEntropyLoss, "loss");
        Parity.AssertClose(Read(dz), _cpu.ToArray(cdz), Tolerances.CrossEntropyGradient.WithAtolScaled(1f / rows), "dlogits");
    }

    [Test]
    public void RowBiasAndColumnSums_EqualTheCpuLinearLayerBitForBit()
    {
        const int rows = 33, cols = 253;
        var y0 = TestSupport.RandomFloats(rows * cols, 71);
        var bias = TestSupport.RandomFloats(cols, 72);
        var dy = TestSupport.RandomFloats(rows * cols, 73);
        using var y = Upload(y0);
        using var b = Upload(bias);
        using var g = Upload(dy);
        using var sums = Context.Allocate<float>(cols);
        _kernels.Bias.AddRowBias(null, y.DevicePointer, b.DevicePointer, rows, cols);
        _kernels.Bias.ColumnSums(null, g.DevicePointer, sums.DevicePointer, rows, cols);

        // The CPU linear layer with x = I and w = y0^T computes y0 exactly, then adds the bias; its bias gradient is
        // the column sums of dy.
        var identity = new float[rows * rows];
        for (int i = 0; i < rows; i++) identity[i * rows + i] = 1f;
        var transposed = new float[cols * rows];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) transposed[j * rows + i] = y0[i * cols + j];
        Tensor cx = Cpu(identity, rows, rows), cw = Cpu(transposed, cols, rows), cb = Cpu(bias, cols), cy = _cpu.Create(new Shape(rows, cols));
        Tensor cdy = Cpu(dy, rows, cols), cdx = _cpu.Create(new Shape(rows, rows)), cdw = _cpu.Create(new Shape(cols, rows)), cdb = _cpu.Create(new Shape(cols));
        _cpu.LinearForward(cx, cw, cb, cy);
        _cpu.LinearBackward(cx, cw, cdy, cdx, cdw, cdb);
        Parity.AssertBitwise(Read(y), _cpu.ToArray(cy), "add_row_bias_f32");
        Parity.AssertBitwise(Read(sums), _cpu.ToArray(cdb), "column_sums_f32 (double sums, rows in order)");
    }

    [TestCase(5, 7, 9, 11)]
    [TestCase(64, 3, 44, 44)] // many segments per channel
    public void ChannelBiasAndChannelSums_EqualTheCpuConvolutionBias(int n, int channels, int h, int w)
    {
        int spatial = h * w, count = n * channels * spatial;
        var x0 = TestSupport.RandomFloats(count, 81);
        var bias = TestSupport.RandomFloats(channels, 82);
        var dy = TestSupport.RandomFloats(count, 83);
        using var y = Upload(x0);
        using var b = Upload(bias);
        using var g = Upload(dy);
        using var sums = Context.Allocate<float>(channels);
        using var workspace = Context.Allocate<byte>(BiasKernels.ChannelSumsWorkspaceBytes(n, channels, spatial));
        _kernels.Bias.AddChannelBias(null, y.DevicePointer, b.DevicePointer, n, channels, spatial);
        _kernels.Bias.ChannelSums(null, g.DevicePointer, sums.DevicePointer, n, channels, spatial, workspace.DevicePointer);

        // The CPU convolution with a 1x1 identity filter computes x exactly, then adds the bias; its bias gradient is
        // the channel sums of dy.
        var geometry = new Dicc.Engine.Backends.ConvolutionGeometry(n, channels, h, w, channels, 1, 1, 1, 1, 0, 0);
        var identity = new float[channels * channels];
        for (int c = 0; c < channels; c++) identity[c * channels + c] = 1f;
        Tensor cx = Cpu(x0, n, channels, h, w), cw = Cpu(identity, channels, channels, 1, 1), cb = Cpu(bias, channels);
        Tensor cy = _cpu.Create(geometry.OutputShape), cdy = Cpu(dy, n, channels, h, w), cdw = _cpu.Create(geometry.WeightShape), cdb = _cpu.Create(new Shape(channels));
        _cpu.ReserveWorkspace(_cpu.ConvolutionWorkspaceBytes(geometry));
        _cpu.ConvolutionForward(geometry, cx, cw, cb, cy);
        _cpu.ConvolutionBackwardFilter(geometry, cx, cdy, cdw, cdb);
        Parity.AssertBitwise(Read(y), _cpu.ToArray(cy), "add_channel_bias_f32");
        // Both sum in double; the kernel's segments add the partial sums in another order than the CPU's loop.
        Parity.AssertClose(Read(sums), _cpu.ToArray(cdb), Tolerances.ConvolutionBiasGradient, "channel_partial_sums_f32 + channel_sums_finalize_f32");
    }

    [Test]
    public void SoftmaxCrossEntropy_InvalidLabel_IsReportedAndPoisonsTheLoss()
    {
        const int rows = 6, k = 4;
        using var z = Upload(TestSupport.RandomFloats(rows * k, 61));
        using var y = Upload(new[] { 0, 1, 2, 4, 3, -1 }); // row 3 is the first invalid one
        using var loss = Context.Allocate<float>(1);
        using var ws = Context.Allocate<float>(SoftmaxKernels.CrossEntropyWorkspaceFloats(rows));
        using var status = Context.Allocate<int>(1);
        _kernels.Softmax.CrossEntropy(null, z.DevicePointer, y.DevicePointer, DevicePointer.Null, loss.DevicePointer,
            DevicePointer.Null, ws.DevicePointer, status.DevicePointer, rows, k, DevicePointer.Null);
        Context.Stream.Synchronize();
        Assert.That(rows - status.ToArray()[0], Is.EqualTo(3));
        Assert.That(float.IsNaN(loss.ToArray()[0]), Is.True);
    }
}
