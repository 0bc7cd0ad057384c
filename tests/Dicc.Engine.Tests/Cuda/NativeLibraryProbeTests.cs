using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Cuda;

public class NativeLibraryProbeTests
{
    /// <summary>A machine described by a few folders and files; "loading" succeeds for listed files only.</summary>
    private sealed class FakeHost : IProbeHost
    {
        public readonly Dictionary<string, string> Variables = [];
        public readonly HashSet<string> Files = [];
        public readonly Dictionary<string, string> LoadErrors = [];
        public readonly List<string> Loaded = [];

        public bool IsWindows => false;
        public string? GetEnvironmentVariable(string name) => Variables.GetValueOrDefault(name);
        public bool FileExists(string path) => Files.Contains(path);

        public bool DirectoryExists(string path) =>
            Files.Any(f => f.StartsWith(path.TrimEnd('/') + "/", StringComparison.Ordinal));

        public IReadOnlyList<string> GetDirectories(string path, string pattern)
        {
            string prefix = path.TrimEnd('/') + "/";
            string head = pattern.TrimEnd('*');
            return Files.Where(f => f.StartsWith(prefix, StringComparison.Ordinal))
                .Select(f => f[prefix.Length..].Split('/'))
                .Where(parts => parts.Length > 1 && parts[0].StartsWith(head, StringComparison.Ordinal))
                .Select(parts => prefix + parts[0]).Distinct().Order(StringComparer.Ordinal).ToList();
        }

        public IReadOnlyList<string> GetFiles(string path, string pattern)
        {
            string prefix = path.TrimEnd('/') + "/";
            var (head, tail) = (pattern[..pattern.IndexOf('*')], pattern[(pattern.IndexOf('*') + 1)..]);
            return Files.Where(f => f.StartsWith(prefix, StringComparison.Ordinal) && !f[prefix.Length..].Contains('/'))
                .Where(f => f[prefix.Length..].StartsWith(head, StringComparison.Ordinal) && f.EndsWith(tail, StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).ToList();
        }

        public bool TryLoad(string pathOrName, out nint handle, out string? error)
        {
            if (LoadErrors.TryGetValue(pathOrName, out error)) { handle = 0; return false; }
            if (Files.Contains(pathOrName))
            {
                Loaded.Add(pathOrName);
                handle = Loaded.Count;
                return true;
            }
            handle = 0;
            error = $"{pathOrName}: cannot open shared object file: No such file or directory";
            return false;
        }

        public string? LoadedPath(nint handle, string symbol) => null;
        public string ResolveDirectory(string path) => path;
    }

    [Test]
    public void MissingLibrary_MessageNamesTheLibraryEverySearchedPlaceAndTheFix()
    {
        var host = new FakeHost();
        host.Files.Add("/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12"); // cuBLAS yes, cuDNN no
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cudnn);

        Assert.That(r.IsLoaded, Is.False);
        Assert.That(r.Error, Does.Contain("cuDNN 9 (libcudnn.so.9) could not be loaded"));
        Assert.That(r.Error, Does.Contain("DICC_CUDNN_PATH (not set)"));
        Assert.That(r.Error, Does.Contain("DICC_CUDA_LIBRARY_DIR (not set)"));
        Assert.That(r.Error, Does.Contain("the system loader"));
        Assert.That(r.Error, Does.Contain("/usr/local/cuda/lib64 (absent)"));
        Assert.That(r.Error, Does.Contain("python packages (nvidia/*/lib, torch/lib) in /opt/torch/.venv/lib/python3.12/site-packages"));
        Assert.That(r.Error, Does.Contain("Set DICC_CUDNN_PATH to the library file or DICC_CUDA_LIBRARY_DIR to its folder"));
    }

    [Test]
    public void MissingVirtualEnvironment_IsNamedAsAbsent()
    {
        var r = new NativeLibraryProbe(new FakeHost()).Load(CudaLibrarySpec.Nvrtc);
        Assert.That(r.Error, Does.Contain("python packages (nvidia/*/lib, torch/lib) in /opt/torch/.venv (absent)"));
    }

    [Test]
    public void ExplicitPathVariable_IsTheOnlyCandidateAndAMissingFileIsNamed()
    {
        var host = new FakeHost();
        host.Files.Add("/usr/lib/x86_64-linux-gnu/libnvrtc.so.11.2");
        host.Variables["DICC_NVRTC_PATH"] = "/nowhere/libnvrtc.so.12";
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Nvrtc);
        Assert.That(r.IsLoaded, Is.False);
        Assert.That(r.Error, Is.EqualTo("DICC_NVRTC_PATH=/nowhere/libnvrtc.so.12 names no file."));
    }

    [Test]
    public void PipLayout_IsFoundAndCudnnSublibrariesArePreloadedGraphFirst()
    {
        var host = new FakeHost();
        const string lib = "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib";
        foreach (string f in new[] { "libcudnn_cnn.so.9", "libcudnn_ops.so.9", "libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9", "libcudnn.so.9" })
            host.Files.Add($"{lib}/{f}");
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cudnn);

        Assert.That(r.IsLoaded, Is.True, r.Error);
        Assert.That(r.Path, Is.EqualTo($"{lib}/libcudnn.so.9"));
        Assert.That(host.Loaded[0], Is.EqualTo($"{lib}/libcudnn_graph.so.9"), "the graph library, which the others need, loads first");
        Assert.That(host.Loaded[^1], Is.EqualTo($"{lib}/libcudnn.so.9"), "the shim loads after its sub-libraries");
        Assert.That(host.Loaded, Has.Count.EqualTo(5));
    }

    [Test]
    public void PipCudnn_PreloadsCublasLtAndNvrtcOfItsOwnEnvironment()
    {
        var host = new FakeHost();
        const string nvidia = "/opt/torch/.venv/lib/python3.12/site-packages/nvidia";
        host.Files.Add($"{nvidia}/cudnn/lib/libcudnn.so.9");
        host.Files.Add($"{nvidia}/cublas/lib/libcublasLt.so.12");
        host.Files.Add($"{nvidia}/cuda_nvrtc/lib/libnvrtc.so.12");
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cudnn);
        Assert.That(r.IsLoaded, Is.True);
        Assert.That(host.Loaded, Is.EqualTo(new[]
        {
            $"{nvidia}/cublas/lib/libcublasLt.so.12", $"{nvidia}/cuda_nvrtc/lib/libnvrtc.so.12", $"{nvidia}/cudnn/lib/libcudnn.so.9",
        }));
    }

    [Test]
    public void Cuda13PipLayout_FindsNvrtcAndPreloadsItsBuiltins()
    {
        var host = new FakeHost();
        const string lib = "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib";
        host.Files.Add($"{lib}/libnvrtc.so.13");
        host.Files.Add($"{lib}/libnvrtc-builtins.so.13.0");
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Nvrtc);
        Assert.That(r.Path, Is.EqualTo($"{lib}/libnvrtc.so.13"));
        Assert.That(host.Loaded, Is.EqualTo(new[] { $"{lib}/libnvrtc-builtins.so.13.0", $"{lib}/libnvrtc.so.13" }));
    }

    [Test]
    public void LibraryDirVariable_ComesBeforeTheSystemLoader()
    {
        var host = new FakeHost();
        host.Files.Add("libcublas.so.12"); // what the system loader would find by name
        host.Files.Add("/custom/cuda/libcublas.so.12");
        host.Files.Add("/custom/cuda/libcublasLt.so.12");
        host.Variables["DICC_CUDA_LIBRARY_DIR"] = "/missing:/custom/cuda";
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cublas);
        Assert.That(r.Path, Is.EqualTo("/custom/cuda/libcublas.so.12"));
        Assert.That(host.Loaded[0], Is.EqualTo("/custom/cuda/libcublasLt.so.12"), "cublasLt is loaded from the same folder first");
    }

    [Test]
    public void PythonOnPath_ContributesItsSitePackages()
    {
        var host = new FakeHost();
        host.Variables["PATH"] = "/usr/bin:/home/u/env/bin";
        host.Files.Add("/home/u/env/bin/python3");
        host.Files.Add("/home/u/env/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12");
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cublas);
        Assert.That(r.Path, Is.EqualTo("/home/u/env/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12"));
    }

    [Test]
    public void FileThatFailsToLoad_ReportsTheLoaderMessage()
    {
        var host = new FakeHost();
        const string path = "/usr/local/cuda/lib64/libcublas.so.12";
        host.Files.Add(path);
        host.LoadErrors[path] = "libcublasLt.so.12: cannot open shared object file: No such file or directory";
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cublas);
        Assert.That(r.IsLoaded, Is.False);
        Assert.That(r.Error, Does.Contain($"Found but failed: {path}: libcublasLt.so.12: cannot open shared object file"));
    }

    [Test]
    public void SystemLibraryWithAMissingDependency_IsReportedNotSkipped()
    {
        var host = new FakeHost();
        host.LoadErrors["libcublas.so.12"] = "libcublasLt.so.12: cannot open shared object file: No such file or directory";
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cublas);
        Assert.That(r.Error, Does.Contain("Found but failed: libcublas.so.12: libcublasLt.so.12: cannot open shared object file"));
        Assert.That(r.Error, Does.Not.Contain("libcublas.so.13:"), "a library the loader did not find is only listed as searched");
    }

    [Test]
    public void DriverIsNeverLookedForInPythonPackages()
    {
        var host = new FakeHost();
        host.Files.Add("/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcuda.so.1");
        var probe = new NativeLibraryProbe(host);
        Assert.That(probe.Load(CudaLibrarySpec.Driver).IsLoaded, Is.False);
        Assert.That(probe.CandidateFolders(CudaLibrarySpec.Driver), Does.Contain("/usr/local/nvidia/lib64"));
    }

    [Test]
    public void DriverInCompatOrStubsFolders_IsSkippedAndTheSystemLoadersIsUsed()
    {
        // A CUDA 13 toolkit with the forward-compatibility package, handed over in DICC_CUDA_LIBRARY_DIR.
        var host = new FakeHost();
        host.Files.Add("/usr/local/cuda-13.0/compat/libcuda.so.1");
        host.Files.Add("/usr/local/cuda-13.0/targets/x86_64-linux/lib/stubs/libcuda.so");
        host.Files.Add("libcuda.so.1"); // the installed driver, as the system loader finds it
        host.Variables["DICC_CUDA_LIBRARY_DIR"] = "/usr/local/cuda-13.0/compat:/usr/local/cuda-13.0/targets/x86_64-linux/lib/stubs";
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Driver);
        Assert.That(r.Path, Is.EqualTo("libcuda.so.1"));
        Assert.That(host.Loaded, Is.EqualTo(new[] { "libcuda.so.1" }));
    }

    [Test]
    public void DriverOnlyInCompatOrStubsFolders_IsNotLoadedAndTheMessageSaysWhy()
    {
        var host = new FakeHost();
        host.Files.Add("/usr/local/cuda/compat/libcuda.so.1");
        host.Files.Add("/usr/local/cuda/lib64/stubs/libcuda.so");
        host.Variables["DICC_CUDA_LIBRARY_DIR"] = "/usr/local/cuda/compat/:/usr/local/cuda/lib64/stubs";
        host.Variables["CUDA_HOME"] = "/usr/local/cuda/compat"; // the toolkit folders are searched the same way
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Driver);
        Assert.That(r.IsLoaded, Is.False);
        Assert.That(host.Loaded, Is.Empty);
        Assert.That(r.Error, Does.Contain("/usr/local/cuda/compat/ (skipped for the driver: stubs or forward compatibility; set DICC_CUDA_PATH to use one)"));
        Assert.That(r.Error, Does.Contain("/usr/local/cuda/lib64/stubs (skipped for the driver"));
        Assert.That(r.Error, Does.Contain("/usr/local/cuda/compat/lib64 (skipped for the driver"));
    }

    [Test]
    public void CompatDriverNamedByItsPathVariable_IsLoaded()
    {
        var host = new FakeHost();
        host.Files.Add("/usr/local/cuda/compat/libcuda.so.1");
        host.Variables["DICC_CUDA_PATH"] = "/usr/local/cuda/compat/libcuda.so.1";
        var r = new NativeLibraryProbe(host).Load(CudaLibrarySpec.Driver);
        Assert.That(r.Path, Is.EqualTo("/usr/local/cuda/compat/libcuda.so.1"), "told explicitly, the probe does as it is told");
    }

    [TestCase("/usr/local/cuda-13.0/compat", true)]
    [TestCase("/usr/local/cuda/lib64/stubs/", true)]
    [TestCase(@"C:\CUDA\v13.0\lib\x64\stubs", true)]
    [TestCase("/usr/lib/x86_64-linux-gnu", false)]
    [TestCase("/opt/compatible/lib", false)]
    [TestCase("/usr/local/cuda-compat-13/lib", false)]
    public void StubOrCompatFolder_IsAWholePathPart(string dir, bool expected) =>
        Assert.That(NativeLibraryProbe.IsStubOrCompatFolder(dir), Is.EqualTo(expected));

    [Test]
    public void OtherLibrariesInAFolderNamedCompat_AreStillFound()
    {
        var host = new FakeHost();
        host.Files.Add("/srv/compat/cuda/libcublas.so.12");
        host.Variables["DICC_CUDA_LIBRARY_DIR"] = "/srv/compat/cuda";
        Assert.That(new NativeLibraryProbe(host).Load(CudaLibrarySpec.Cublas).Path, Is.EqualTo("/srv/compat/cuda/libcublas.so.12"));
    }

    // ---- the real machine: whatever is missing must surface as GpuUnavailableException -------------

    [Test]
    public void WithoutDriver_CreatingAContextThrowsGpuUnavailable()
    {
        var driver = CudaLibraries.TryLoad(CudaLibrary.Driver);
        if (driver.IsLoaded) Assert.Ignore($"This machine has a CUDA driver ({driver.Path}); the no-driver path is not exercised here.");
        var e = Assert.Throws<GpuUnavailableException>(() => CudaContext.Create())!;
        Assert.That(e.Message, Does.Contain("CUDA driver (libcuda.so.1 or libcuda.so) could not be loaded"));
        Assert.That(e.Message, Does.Contain("/usr/local/nvidia/lib64"));
    }

    [Test]
    public void WithoutCudnn_VersionQueryThrowsGpuUnavailable()
    {
        var cudnn = CudaLibraries.TryLoad(CudaLibrary.Cudnn);
        if (cudnn.IsLoaded) Assert.Ignore($"This machine has cuDNN ({cudnn.Path}).");
        var e = Assert.Throws<GpuUnavailableException>(() => _ = CudnnContext.Version)!;
        Assert.That(e.Message, Does.Contain("libcudnn.so.9"));
    }

    [Test]
    public void WithoutCublas_VersionQueryThrowsGpuUnavailable()
    {
        var cublas = CudaLibraries.TryLoad(CudaLibrary.Cublas);
        if (cublas.IsLoaded) Assert.Ignore($"This machine has cuBLAS ({cublas.Path}).");
        var e = Assert.Throws<GpuUnavailableException>(() => _ = CublasContext.Version)!;
        Assert.That(e.Message, Does.Contain("libcublas.so.12"));
    }

    [Test]
    public void Probe_NeverThrowsAndExplainsEveryMissingPart()
    {
        var report = CudaInfo.Probe();
        TestContext.Out.WriteLine(report.Format());
        Assert.That(report.Libraries.Select(l => l.Library),
            Is.EqualTo(new[] { CudaLibrary.Driver, CudaLibrary.Nvrtc, CudaLibrary.Cublas, CudaLibrary.Cudnn }));
        foreach (var l in report.Libraries)
            Assert.That(l.IsLoaded ? l.Path : l.Error, Is.Not.Null.And.Not.Empty, l.Name);
        if (report.DriverVersion is null) Assert.That(report.DriverError, Is.Not.Null.And.Not.Empty);
    }
}
