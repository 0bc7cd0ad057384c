using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Support;

/// <summary>Where a CUDA test gets its context or NVRTC, and what happens when the machine has none.</summary>
internal static class TestSupport
{
    /// <summary>
    /// Set (to 1) on a GPU machine by scripts/gpu-check.sh: a test that needs the GPU then fails instead of
    /// being skipped, so a broken driver or library path cannot pass as "skipped".
    /// </summary>
    public const string RequireGpuVariable = "DICC_REQUIRE_GPU";

    public static bool GpuRequired => Environment.GetEnvironmentVariable(RequireGpuVariable) is "1" or "true" || EmulatedDevice;

    /// <summary>
    /// True in Dicc.Emulated.Tests, whose setup points the engine at the emulated device (tests/EmulatedDevice): our
    /// kernels run on the CPU behind a CUDA driver of our own, without cuBLAS or cuDNN. A device is then always there,
    /// so a failure to use it fails the test instead of skipping it.
    /// </summary>
    public static bool EmulatedDevice { get; set; }

    /// <summary>Skips a test that needs cuBLAS or cuDNN (convolution, linear layers, whole training steps) on the emulated device.</summary>
    public static void RequireVendorLibraries(Dicc.Engine.Backends.Backend backend)
    {
        if (backend is CudaBackend { HasVendorLibraries: false })
            Assert.Ignore("cuBLAS and cuDNN are GPU-only: the emulated device runs our own kernels, not the vendor libraries.");
    }

    /// <summary>CI runs with CI set: there NVRTC is installed by the prerequisites script and must be usable.</summary>
    public static bool NvrtcRequired => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")) || GpuRequired;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> ReasonsGiven = new();

    /// <summary>
    /// The reason a test is skipped for want of <paramref name="what"/>: in full the first time in a test run,
    /// afterwards only a pointer to it. The full reason lists every place the CUDA libraries were searched
    /// (some 600 characters), and the runner prints a skipped test's reason more than once: repeated for each
    /// of the GPU tests, it buried the rest of the output.
    /// </summary>
    internal static string SkipReason(string what, string detail) =>
        ReasonsGiven.TryAdd(what, true)
            ? $"{what}: {detail}"
            : $"{what} (the reason is given in full once per run, at the first test skipped for it)";

    /// <summary>A context on device 0, or the test is skipped (failed when the GPU is required) with the reason.</summary>
    public static CudaContext CreateContextOrIgnore()
    {
        try
        {
            return CudaContext.Create();
        }
        catch (GpuUnavailableException e)
        {
            if (GpuRequired) Assert.Fail($"{RequireGpuVariable} is set but CUDA is unavailable: {e.Message}");
            Assert.Ignore(SkipReason("No usable CUDA device", e.Message));
            throw; // unreachable: Assert.Ignore throws
        }
    }

    public static void RequireNvrtcOrIgnore()
    {
        var r = CudaLibraries.TryLoad(CudaLibrary.Nvrtc);
        if (r.IsLoaded) return;
        if (NvrtcRequired) Assert.Fail($"NVRTC must be present here (CI or a GPU check): {r.Error}");
        Assert.Ignore(SkipReason("NVRTC is not installed", r.Error ?? ""));
    }

    public static void RequireLibraryOrIgnore(CudaLibrary library)
    {
        var r = CudaLibraries.TryLoad(library);
        if (r.IsLoaded) return;
        if (GpuRequired) Assert.Fail($"{RequireGpuVariable} is set but {r.DisplayName} is unavailable: {r.Error}");
        Assert.Ignore(SkipReason($"{r.DisplayName} is unavailable", r.Error ?? ""));
    }

    /// <summary>The repository root (the folder holding Dicc.sln), found upwards from the test binaries.</summary>
    public static string? RepositoryRoot()
    {
        for (var d = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Dicc.sln"))) return d.FullName;
        return null;
    }

    /// <summary>Deterministic test data in [-scale, scale).</summary>
    public static float[] RandomFloats(int n, ulong seed, float scale = 1f)
    {
        var r = new Dicc.Engine.Randomness.RandomStream(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (r.NextFloat() * 2f - 1f) * scale;
        return a;
    }
}
