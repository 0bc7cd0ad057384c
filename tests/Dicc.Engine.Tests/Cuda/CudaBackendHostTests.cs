using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Clustering;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>The CUDA backend's host-side logic, checked without a GPU.</summary>
public class CudaBackendHostTests
{
    // ---- memory pool bookkeeping ------------------------------------------------------------------

    [Test]
    public void BlockAllocator_RandomAllocationsNeverOverlapAndFreeingEverythingLeavesWholeChunks()
    {
        var blocks = new BlockAllocator();
        var r = new RandomStream(5);
        var live = new List<Block>();
        for (int step = 0; step < 4000; step++)
        {
            if (live.Count > 0 && r.NextInt(3) == 0)
            {
                int k = r.NextInt(live.Count);
                blocks.Free(live[k]);
                live.RemoveAt(k);
            }
            else
            {
                long bytes = 1 + r.NextInt(r.NextInt(2) == 0 ? 1000 : 300_000);
                var b = blocks.TryAllocate(bytes);
                if (b is null)
                {
                    blocks.AddChunk(BlockAllocator.RoundUp(Math.Max(bytes, 1 << 20)));
                    b = blocks.TryAllocate(bytes);
                }
                Assert.That(b, Is.Not.Null);
                Assert.That(b!.Value.Offset % BlockAllocator.Alignment, Is.Zero);
                Assert.That(b.Value.Size, Is.GreaterThanOrEqualTo(bytes));
                live.Add(b.Value);
            }
            if (step % 200 == 0) CheckInvariants(blocks, live);
        }
        CheckInvariants(blocks, live);
        foreach (var b in live) blocks.Free(b);
        Assert.That(blocks.UsedBytes, Is.Zero);
        Assert.That(blocks.FreeBlocks, Has.Count.EqualTo(blocks.ChunkCount), "each chunk coalesces back into one free block");
        Assert.That(blocks.FreeBlocks.All(f => f.Offset == 0), Is.True);
    }

    private static void CheckInvariants(BlockAllocator blocks, List<Block> live)
    {
        var all = live.Select(b => (b.Chunk, b.Offset, b.Size, Free: false)).Concat(blocks.FreeBlocks.Select(f => (f.Chunk, f.Offset, f.Size, Free: true)))
            .OrderBy(b => b.Chunk).ThenBy(b => b.Offset).ToList();
        for (int i = 1; i < all.Count; i++)
        {
            if (all[i].Chunk != all[i - 1].Chunk) continue;
            Assert.That(all[i - 1].Offset + all[i - 1].Size, Is.EqualTo(all[i].Offset), "blocks tile each chunk without gaps or overlaps");
            Assert.That(all[i - 1].Free && all[i].Free, Is.False, "no two free blocks are adjacent (they are merged)");
        }
        Assert.That(all.Sum(b => b.Size), Is.EqualTo(blocks.ChunkBytes));
        Assert.That(blocks.UsedBytes, Is.EqualTo(live.Sum(b => b.Size)));
    }

    [Test]
    public void BlockAllocator_TakesTheSmallestFreeBlockThatFits_AndRejectsADoubleFree()
    {
        var blocks = new BlockAllocator();
        blocks.AddChunk(4096);
        var a = blocks.TryAllocate(256)!.Value;
        var b = blocks.TryAllocate(1024)!.Value;
        var c = blocks.TryAllocate(256)!.Value;
        var d = blocks.TryAllocate(512)!.Value;
        blocks.Free(b); // a 1024-byte hole at 256
        blocks.Free(d); // merges with the free tail: 2560 bytes at 1536
        var e = blocks.TryAllocate(1000)!.Value;
        Assert.That(e.Offset, Is.EqualTo(256), "best fit is the 1024 hole, not the larger tail");
        Assert.That(blocks.TryAllocate(1 << 20), Is.Null, "nothing holds a megabyte");
        blocks.Free(e);
        Assert.Throws<InvalidOperationException>(() => blocks.Free(e), "freed twice");
        Assert.That((a.Offset, c.Offset), Is.EqualTo((0L, 1280L)));
    }

    // ---- cuBLAS call mapping ------------------------------------------------------------------------

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void ColumnMajorGemm_OfARowMajorProduct_ComputesTheSameMatrix(bool transA, bool transB)
    {
        const int m = 5, n = 7, k = 3, pad = 2;
        int lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad;
        var a = TestSupport.RandomFloats((transA ? k : m) * lda, 1);
        var b = TestSupport.RandomFloats((transB ? n : k) * ldb, 2);
        // Row-major reference: C[i, j] = sum_p op(A)[i, p] op(B)[p, j].
        var expected = new double[m * ldc];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++)
                    expected[i * ldc + j] += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);

        // The mapped call, evaluated as cuBLAS defines it: column-major, element (r, c) of X at X[c * ld + r].
        var g = ColumnMajorGemm.FromRowMajor(transA, transB, m, n, k, lda, ldb, ldc);
        float[] first = g.FirstIsB ? b : a, second = g.FirstIsB ? a : b;
        var actual = new double[m * ldc];
        for (int r = 0; r < g.M; r++)
            for (int c = 0; c < g.N; c++)
                for (int p = 0; p < g.K; p++)
                {
                    double x = g.TransA == CublasOperation.Transpose ? first[r * g.Lda + p] : first[p * g.Lda + r];
                    double y = g.TransB == CublasOperation.Transpose ? second[p * g.Ldb + c] : second[c * g.Ldb + p];
                    actual[c * g.Ldc + r] += x * y;
                }
        Assert.That(actual, Is.EqualTo(expected).Within(1e-12));
    }

    // ---- device status: the same exceptions as the CPU ----------------------------------------------

    private static void AssertSameException(Exception cpu, DeviceStatusRecord record)
    {
        var gpu = record.ToException();
        Assert.That(gpu.GetType(), Is.EqualTo(cpu.GetType()));
        Assert.That(gpu.Message, Is.EqualTo(cpu.Message));
        if (cpu is ArgumentException ca) Assert.That(((ArgumentException)gpu).ParamName, Is.EqualTo(ca.ParamName));
        if (cpu is ArgumentOutOfRangeException co) Assert.That(((ArgumentOutOfRangeException)gpu).ActualValue, Is.EqualTo(co.ActualValue));
    }

    [Test]
    public void StatusRecords_BecomeTheCpuBackendsExceptions()
    {
        using var cpu = new CpuBackend(CpuPath.Reference); // the oracle: the kernels follow its arithmetic (docs/architecture.md)
        var logits = cpu.Create(new Shape(3, 4));
        var labels = cpu.Create(new Shape(3), DType.Int32);
        cpu.CopyIn<int>(labels, [0, 5, 7]);
        var loss = cpu.Create(new Shape(1));
        AssertSameException(Assert.Catch(() => cpu.SoftmaxCrossEntropy(logits, labels, null, loss, null))!,
            new DeviceStatusRecord(DeviceStatusKind.CrossEntropyLabel, 1, 5, 4));

        var values = cpu.Create(new Shape(4), DType.Int32);
        var indices = cpu.Create(new Shape(3), DType.Int32);
        cpu.CopyIn<int>(indices, [3, -2, 9]);
        var gathered = cpu.Create(new Shape(3), DType.Int32);
        AssertSameException(Assert.Catch(() => cpu.Gather(values, indices, gathered))!,
            new DeviceStatusRecord(DeviceStatusKind.GatherIndex, 1, -2, 4));

        var images = cpu.Create(new Shape(3, 48, 48), DType.UInt8);
        var crops = cpu.Create(new Shape(3, 1, 44, 44));
        cpu.CopyIn<int>(indices, [0, 3, 1]);
        AssertSameException(Assert.Catch(() => cpu.CropImages(images, indices, crops, CropMode.Center, 44))!,
            new DeviceStatusRecord(DeviceStatusKind.CropIndex, 1, 3, 3));
    }

    [Test]
    public void ClusteringStatusRecords_BecomeTheReferencesExceptions()
    {
        var plan = SubclassPlan.FromCounts([2, 3]);
        var reference = new IntraClassClustering(new ClusteringConfig(plan, 4));
        var features = new float[3 * 4];
        var pseudo = new int[3];
        AssertSameException(Assert.Catch(() => reference.Assign(features, [1, 2, 0], pseudo))!,
            new DeviceStatusRecord(DeviceStatusKind.ClusterLabel, 1, 2, 2));
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            features[2 * 4 + 3] = bad;
            AssertSameException(Assert.Catch(() => reference.Assign(features, [1, 0, 1], pseudo))!,
                new DeviceStatusRecord(DeviceStatusKind.ClusterNonFinite, 2, 3, 1, BitConverter.SingleToInt32Bits(bad)));
        }
    }

    [Test]
    public void StatusKinds_AreTheKernelHeadersValues()
    {
        string header = Dicc.Engine.Backends.Cuda.Compilation.KernelSources.Header;
        foreach (var (name, kind) in new[]
                 {
                     ("CROSS_ENTROPY_LABEL", DeviceStatusKind.CrossEntropyLabel), ("GATHER_INDEX", DeviceStatusKind.GatherIndex),
                     ("CROP_INDEX", DeviceStatusKind.CropIndex), ("CLUSTER_LABEL", DeviceStatusKind.ClusterLabel),
                     ("CLUSTER_NON_FINITE", DeviceStatusKind.ClusterNonFinite),
                 })
            Assert.That(header, Does.Contain($"#define DICC_STATUS_{name} {(int)kind}\n"), name);
        Assert.That(System.Runtime.InteropServices.Marshal.SizeOf<DeviceStatusRecord>(), Is.EqualTo(DeviceStatusRecord.SizeInBytes));
    }

    // ---- convolution plan cache ---------------------------------------------------------------------

    [Test]
    public void ConvolutionPlanKeys_DifferInEveryGeometryField()
    {
        // CudaBackend caches one cuDNN plan per ConvolutionGeometry: any field that changes the convolution must change the key.
        int[] values = [8, 64, 44, 44, 128, 3, 3, 1, 1, 1, 1];
        var baseKey = new ConvolutionGeometry(8, 64, 44, 44, 128, 3, 3, 1, 1, 1, 1);
        var plans = new Dictionary<ConvolutionGeometry, int> { [baseKey] = 0 };
        var ctor = typeof(ConvolutionGeometry).GetConstructors().Single(c => c.GetParameters().Length == values.Length);
        for (int field = 0; field < values.Length; field++)
        {
            var changed = values.Select((v, i) => (object)(i == field ? v + 1 : v)).ToArray();
            var key = (ConvolutionGeometry)ctor.Invoke(changed);
            Assert.That(key, Is.Not.EqualTo(baseKey), ctor.GetParameters()[field].Name);
            Assert.That(plans.TryAdd(key, field + 1), Is.True, $"{ctor.GetParameters()[field].Name} must select another plan");
        }
        Assert.That(plans.ContainsKey(new ConvolutionGeometry(8, 64, 44, 44, 128, 3, 3, 1, 1, 1, 1)), Is.True, "an equal geometry finds its plan");
    }

    // ---- launch shapes ------------------------------------------------------------------------------

    [Test]
    public void ReductionSegments_DependOnTheShapeOnly_AndStayInRange()
    {
        Assert.That(LaunchShapes.Segments(1), Is.EqualTo(1));
        Assert.That(LaunchShapes.Segments(LaunchShapes.ValuesPerSegment), Is.EqualTo(1));
        Assert.That(LaunchShapes.Segments(LaunchShapes.ValuesPerSegment + 1), Is.EqualTo(2));
        Assert.That(LaunchShapes.Segments(256L * 44 * 44), Is.EqualTo(61), "VGG's first layer at batch 256: 61 blocks per channel");
        Assert.That(LaunchShapes.Segments(1L << 40), Is.EqualTo(LaunchShapes.MaxSegments));
    }

    [Test]
    public void FusedClustering_IsUsedWhileItsSharedMemoryFits()
    {
        // 7 classes of 512-wide features: sums take 28 KiB, so about 1200 samples fit beside them.
        Assert.That(LaunchShapes.UsesFusedClustering(256, 7, 512), Is.True);
        Assert.That(LaunchShapes.UsesFusedClustering(1024, 7, 512), Is.True);
        Assert.That(LaunchShapes.UsesFusedClustering(2048, 7, 512), Is.False);
        Assert.That(LaunchShapes.UsesFusedClustering(32, 7, 4096), Is.False, "wide features leave no room");
        Assert.That(LaunchShapes.FusedClusteringSharedBytes(10, 2, 3), Is.EqualTo(8 * (6 + 10 + 2) + 4 * (4 + 10 + 4)));
    }

    // ---- choosing and creating the backend ----------------------------------------------------------

    [Test]
    public void OldGpus_AreRejectedWithAMessageThatSaysWhatToDo()
    {
        static CudaDeviceInfo Gpu(int major, int minor) => new(0, "Test GPU", major, minor, 8L << 30, 20, 1024, 48 << 10, 96 << 10, 32, 1 << 20, 1, 1, 256);
        string? problem = CudaBackend.SupportProblem(Gpu(6, 1));
        Assert.That(problem, Does.Contain("Test GPU").And.Contain("6.1").And.Contain("7.0").And.Contain("Use the CPU"));
        Assert.That(CudaBackend.SupportProblem(Gpu(7, 0)), Is.Null);
        Assert.That(CudaBackend.SupportProblem(Gpu(9, 0)), Is.Null);
    }

    [Test]
    public void DeviceCuda_GivesTheCudaBackendOrAnInputErrorNamingTheFallback()
    {
        if (CudaBackend.IsAvailable())
        {
            using var backend = BackendFactory.Create("cuda");
            Assert.That(backend, Is.InstanceOf<CudaBackend>());
            Assert.That(backend.Name, Is.EqualTo("cuda:0"));
            return;
        }
        if (TestSupport.GpuRequired) Assert.Fail($"{TestSupport.RequireGpuVariable} is set but the CUDA backend reports it cannot run here.");
        var e = Assert.Throws<GpuUnavailableException>(() => BackendFactory.Create("cuda"))!;
        Assert.That(e, Is.InstanceOf<InputException>(), "the CLI shows input errors as one line with exit code 2");
        // The engine names its parameter, not a CLI flag (the CLI puts --device in its place).
        Assert.That(e.Parameter, Is.EqualTo("device"));
        Assert.That(e.Message, Does.StartWith("device cuda: ").And.Contain("Use the CPU").And.Not.Contain("--"));
        TestContext.Out.WriteLine(e.Message);
        using var auto = BackendFactory.Create("auto");
        Assert.That(auto, Is.InstanceOf<CpuBackend>(), "auto falls back to the CPU where CUDA cannot run");
    }

    [Test]
    public void DeviceCudaN_NamesTheDeviceNumber()
    {
        Assert.Throws<InputException>(() => BackendFactory.Create("cuda:x"));
        if (CudaBackend.IsAvailable()) Assert.Throws<GpuUnavailableException>(() => BackendFactory.Create("cuda:99"));
        else Assert.That(Assert.Throws<GpuUnavailableException>(() => BackendFactory.Create("cuda:3"))!.Message, Does.StartWith("device cuda:3: "));
    }

    [Test]
    public void OutOfMemory_IsRecognisedOnlyInDriverStatuses()
    {
        Assert.That(CudaBackend.IsOutOfDeviceMemory(new CudaException("cuMemAlloc_v2", "CUDA_ERROR_OUT_OF_MEMORY", 2, "out of memory")), Is.True);
        Assert.That(CudaBackend.IsOutOfDeviceMemory(new CudaException("nvrtcCreateProgram", "NVRTC_ERROR_PROGRAM_CREATION_FAILURE", 2, "")), Is.False);
        Assert.That(CudaBackend.IsOutOfDeviceMemory(new CudaException("cuLaunchKernel", "CUDA_ERROR_INVALID_VALUE", 1, "")), Is.False);
    }

    [Test]
    public void OutOfMemoryMessage_SaysWhatWasNeededWhatIsFreeAndWhatToTry()
    {
        string message = GpuOutOfMemoryException.Format("cuda:0 NVIDIA H100", 3L << 30, 1L << 29, 80L << 30, 70L << 30);
        Assert.That(message, Does.Contain("3.00 GiB").And.Contain("512.0 MiB").And.Contain("80.00 GiB").And.Contain("smaller batch").And.Contain("use the CPU"));
    }
}

/// <summary>The PyTorch scripts of the GPU check at least parse (they run only where PyTorch and a GPU are).</summary>
public class PytorchScriptTests
{
    [Test]
    public void BenchmarkScripts_CompileWithPython()
    {
        string? root = TestSupport.RepositoryRoot();
        string? python = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "python3")).FirstOrDefault(File.Exists);
        if (root is null || python is null) Assert.Ignore("Needs the repository and python3.");
        var scripts = Directory.GetFiles(Path.Combine(root!, "benchmarks", "pytorch"), "*.py");
        Assert.That(scripts.Select(Path.GetFileName), Is.SupersetOf(new[] { "vgg_step.py", "vgg_parity.py", "dicc_torch.py" }));
        foreach (string script in scripts)
        {
            var psi = new System.Diagnostics.ProcessStartInfo(python!, ["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])", script])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using var p = System.Diagnostics.Process.Start(psi)!;
            string error = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Zero, $"{script}: {error}");
        }
    }
}
