using NUnit.Framework;

namespace Dicc.Engine.Tests.Support;

/// <summary>Backends by name for tests that run one body on every device (candle's test_device! pattern).</summary>
internal static class TestBackends
{
    /// <summary>"cpu", or "cuda" (skipped with the reason where it cannot run, failed when DICC_REQUIRE_GPU is set).</summary>
    public static Dicc.Engine.Backends.Backend Create(string name)
    {
        if (name == "cpu") return new Dicc.Engine.Backends.Cpu.CpuBackend();
        try
        {
            return Dicc.Engine.Backends.Cuda.CudaBackend.Create(0,
                new Dicc.Engine.Backends.Cuda.CudaBackendOptions { WithoutVendorLibraries = TestSupport.EmulatedDevice });
        }
        catch (Dicc.Engine.Backends.Cuda.GpuUnavailableException e)
        {
            if (TestSupport.GpuRequired) Assert.Fail($"{TestSupport.RequireGpuVariable} is set but the CUDA backend cannot run: {e.Message}");
            Assert.Ignore(TestSupport.SkipReason("No CUDA backend here", e.Message));
            throw; // unreachable
        }
    }
}
