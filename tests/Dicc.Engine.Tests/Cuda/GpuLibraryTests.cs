using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Tensors;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>cuBLAS SGEMM against the CPU GEMM (Backends/Cpu/Gemm.cs), full float32 math.</summary>
[Category("Gpu")]
public unsafe class GpuBlasTests : GpuFixture
{
    private CublasContext _blas = null!;

    [OneTimeSetUp]
    public void CreateHandle()
    {
        TestSupport.RequireLibraryOrIgnore(CudaLibrary.Cublas);
        _blas = new CublasContext(Context);
        var (major, minor, patch) = CublasContext.Version;
        TestContext.Progress.WriteLine($"cuBLAS {major}.{minor}.{patch}");
    }

    private static float[] CpuGemm(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb,
        float beta, float[] c0, int ldc)
    {
        var c = (float[])c0.Clone();
        fixed (float* pa = a, pb = b, pc = c) Gemm.Sgemm(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        return c;
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void GemmRowMajor_MatchesTheCpuGemm(bool transA, bool transB)
    {
        const int m = 37, n = 53, k = 71, pad = 3;
        int lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad;
        var a = TestSupport.RandomFloats((transA ? k : m) * lda, 71);
        var b = TestSupport.RandomFloats((transB ? n : k) * ldb, 72);
        var c = TestSupport.RandomFloats(m * ldc, 73);
        var expected = CpuGemm(transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, c, ldc);

        using var da = Upload(a);
        using var db = Upload(b);
        using var dc = Upload(c);
        _blas.GemmRowMajor(transA, transB, m, n, k, 0.75f, da.DevicePointer, lda, db.DevicePointer, ldb, 0.5f, dc.DevicePointer, ldc);
        // k = 71 products of values in [-1, 1): float32 accumulation differs by a few ulp of the sum.
        Parity.AssertClose(dc.ToArray(), expected, Tolerances.Gemm, $"sgemm transA={transA} transB={transB}");
    }

    [Test]
    public void StridedBatched_EqualsOneGemmPerBatch()
    {
        const int m = 16, n = 24, k = 32, batches = 5;
        var a = TestSupport.RandomFloats(m * k * batches, 81);
        var b = TestSupport.RandomFloats(k * n * batches, 82);
        using var da = Upload(a);
        using var db = Upload(b);
        using var dc = Context.Allocate<float>(m * n * batches);
        // Row-major C_i = A_i B_i is column-major C_i^T = B_i^T A_i^T: swap operands, as GemmRowMajor does.
        _blas.SgemmStridedBatched(CublasOperation.NonTranspose, CublasOperation.NonTranspose, n, m, k, 1f,
            db.DevicePointer, n, (long)k * n, da.DevicePointer, k, (long)m * k, 0f, dc.DevicePointer, n, (long)m * n, batches);
        var got = dc.ToArray();
        for (int i = 0; i < batches; i++)
        {
            var expected = CpuGemm(false, false, m, n, k, 1f, a[(i * m * k)..((i + 1) * m * k)], k, b[(i * k * n)..((i + 1) * k * n)], n,
                0f, new float[m * n], n);
            Parity.AssertClose(got.AsSpan(i * m * n, m * n), expected, Tolerances.Gemm, $"batch {i}");
        }
    }

    [Test]
    public void GemmEx_WithFloat32Compute_EqualsSgemm()
    {
        const int m = 20, n = 30, k = 40;
        var a = TestSupport.RandomFloats(m * k, 91);
        var b = TestSupport.RandomFloats(k * n, 92);
        using var da = Upload(a);
        using var db = Upload(b);
        using var c1 = Context.Allocate<float>(m * n);
        using var c2 = Context.Allocate<float>(m * n);
        _blas.Sgemm(CublasOperation.NonTranspose, CublasOperation.NonTranspose, n, m, k, 1f, db.DevicePointer, n, da.DevicePointer, k, 0f, c1.DevicePointer, n);
        _blas.GemmEx(CublasOperation.NonTranspose, CublasOperation.NonTranspose, n, m, k, 1f, db.DevicePointer, CudaDataType.Float32, n,
            da.DevicePointer, CudaDataType.Float32, k, 0f, c2.DevicePointer, CudaDataType.Float32, n);
        Parity.AssertClose(c2.ToArray(), c1.ToArray(), Tolerances.GemmExAgainstSgemm, "GemmEx vs Sgemm");
    }
}

/// <summary>cuDNN against the CPU backend: convolution (all three passes), batch normalisation, max pooling, ReLU.</summary>
[Category("Gpu")]
public class GpuDnnTests : GpuFixture
{
    private CudnnContext _dnn = null!;
    private CpuBackend _cpu = null!;

    [OneTimeSetUp]
    public void CreateHandle()
    {
        TestSupport.RequireLibraryOrIgnore(CudaLibrary.Cudnn);
        _dnn = new CudnnContext(Context);
        _cpu = new CpuBackend(CpuPath.Reference); // the oracle: the kernels follow its arithmetic (docs/architecture.md)
        TestContext.Progress.WriteLine($"cuDNN {CudnnContext.FormatVersion(CudnnContext.Version)}");
    }

    [OneTimeTearDown]
    public void DisposeCpu() => _cpu?.Dispose();

    private Tensor Cpu(float[] data, Shape shape)
    {
        var t = _cpu.Create(shape);
        _cpu.CopyIn<float>(t, data);
        return t;
    }

    private static IEnumerable<TestCaseData> Geometries()
    {
        yield return new TestCaseData(new ConvolutionGeometry(2, 3, 12, 12, 8, 3, 3, 1, 1, 1, 1)).SetName("Conv3x3_Pad1");
        yield return new TestCaseData(new ConvolutionGeometry(3, 5, 11, 9, 4, 3, 3, 2, 2, 1, 1)).SetName("Conv3x3_Stride2");
        yield return new TestCaseData(new ConvolutionGeometry(2, 16, 4, 4, 32, 1, 1, 1, 1, 0, 0)).SetName("Conv1x1");
    }

    [TestCaseSource(nameof(Geometries))]
    public void Convolution_AllThreePassesMatchTheCpu(ConvolutionGeometry g)
    {
        var xs = TestSupport.RandomFloats((int)g.InputShape.ElementCount, 101);
        var wts = TestSupport.RandomFloats((int)g.WeightShape.ElementCount, 102, 0.5f);
        var bs = TestSupport.RandomFloats(g.K, 103);
        var dys = TestSupport.RandomFloats((int)g.OutputShape.ElementCount, 104);

        var plan = _dnn.PlanConvolution(g);
        TestContext.Out.WriteLine(plan);
        using var ws = Context.Allocate<byte>(Math.Max(1, plan.WorkspaceBytes));
        using var x = Upload(xs);
        using var w = Upload(wts);
        using var b = Upload(bs);
        using var dy = Upload(dys);
        using var y = Context.Allocate<float>(g.OutputShape.ElementCount);
        using var dx = Context.Allocate<float>(g.InputShape.ElementCount);
        using var dw = Context.Allocate<float>(g.WeightShape.ElementCount);
        using var db = Context.Allocate<float>(g.K);
        _dnn.ConvolutionForward(plan, x.DevicePointer, w.DevicePointer, b.DevicePointer, y.DevicePointer, ws.DevicePointer, ws.SizeInBytes);
        _dnn.ConvolutionBackwardData(plan, dy.DevicePointer, w.DevicePointer, dx.DevicePointer, ws.DevicePointer, ws.SizeInBytes);
        _dnn.ConvolutionBackwardFilter(plan, x.DevicePointer, dy.DevicePointer, dw.DevicePointer, db.DevicePointer, ws.DevicePointer, ws.SizeInBytes);

        Tensor cx = Cpu(xs, g.InputShape), cw = Cpu(wts, g.WeightShape), cb = Cpu(bs, new Shape(g.K)), cdy = Cpu(dys, g.OutputShape);
        Tensor cy = _cpu.Create(g.OutputShape), cdx = _cpu.Create(g.InputShape), cdw = _cpu.Create(g.WeightShape), cdb = _cpu.Create(new Shape(g.K));
        _cpu.ConvolutionForward(g, cx, cw, cb, cy);
        _cpu.ConvolutionBackwardData(g, cdy, cw, cdx);
        _cpu.ConvolutionBackwardFilter(g, cx, cdy, cdw, cdb);

        // Sums of C*R*S (forward, backward-data: K*R*S) or N*P*Q (filter) products; float32 math, any order.
        Parity.AssertClose(y.ToArray(), _cpu.ToArray(cy), Tolerances.ConvolutionForward, "forward");
        Parity.AssertClose(dx.ToArray(), _cpu.ToArray(cdx), Tolerances.ConvolutionBackwardData, "backward data");
        Parity.AssertClose(dw.ToArray(), _cpu.ToArray(cdw), Tolerances.ConvolutionBackwardFilter, "backward filter");
        Parity.AssertClose(db.ToArray(), _cpu.ToArray(cdb), Tolerances.CudnnBiasGradient, "bias gradient");
    }
}
