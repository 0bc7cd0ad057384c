using System.Text;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Runtime;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>Kernel sources, cache keys and targets: checked without NVRTC or a GPU.</summary>
public class KernelSourceTests
{
    [Test]
    public void EveryKernelFile_IsEmbeddedVerbatim()
    {
        string? root = TestSupport.RepositoryRoot();
        if (root is null) Assert.Ignore("The repository is not above the test binaries (the tests run from a copy).");
        var files = Directory.GetFiles(Path.Combine(root!, "kernels")).Select(Path.GetFileName).Where(f => f!.EndsWith(".cu") || f.EndsWith(".cuh")).ToList();
        Assert.That(KernelSources.Modules, Is.EquivalentTo(files.Where(f => f!.EndsWith(".cu"))));
        foreach (string f in files!)
            Assert.That(KernelSources.Get(f), Is.EqualTo(File.ReadAllText(Path.Combine(root!, "kernels", f))), f);
    }

    [Test]
    public void Sources_AreAsciiSoEveryToolHashesTheSameBytes()
    {
        foreach (string f in KernelSources.Modules.Append(KernelSources.HeaderName))
            Assert.That(KernelSources.Get(f).All(c => c < 128), Is.True, $"{f} has a non-ASCII character");
    }

    [Test]
    public void EveryKernel_IsExternCWithADtypeSuffixAndAShapeComment()
    {
        foreach (string module in KernelSources.Modules)
        {
            var lines = KernelSources.Get(module).Split('\n');
            var names = KernelSources.KernelNames(module);
            Assert.That(names, Is.Not.Empty, module);
            foreach (string name in names)
            {
                Assert.That(name, Does.Match("_(f32|i32|u8)$"), $"{module}: {name} needs a dtype suffix");
                int line = Array.FindIndex(lines, l => l.TrimStart().StartsWith($"DICC_KERNEL void {name}(", StringComparison.Ordinal));
                Assert.That(lines[line - 1].TrimStart(), Does.StartWith("//"), $"{module}: {name} needs a comment giving its arguments' shapes");
            }
        }
        Assert.That(KernelSources.Header, Does.Contain("#define DICC_KERNEL extern \"C\" __global__"));
    }

    [Test]
    public void EveryModule_HasExactlyOneLauncherClassNamedAfterIt()
    {
        var launchers = KernelLaunchRecording.UnloadedLaunchers().All.ToList();
        Assert.That(launchers.Select(l => l.Module), Is.EquivalentTo(KernelSources.Modules), "one launcher class per kernels/*.cu");
        foreach (var l in launchers)
        {
            string stem = Path.GetFileNameWithoutExtension(l.Module);
            Assert.That(l.GetType().Name, Is.EqualTo(char.ToUpperInvariant(stem[0]) + stem[1..] + "Kernels"), l.Module);
        }
    }

    [Test]
    public void SourceHash_IgnoresCarriageReturnsAndSeesEveryCharacter()
    {
        string header = "a\nb\n", module = "c\n";
        string h = KernelSources.Hash(header, module);
        Assert.That(h, Has.Length.EqualTo(64));
        Assert.That(KernelSources.Hash("a\r\nb\r\n", "c\r\n"), Is.EqualTo(h));
        Assert.That(KernelSources.Hash("a\nb\n", "c \n"), Is.Not.EqualTo(h));
        // The documented recipe (also used by build-kernels.ps1 and gpu-check.sh): SHA-256 of header + "\n" + module.
        Assert.That(h, Is.EqualTo(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("a\nb\n\nc\n")))));
    }

    [Test]
    public void GpuCheckScript_HashesModulesExactlyAsTheEngine()
    {
        string? root = TestSupport.RepositoryRoot();
        if (root is null || OperatingSystem.IsWindows() || !File.Exists("/bin/bash"))
            Assert.Ignore("Needs the repository and bash (Linux).");
        foreach (string module in KernelSources.Modules)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("/bin/bash", ["scripts/gpu-check.sh", "hash", $"kernels/{module}"])
            {
                WorkingDirectory = root,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var p = System.Diagnostics.Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Zero, p.StandardError.ReadToEnd());
            Assert.That(output, Is.EqualTo(KernelSources.SourceHash(module)), module);
        }
    }

    [Test]
    public void CacheKey_ChangesWithEveryInputAndOnlyThen()
    {
        string Key(string src = "abc", string ver = "12.8", string[]? opts = null, KernelImageKind kind = KernelImageKind.Cubin) =>
            KernelCache.Key(src, ver, opts ?? ["--gpu-architecture=sm_90"], kind);
        string k = Key();
        Assert.That(Key(), Is.EqualTo(k));
        Assert.That(new[] { Key(src: "abd"), Key(ver: "13.0"), Key(opts: ["--gpu-architecture=sm_80"]),
                            Key(opts: ["--gpu-architecture=sm_90", "-lineinfo"]), Key(kind: KernelImageKind.Ptx) },
            Has.None.EqualTo(k).And.Unique);
    }

    [Test]
    public void Cache_RoundTripsAnEntryAndNamesItsFileAfterTheModule()
    {
        string dir = Path.Combine(Path.GetTempPath(), "dicc-cache-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cache = new KernelCache(dir);
            string key = KernelCache.Key("h", "11.8", ["--gpu-architecture=sm_90"], KernelImageKind.Cubin);
            Assert.That(cache.TryRead("softmax.cu", key, KernelImageKind.Cubin, out _), Is.False);
            Assert.That(cache.TryWrite("softmax.cu", key, KernelImageKind.Cubin, [1, 2, 3]), Is.True);
            Assert.That(cache.TryRead("softmax.cu", key, KernelImageKind.Cubin, out byte[] image), Is.True);
            Assert.That(image, Is.EqualTo(new byte[] { 1, 2, 3 }));
            Assert.That(Path.GetFileName(cache.PathOf("softmax.cu", key, KernelImageKind.Cubin)), Is.EqualTo($"softmax-{key}.cubin"));
            Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1), "no temporary file is left behind");
            cache.Remove("softmax.cu", key, KernelImageKind.Cubin);
            Assert.That(cache.TryRead("softmax.cu", key, KernelImageKind.Cubin, out _), Is.False);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Test]
    public void Target_IsACubinForAKnownArchitectureElsePtxForTheNewestOlderOne()
    {
        int[] nvrtc118 = [35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90];
        Assert.That(KernelTarget.For(90, nvrtc118), Is.EqualTo(new KernelTarget(90, KernelImageKind.Cubin)));
        Assert.That(KernelTarget.For(90, nvrtc118).ArchitectureOption, Is.EqualTo("--gpu-architecture=sm_90"));
        Assert.That(KernelTarget.For(100, nvrtc118), Is.EqualTo(new KernelTarget(90, KernelImageKind.Ptx)));
        Assert.That(KernelTarget.For(100, nvrtc118).ArchitectureOption, Is.EqualTo("--gpu-architecture=compute_90"));
        Assert.Throws<NotSupportedException>(() => KernelTarget.For(30, nvrtc118));
    }

    [Test]
    public void Prebuilt_IsUsedOnlyWhenItsRecordedHashMatchesTheSources()
    {
        string dir = Path.Combine(Path.GetTempPath(), "dicc-prebuilt-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var loader = new KernelModuleLoader(cache: null, prebuiltDirectory: dir);
            Assert.That(loader.TryPrebuilt("softmax.cu", out string reason), Is.Null);
            Assert.That(reason, Does.Contain("absent"));

            var (fatbin, hash) = KernelModuleLoader.PrebuiltFiles(dir, "softmax.cu");
            File.WriteAllBytes(fatbin, [7, 7, 7]);
            File.WriteAllText(hash, new string('0', 64) + "  softmax.cu\n");
            Assert.That(loader.TryPrebuilt("softmax.cu", out reason), Is.Null);
            Assert.That(reason, Does.Contain("built from other sources"));

            File.WriteAllText(hash, KernelSources.SourceHash("softmax.cu") + "  softmax.cu\n");
            var image = loader.TryPrebuilt("softmax.cu", out _);
            Assert.That(image, Is.Not.Null);
            Assert.That(image!.Kind, Is.EqualTo(KernelImageKind.Fatbin));
            Assert.That(image.Image, Is.EqualTo(new byte[] { 7, 7, 7 }));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>Every kernel compiles with the NVRTC that CI installs (11.8 from Debian), GPU or not.</summary>
[Category("Nvrtc")]
public class NvrtcCompilationTests
{
    [SetUp]
    public void RequireNvrtc() => TestSupport.RequireNvrtcOrIgnore();

    private static IEnumerable<TestCaseData> ModulesAndArchitectures() =>
        from module in KernelSources.Modules
        from arch in new[] { "compute_70", "compute_80", "compute_90" } // 7.0: CudaBackend.MinimumComputeCapability
        select new TestCaseData(module, arch).SetName($"Compiles_{module}_{arch}");

    [TestCaseSource(nameof(ModulesAndArchitectures))]
    public void EveryModule_CompilesToPtxDefiningEachOfItsKernels(string module, string arch)
    {
        // NVRTC 13 no longer targets Volta (7.0); the Debian NVRTC 11.8 of CI does.
        if (!CudaRuntimeCompiler.SupportedArchitectures.Contains(int.Parse(arch[^2..], System.Globalization.CultureInfo.InvariantCulture)))
            Assert.Ignore($"NVRTC {CudaRuntimeCompiler.Version} does not generate code for {arch}.");
        using var compiler = new CudaRuntimeCompiler(KernelSources.Get(module), module,
            [new KeyValuePair<string, string>(KernelSources.HeaderName, KernelSources.Header)]);
        compiler.Compile([$"--gpu-architecture={arch}"]);
        string ptx = Encoding.ASCII.GetString(compiler.GetPtx()).TrimEnd('\0');
        Assert.That(compiler.Log.Trim(), Is.Empty, $"NVRTC warned about {module}: {compiler.Log}");
        Assert.That(ptx, Does.Contain($".target sm_{arch[^2..]}"));
        foreach (string kernel in KernelSources.KernelNames(module))
            Assert.That(ptx, Does.Contain($".entry {kernel}("), $"{module} for {arch} lacks {kernel}");
    }

    [Test]
    public void SgdKernel_HasNoFusedMultiplyAdd_SoItMatchesTheCpuBitForBit()
    {
        using var compiler = new CudaRuntimeCompiler(KernelSources.Get("optimizer.cu"), "optimizer.cu",
            [new KeyValuePair<string, string>(KernelSources.HeaderName, KernelSources.Header)]);
        compiler.Compile(["--gpu-architecture=compute_90"]);
        string ptx = Encoding.ASCII.GetString(compiler.GetPtx());
        Assert.That(ptx, Does.Not.Contain("fma."));
        Assert.That(ptx, Does.Contain("mul.rn.f32").And.Contain("add.rn.f32"));
    }

    [Test]
    public void BrokenSource_ThrowsWithTheCompilerLog()
    {
        using var compiler = new CudaRuntimeCompiler("extern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }", "broken.cu");
        var e = Assert.Throws<CudaCompilationException>(() => compiler.Compile(["--gpu-architecture=compute_80"]))!;
        Assert.That(e.Message, Does.Contain("broken.cu").And.Contain("undefined_name"));
        Assert.That(e.Log, Does.Contain("error"));
    }

    [Test]
    public void Loader_CompilesACubinForTheDeviceOnceThenServesItFromTheCache()
    {
        var archs = CudaRuntimeCompiler.SupportedArchitectures;
        Assert.That(archs, Is.Not.Empty);
        int arch = archs.Contains(90) ? 90 : archs[^1];
        string dir = Path.Combine(Path.GetTempPath(), "dicc-loader-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            var loader = new KernelModuleLoader(new KernelCache(dir), prebuiltDirectory: null);
            var first = loader.Compile("elementwise.cu", arch);
            Assert.That(first.Kind, Is.EqualTo(KernelImageKind.Cubin));
            Assert.That(first.Origin, Does.StartWith("NVRTC"));
            Assert.That(first.Image.AsSpan(0, 4).ToArray(), Is.EqualTo("\u007fELF"u8.ToArray()), "a cubin is an ELF image");
            var second = loader.Compile("elementwise.cu", arch);
            Assert.That(second.Origin, Does.StartWith("cache"));
            Assert.That(second.Image, Is.EqualTo(first.Image));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Test]
    public unsafe void NvrtcStatus_BecomesACudaExceptionNamingApiAndStatus()
    {
        // A null program is rejected by NVRTC itself: a real failing call.
        var e = Assert.Throws<CudaException>(() => CudaCheck.ThrowIfFailed(Dicc.Engine.Backends.Cuda.Interop.Nvrtc.nvrtcCompileProgram(0, 0, null)))!;
        Assert.That(e.Api, Is.EqualTo("nvrtcCompileProgram"));
        Assert.That(e.StatusName, Is.EqualTo("NVRTC_ERROR_INVALID_PROGRAM"));
        Assert.That(e.Message, Does.StartWith("nvrtcCompileProgram failed: NVRTC_ERROR_INVALID_PROGRAM (4)"));
    }
}
