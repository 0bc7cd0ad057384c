using Dicc.Engine.Backends.Cuda;
using System.Runtime.InteropServices;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>Parts of the runtime that need no GPU: launch packing, error naming, ABI layouts, launch shapes.</summary>
public unsafe class RuntimeTests
{
    /// <summary>Records what a launch hands to cuLaunchKernel: the bytes behind each argument pointer.</summary>
    private sealed class RecordingLauncher : IKernelLauncher
    {
        public LaunchConfig Config;
        public nint Stream = -1;
        public readonly List<byte[]> Arguments = [];

        public void Launch(nint function, in LaunchConfig config, nint stream, void** arguments, int* sizes, byte* kinds, int count)
        {
            Config = config;
            Stream = stream;
            Arguments.Clear();
            Kinds = count == 0 ? "" : System.Text.Encoding.ASCII.GetString(kinds, count);
            int[] expected = SizesOfNextLaunch;
            Assert.That(count, Is.EqualTo(expected.Length), "argument count");
            for (int i = 0; i < count; i++)
            {
                Assert.That(sizes[i], Is.EqualTo(expected[i]), $"size of argument {i}");
                Arguments.Add(new ReadOnlySpan<byte>(arguments[i], sizes[i]).ToArray());
            }
        }

        public string Kinds = "";

        public int[] SizesOfNextLaunch = [];
    }

    [Test]
    public void TypedLaunch_PacksPointersToEachArgumentsValueInOrder()
    {
        var launcher = new RecordingLauncher { SizesOfNextLaunch = [8, 4, 8, 4, 8] };
        var kernel = new CudaKernel(null, null, 1234, "test_f32", launcher);
        var config = new LaunchConfig(new Dim3(3, 2), new Dim3(128), 512);

        kernel.Launch(config, null, new DevicePointer(0x7f00_0000_1000), 2.5f, -42L, 7, 0xDEAD_BEEF_CAFE_F00DUL);

        Assert.That(launcher.Config, Is.EqualTo(config));
        Assert.That(launcher.Stream, Is.EqualTo((nint)0), "no stream and no context: the null stream");
        Assert.That(BitConverter.ToUInt64(launcher.Arguments[0]), Is.EqualTo(0x7f00_0000_1000UL));
        Assert.That(BitConverter.ToSingle(launcher.Arguments[1]), Is.EqualTo(2.5f));
        Assert.That(BitConverter.ToInt64(launcher.Arguments[2]), Is.EqualTo(-42L));
        Assert.That(BitConverter.ToInt32(launcher.Arguments[3]), Is.EqualTo(7));
        Assert.That(BitConverter.ToUInt64(launcher.Arguments[4]), Is.EqualTo(0xDEAD_BEEF_CAFE_F00DUL));
        Assert.That(launcher.Kinds, Is.EqualTo("ifiii"), "pointers and integers 'i', floats 'f'");
    }

    [Test]
    public void TypedLaunch_WithTwelveArguments_KeepsEveryValueDistinct()
    {
        var launcher = new RecordingLauncher { SizesOfNextLaunch = Enumerable.Repeat(4, 12).ToArray() };
        var kernel = new CudaKernel(null, null, 1, "twelve_i32", launcher);
        kernel.Launch(new LaunchConfig(1, 32), null, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
        Assert.That(launcher.Arguments.Select(a => BitConverter.ToInt32(a)), Is.EqualTo(Enumerable.Range(1, 12)));
    }

    [Test]
    public void TypedLaunch_DoesNotAllocate()
    {
        var launcher = new NullLauncher();
        var kernel = new CudaKernel(null, null, 1, "k_f32", launcher);
        var config = new LaunchConfig(1, 32);
        kernel.Launch(config, null, DevicePointer.Null, 1f, 2L, 3); // warm up (JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) kernel.Launch(config, null, new DevicePointer((ulong)i), 1f, (long)i, i);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
        Assert.That(launcher.Calls, Is.EqualTo(1001));
    }

    private sealed class NullLauncher : IKernelLauncher
    {
        public int Calls;
        public void Launch(nint function, in LaunchConfig config, nint stream, void** arguments, int* sizes, byte* kinds, int count) => Calls++;
    }

    [Test]
    public void ForElements_CoversTheRangeAndCapsTheGrid()
    {
        Assert.That(CudaKernel.ForElements(1000, 132).Grid.X, Is.EqualTo(4u));
        Assert.That(CudaKernel.ForElements(1000, 132).Block.X, Is.EqualTo(256u));
        Assert.That(CudaKernel.ForElements(1L << 40, 132).Grid.X, Is.EqualTo(132u * 32));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaKernel.ForElements(0, 132));
    }

    [Test]
    public void ApiName_IsTheFunctionOfTheCheckedCall()
    {
        Assert.That(CudaCheck.ApiName("CudaDriver.cuMemAlloc_v2(out ulong address, (nuint)bytes)"), Is.EqualTo("cuMemAlloc_v2"));
        Assert.That(CudaCheck.ApiName("cuInit(0)"), Is.EqualTo("cuInit"));
        Assert.That(CudaCheck.ApiName("status"), Is.EqualTo("status"));
        Assert.That(CudaCheck.ApiName(null), Is.EqualTo("CUDA call"));
    }

    [Test]
    public void CudaException_MessageHasApiStatusNameCodeAndText()
    {
        var e = new CudaException("cuMemAlloc_v2", "CUDA_ERROR_OUT_OF_MEMORY", 2, "out of memory");
        Assert.That(e.Message, Is.EqualTo("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory"));
    }

    [Test]
    public void CudnnPerfStruct_HasTheCLayout()
    {
        // struct { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; }
        Assert.That(sizeof(CudnnConvolutionAlgoPerf), Is.EqualTo(48));
        Assert.That(Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.Memory)), Is.EqualTo((nint)16));
        Assert.That(Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.Determinism)), Is.EqualTo((nint)24));
    }

    [Test]
    public void CudnnAlgorithmChoice_PrefersDeterministicThenRankWithinWorkspaceAndMath()
    {
        static CudnnConvolutionAlgoPerf P(int algo, CudnnStatus status, long memory, bool deterministic, CudnnMathType math) =>
            new() { Algorithm = algo, Status = status, Memory = (nuint)memory, MathType = math,
                    Determinism = deterministic ? CudnnDeterminism.Deterministic : CudnnDeterminism.NonDeterministic };
        var g = new ConvolutionGeometry(1, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1);
        var perf = new[]
        {
            P(0, CudnnStatus.Success, 100, deterministic: false, CudnnMathType.Fma),      // fastest, not deterministic
            P(1, CudnnStatus.NotSupported, 0, deterministic: true, CudnnMathType.Fma),     // unusable
            P(2, CudnnStatus.Success, 1 << 30, deterministic: true, CudnnMathType.Fma),    // too much workspace
            P(3, CudnnStatus.Success, 50, deterministic: true, CudnnMathType.TensorOp),    // tensor cores
            P(4, CudnnStatus.Success, 200, deterministic: true, CudnnMathType.Default),
        };
        fixed (CudnnConvolutionAlgoPerf* p = perf)
        {
            Assert.That(CudnnContext.Choose(p, perf.Length, 1 << 20, CudnnMathType.Fma, true, "forward", g), Is.EqualTo((4, 200L)));
            Assert.That(CudnnContext.Choose(p, perf.Length, 1 << 20, CudnnMathType.Fma, false, "forward", g), Is.EqualTo((0, 100L)));
            Assert.That(CudnnContext.Choose(p, perf.Length, 1 << 20, CudnnMathType.Default, true, "forward", g), Is.EqualTo((3, 50L)));
            string? message = null;
            try { CudnnContext.Choose(p, 3, 10, CudnnMathType.Fma, true, "forward", g); }
            catch (InvalidOperationException e) { message = e.Message; }
            Assert.That(message, Does.Contain("no forward convolution algorithm").And.Contain("10-byte workspace"));
        }
    }


    [Test]
    public void DevicePointer_ArithmeticIsInBytesAndElements()
    {
        var p = new DevicePointer(0x1000);
        Assert.That(p.Offset(16).Address, Is.EqualTo(0x1010UL));
        Assert.That(p.Element<float>(3).Address, Is.EqualTo(0x100CUL));
        Assert.That(p.Element<double>(-1).Address, Is.EqualTo(0xFF8UL));
        Assert.That(sizeof(DevicePointer), Is.EqualTo(8), "passed to kernels as a pointer");
    }
}
