using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>
/// The ptxas report reader behind KernelAbiTests' register and shared-memory budget, on reports of each format:
/// CI's NVRTC 11.8 prints the old one, the GPU machines' NVRTC 13 (PyTorch's wheels) the new one.
/// </summary>
public class PtxasReportTests
{
    // NVRTC 11.8 (Debian, CI), softmax.cu for sm_80, -Xptxas=-v: the log as it came.
    private const string Nvrtc118 = """
        ptxas info    : 0 bytes gmem
        ptxas info    : Compiling entry function 'softmax_cross_entropy_grad_f32' for 'sm_80'
        ptxas info    : Function properties for softmax_cross_entropy_grad_f32
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 34 registers, 408 bytes cmem[0]
        ptxas info    : Compiling entry function 'softmax_cross_entropy_loss_f32' for 'sm_80'
        ptxas info    : Function properties for softmax_cross_entropy_loss_f32
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 20 registers, 256 bytes smem, 420 bytes cmem[0]
        ptxas info    : Compiling entry function 'softmax_cross_entropy_rows_f32' for 'sm_80'
        ptxas info    : Function properties for softmax_cross_entropy_rows_f32
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 18 registers, 128 bytes smem, 416 bytes cmem[0]
        ptxas info    : Compiling entry function 'softmax_rows_f32' for 'sm_80'
        ptxas info    : Function properties for softmax_rows_f32
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 18 registers, 128 bytes smem, 376 bytes cmem[0]

        """;

    // NVRTC 12.4 (Debian trixie's libnvrtc12), softmax.cu for sm_90: still the old format, and no cmem on sm_90.
    private const string Nvrtc124Sm90 = """
        ptxas info    : 0 bytes gmem
        ptxas info    : Compiling entry function 'softmax_cross_entropy_grad_f32' for 'sm_90'
        ptxas info    : Function properties for softmax_cross_entropy_grad_f32
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 34 registers
        ptxas info    : Compiling entry function 'softmax_cross_entropy_loss_f32' for 'sm_90'
        ptxas info    : Function properties for softmax_cross_entropy_loss_f32
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 24 registers, 256 bytes smem
        """;

    // The format of ptxas from CUDA 12.8 on (13.x too): "used N barriers" after the registers, a compile time
    // line after each kernel, "cumulative stack size" when there is a stack, no cmem on sm_90 and newer. The
    // lines' text is ptxas's, with our kernel names.
    private const string Cuda13 = """
        ptxas info    : 0 bytes gmem
        ptxas info    : Compiling entry function 'softmax_rows_f32' for 'sm_89'
        ptxas info    : Function properties for softmax_rows_f32
            0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 14 registers, used 1 barriers, 32 bytes smem, 376 bytes cmem[0]
        ptxas info    : Compile time = 23.759 ms
        ptxas info    : Compiling entry function 'bias_grad_f32' for 'sm_89'
        ptxas info    : Function properties for bias_grad_f32
            0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 10 registers, used 1 barriers, 1024 bytes smem, 376 bytes cmem[0]
        ptxas info    : Compile time = 12.402 ms
        ptxas info    : Compiling entry function 'relu_forward_f32' for 'sm_90'
        ptxas info    : Function properties for relu_forward_f32
            0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 12 registers, used 0 barriers
        ptxas info    : Compiling entry function 'cluster_assign_f32' for 'sm_90'
        ptxas info    : Function properties for cluster_assign_f32
            0 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
        ptxas info    : Used 40 registers, used 1 barriers, 64 bytes smem
        ptxas info    : Compile time = 46.738 ms
        ptxas info    : Compiling entry function 'dropout_forward_f32' for 'sm_90'
        ptxas info    : Function properties for dropout_forward_f32
            1024 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 32 registers, used 0 barriers, 1024 bytes cumulative stack size
        """;

    [Test]
    public void Cuda11Format_ReadsRegistersSharedMemoryAndSpills()
    {
        var r = PtxasReport.Parse(Nvrtc118);
        Assert.That(r.Keys, Is.EquivalentTo(new[] { "softmax_cross_entropy_grad_f32", "softmax_cross_entropy_loss_f32", "softmax_cross_entropy_rows_f32", "softmax_rows_f32" }));
        Assert.That(r["softmax_cross_entropy_grad_f32"], Is.EqualTo(new KernelResources(34, 0, 0, 0, 0)));
        Assert.That(r["softmax_cross_entropy_loss_f32"], Is.EqualTo(new KernelResources(20, 256, 0, 0, 0)));
        Assert.That(r["softmax_rows_f32"], Is.EqualTo(new KernelResources(18, 128, 0, 0, 0)));
    }

    [Test]
    public void Cuda124Format_WithoutConstantBank_ReadsSharedMemory()
    {
        var r = PtxasReport.Parse(Nvrtc124Sm90);
        Assert.That(r["softmax_cross_entropy_grad_f32"], Is.EqualTo(new KernelResources(34, 0, 0, 0, 0)));
        Assert.That(r["softmax_cross_entropy_loss_f32"], Is.EqualTo(new KernelResources(24, 256, 0, 0, 0)));
    }

    [Test]
    public void Cuda13Format_ReadsSharedMemoryAfterTheBarrierCount()
    {
        var r = PtxasReport.Parse(Cuda13);
        Assert.That(r, Has.Count.EqualTo(5));
        Assert.That(r["softmax_rows_f32"], Is.EqualTo(new KernelResources(14, 32, 0, 1, 0)));
        Assert.That(r["bias_grad_f32"], Is.EqualTo(new KernelResources(10, 1024, 0, 1, 0)));
        Assert.That(r["relu_forward_f32"], Is.EqualTo(new KernelResources(12, 0, 0, 0, 0)));
        Assert.That(r["cluster_assign_f32"], Is.EqualTo(new KernelResources(40, 64, 12, 1, 0)), "spill stores + loads");
        Assert.That(r["dropout_forward_f32"], Is.EqualTo(new KernelResources(32, 0, 0, 0, 1024)));
    }

    [Test]
    public void ReportContinuedOnTheNextLine_IsReadWhole()
    {
        const string wrapped = """
            ptxas info    : Compiling entry function 'pool_forward_f32' for 'sm_89'
            ptxas info    : Function properties for pool_forward_f32
                24 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 28 registers, used 0 barriers, 24 bytes cumulative stack size,
                                2048 bytes smem, 512 bytes cmem[0]
            """;
        Assert.That(PtxasReport.Parse(wrapped)["pool_forward_f32"], Is.EqualTo(new KernelResources(28, 2048, 0, 0, 24)));
    }

    [Test]
    public void ReportWithoutFunctionPropertiesLines_NamesTheEntry()
    {
        const string bare = """
            ptxas info    : Compiling entry function 'fill_f32' for 'sm_89'
                0 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
            ptxas info    : Used 40 registers, used 1 barriers, 768 bytes smem, 388 bytes cmem[0], 8 bytes cmem[2]
            """;
        Assert.That(PtxasReport.Parse(bare)["fill_f32"], Is.EqualTo(new KernelResources(40, 768, 8, 1, 0)));
    }

    [Test]
    public void DeviceFunctionReports_AreNotKernels()
    {
        const string withCallee = """
            ptxas info    : Function properties for dicc_helper
                0 bytes stack frame, 16 bytes spill stores, 16 bytes spill loads
            ptxas info    : Compiling entry function 'sgd_step_f32' for 'sm_90'
            ptxas info    : Function properties for sgd_step_f32
                0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 16 registers, used 0 barriers
            """;
        var r = PtxasReport.Parse(withCallee);
        Assert.That(r.Keys, Is.EqualTo(new[] { "sgd_step_f32" }));
        Assert.That(r["sgd_step_f32"].SpillBytes, Is.Zero);
    }
}
