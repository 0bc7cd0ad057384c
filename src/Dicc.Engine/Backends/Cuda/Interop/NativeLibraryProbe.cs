using System.Runtime.InteropServices;
using System.Text;

namespace Dicc.Engine.Backends.Cuda.Interop;

/// <summary>How one library was found, or everything that was tried when it was not.</summary>
internal sealed record LibraryLoadResult(CudaLibrary Library, string DisplayName, nint Handle, string? Path, string? Error)
{
    public bool IsLoaded => Handle != 0;
}

/// <summary>What the probe needs from the machine; faked in tests so that probing is checked without the libraries.</summary>
internal interface IProbeHost
{
    bool IsWindows { get; }
    string? GetEnvironmentVariable(string name);
    bool DirectoryExists(string path);
    bool FileExists(string path);

    /// <summary>Subfolders of <paramref name="path"/> matching a wildcard, sorted by name; empty if the folder is absent.</summary>
    IReadOnlyList<string> GetDirectories(string path, string pattern);

    /// <summary>Files of <paramref name="path"/> matching a wildcard, sorted by name; empty if the folder is absent.</summary>
    IReadOnlyList<string> GetFiles(string path, string pattern);

    /// <summary>dlopen / LoadLibrary of a path or bare name; the loader's message on failure.</summary>
    bool TryLoad(string pathOrName, out nint handle, out string? error);

    /// <summary>The folder a path names after following a symbolic link (e.g. /bin to /usr/bin); the path itself otherwise.</summary>
    string ResolveDirectory(string path);

    /// <summary>The file a loaded library came from (for the report); null where the platform cannot tell.</summary>
    string? LoadedPath(nint handle, string symbol);
}

/// <summary>
/// Finds the NVIDIA libraries. Order, per library: its DICC_*_PATH variable (a file; when set it is the only
/// candidate), the folders in DICC_CUDA_LIBRARY_DIR, the system loader (LD_LIBRARY_PATH, ld.so.cache),
/// CUDA toolkit folders (CUDA_PATH, CUDA_HOME, /usr/local/cuda*, driver folders of containers and WSL), and
/// the pip layout <c>site-packages/nvidia/*/lib</c> of common virtual environments and of every python on
/// PATH (where PyTorch's cuDNN, cuBLAS and NVRTC live). A library found in a folder has its companions in
/// that folder loaded first (cuDNN's sub-libraries, cublasLt, nvrtc-builtins), because they are opened later
/// by bare name and would otherwise not be found outside the loader path.
/// </summary>
internal sealed class NativeLibraryProbe(IProbeHost host)
{
    public const string LibraryDirVariable = "DICC_CUDA_LIBRARY_DIR";

    /// <summary>Where a virtual environment with PyTorch lives on our GPU check machines.</summary>
    private static readonly string[] KnownVirtualEnvironments = ["/opt/torch/.venv", "/opt/venv", "/opt/conda"];

    public LibraryLoadResult Load(CudaLibrarySpec spec)
    {
        var searched = new List<string>();
        var failures = new List<string>();

        string? explicitPath = host.GetEnvironmentVariable(spec.PathVariable);
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            if (!host.FileExists(explicitPath))
                return Fail(spec, $"{spec.PathVariable}={explicitPath} names no file.");
            string? dir = System.IO.Path.GetDirectoryName(explicitPath);
            if (dir is not null) PreloadCompanions(spec, dir);
            if (host.TryLoad(explicitPath, out nint h, out string? err))
                return new LibraryLoadResult(spec.Library, spec.DisplayName, h, explicitPath, null);
            return Fail(spec, $"{spec.PathVariable}={explicitPath} could not be loaded: {err}");
        }
        searched.Add($"{spec.PathVariable} (not set)");

        string? dirs = host.GetEnvironmentVariable(LibraryDirVariable);
        if (!string.IsNullOrWhiteSpace(dirs))
        {
            foreach (string dir in dirs.Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var r = TryFolder(spec, dir, searched, failures);
                if (r is not null) return r;
            }
        }
        else searched.Add($"{LibraryDirVariable} (not set)");

        foreach (string name in spec.FileNames)
        {
            if (host.TryLoad(name, out nint h, out string? err))
                return new LibraryLoadResult(spec.Library, spec.DisplayName, h, host.LoadedPath(h, spec.ProbeSymbol) ?? name, null);
            // A file that exists but fails to load (a missing dependency) says more than "not found".
            if (err is not null && !IsNotFound(name, err)) failures.Add($"{name}: {err}");
        }
        searched.Add(host.IsWindows ? "the system loader (PATH)" : "the system loader (LD_LIBRARY_PATH, ld.so.cache, /usr/lib)");

        foreach (string dir in CandidateFolders(spec))
        {
            var r = TryFolder(spec, dir, searched, failures);
            if (r is not null) return r;
        }

        if (spec.Library != CudaLibrary.Driver) // pip wheels never carry the driver
        {
            var sitePackages = SitePackagesFolders();
            foreach (string dir in PythonPackageFolders(sitePackages))
            {
                var r = TryFolder(spec, dir, null, failures);
                if (r is not null) return r;
            }
            var absentVenvs = KnownVirtualEnvironments.Where(v => !host.DirectoryExists(v)).Select(v => $"{v} (absent)");
            searched.Add("python packages (nvidia/*/lib, torch/lib) in " +
                string.Join(", ", sitePackages.Concat(absentVenvs).DefaultIfEmpty("no site-packages folder")));
        }

        var message = new StringBuilder();
        message.Append($"{spec.DisplayName} ({string.Join(" or ", spec.FileNames)}) could not be loaded.");
        if (failures.Count > 0) message.Append(" Found but failed: ").Append(string.Join("; ", failures)).Append('.');
        message.Append(" Searched: ").Append(string.Join("; ", searched)).Append('.');
        message.Append($" Set {spec.PathVariable} to the library file or {LibraryDirVariable} to its folder.");
        return Fail(spec, message.ToString());
    }

    private static LibraryLoadResult Fail(CudaLibrarySpec spec, string message) =>
        new(spec.Library, spec.DisplayName, 0, null, message);

    /// <summary>
    /// True when the loader did not find the library itself (as opposed to finding it and failing on a
    /// dependency, which dlerror reports under the dependency's name and which is worth reporting).
    /// </summary>
    private bool IsNotFound(string name, string error) =>
        host.IsWindows || error.Contains($"{name}: cannot open shared object file", StringComparison.Ordinal);

    /// <summary>Tries the library's names in one folder; <paramref name="searched"/> (when given) records the folder.</summary>
    private LibraryLoadResult? TryFolder(CudaLibrarySpec spec, string dir, List<string>? searched, List<string> failures)
    {
        if (spec.Library == CudaLibrary.Driver && IsStubOrCompatFolder(dir))
        {
            searched?.Add($"{dir} (skipped for the driver: stubs or forward compatibility; set {spec.PathVariable} to use one)");
            return null;
        }
        if (!host.DirectoryExists(dir))
        {
            searched?.Add($"{dir} (absent)");
            return null;
        }
        searched?.Add(dir);
        foreach (string name in spec.FileNames)
        {
            string path = System.IO.Path.Combine(dir, name);
            if (!host.FileExists(path)) continue;
            PreloadCompanions(spec, dir);
            if (host.TryLoad(path, out nint h, out string? err))
                return new LibraryLoadResult(spec.Library, spec.DisplayName, h, path, null);
            failures.Add($"{path}: {err}");
        }
        return null;
    }

    /// <summary>
    /// A folder named stubs (the toolkit's link-time libcuda.so, whose cuInit fails with CUDA_ERROR_STUB_LIBRARY)
    /// or compat (the forward-compatibility libcuda.so.1, which fails on a kernel driver it was not made for)
    /// anywhere in the path. Neither is the driver to pick by searching folders: the system loader finds the
    /// installed one, and DICC_CUDA_PATH still loads any file it names.
    /// </summary>
    internal static bool IsStubOrCompatFolder(string dir) =>
        dir.Split(['/', '\\'], StringSplitOptions.RemoveEmptyEntries).Any(part => part is "stubs" or "compat");

    /// <summary>The toolkit and driver folders searched after the system loader, in order, without duplicates.</summary>
    internal IReadOnlyList<string> CandidateFolders(CudaLibrarySpec spec)
    {
        var folders = new List<string>();
        void Add(string? dir)
        {
            if (string.IsNullOrWhiteSpace(dir)) return;
            dir = System.IO.Path.TrimEndingDirectorySeparator(dir);
            if (!folders.Contains(dir)) folders.Add(dir);
        }

        string libDir = host.IsWindows ? "bin" : "lib64";
        foreach (string variable in new[] { "CUDA_PATH", "CUDA_HOME" })
        {
            string? root = host.GetEnvironmentVariable(variable);
            if (string.IsNullOrWhiteSpace(root)) continue;
            Add(System.IO.Path.Combine(root, libDir));
            if (host.IsWindows) Add(System.IO.Path.Combine(root, "bin", "x64")); // CUDA 13 on Windows
        }
        if (!host.IsWindows)
        {
            Add("/usr/local/cuda/lib64");
            Add("/usr/local/cuda/targets/x86_64-linux/lib");
            // Versioned toolkits, newest first.
            foreach (string d in host.GetDirectories("/usr/local", "cuda-*").Reverse()) Add(System.IO.Path.Combine(d, "lib64"));
            if (spec.Library == CudaLibrary.Driver)
            {
                Add("/usr/local/nvidia/lib64"); // containers started with the NVIDIA runtime
                Add("/usr/lib/wsl/lib");        // WSL 2
                Add("/usr/lib/x86_64-linux-gnu");
                Add("/usr/lib64");
            }
        }
        return folders;
    }

    /// <summary>The existing nvidia/*/lib (cu12: nvidia/cudnn/lib, cu13: nvidia/cu13/lib) and torch/lib folders of the site-packages.</summary>
    internal IReadOnlyList<string> PythonPackageFolders(IReadOnlyList<string> sitePackages)
    {
        var folders = new List<string>();
        foreach (string root in sitePackages)
        {
            foreach (string pkg in host.GetDirectories(System.IO.Path.Combine(root, "nvidia"), "*"))
                folders.Add(System.IO.Path.Combine(pkg, host.IsWindows ? "bin" : "lib"));
            folders.Add(System.IO.Path.Combine(root, "torch", "lib"));
        }
        return folders.Distinct().Where(host.DirectoryExists).ToList();
    }

    /// <summary>site-packages folders of known virtual environments, conda, the user, the system, and pythons on PATH.</summary>
    internal IReadOnlyList<string> SitePackagesFolders()
    {
        var roots = new List<string>();
        void AddEnvironment(string? prefix)
        {
            if (string.IsNullOrWhiteSpace(prefix)) return;
            if (host.IsWindows)
            {
                roots.Add(System.IO.Path.Combine(prefix, "Lib", "site-packages"));
                return;
            }
            foreach (string py in host.GetDirectories(System.IO.Path.Combine(prefix, "lib"), "python3*"))
            {
                roots.Add(System.IO.Path.Combine(py, "site-packages"));
                roots.Add(System.IO.Path.Combine(py, "dist-packages"));
            }
        }

        AddEnvironment(host.GetEnvironmentVariable("VIRTUAL_ENV"));
        AddEnvironment(host.GetEnvironmentVariable("CONDA_PREFIX"));
        foreach (string venv in KnownVirtualEnvironments) AddEnvironment(venv);
        string? home = host.GetEnvironmentVariable(host.IsWindows ? "USERPROFILE" : "HOME");
        if (!string.IsNullOrWhiteSpace(home)) AddEnvironment(System.IO.Path.Combine(home, ".local"));
        if (!host.IsWindows)
        {
            AddEnvironment("/usr/local");
            AddEnvironment("/usr");
            roots.Add("/usr/lib/python3/dist-packages");
        }
        // Any python on PATH: <prefix>/bin/python3 -> <prefix>/lib/python3.X/site-packages.
        string? path = host.GetEnvironmentVariable("PATH");
        if (!string.IsNullOrWhiteSpace(path))
            foreach (string bin in path.Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                bool hasPython = host.IsWindows
                    ? host.FileExists(System.IO.Path.Combine(bin, "python.exe"))
                    : host.FileExists(System.IO.Path.Combine(bin, "python3")) || host.FileExists(System.IO.Path.Combine(bin, "python"));
                string dir = host.ResolveDirectory(System.IO.Path.TrimEndingDirectorySeparator(bin));
                if (hasPython) AddEnvironment(host.IsWindows ? dir : System.IO.Path.GetDirectoryName(dir));
            }
        return roots.Distinct().Where(host.DirectoryExists).ToList();
    }

    /// <summary>Loads, from the folder of the library about to be loaded, the libraries it opens later by bare name.</summary>
    private void PreloadCompanions(CudaLibrarySpec spec, string dir)
    {
        if (host.IsWindows) return; // Windows searches the folder of the loading DLL's dependencies differently; not needed there.
        switch (spec.Library)
        {
            case CudaLibrary.Cublas:
                foreach (string f in host.GetFiles(dir, "libcublasLt.so.*")) host.TryLoad(f, out _, out _);
                break;
            case CudaLibrary.Nvrtc:
                foreach (string f in host.GetFiles(dir, "libnvrtc-builtins.so.*")) host.TryLoad(f, out _, out _);
                break;
            case CudaLibrary.Cudnn:
                // In a pip layout (site-packages/nvidia/cudnn/lib) cuDNN's engines open cublasLt and NVRTC of the
                // same CUDA major version by name; those live in sibling packages (nvidia/cublas/lib, ...).
                string nvidia = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, "..", ".."));
                if (System.IO.Path.GetFileName(nvidia) == "nvidia")
                    foreach (string sibling in host.GetDirectories(nvidia, "*"))
                    {
                        string lib = System.IO.Path.Combine(sibling, "lib");
                        foreach (string pattern in new[] { "libcublasLt.so.*", "libnvrtc-builtins.so.*", "libnvrtc.so.*" })
                            foreach (string f in host.GetFiles(lib, pattern)) host.TryLoad(f, out _, out _);
                    }
                // The shim opens libcudnn_graph, _ops, _cnn, _adv, _engines_* and _heuristic by name; they depend on
                // one another, so load in passes until nothing more loads (graph first, then the rest).
                var pending = host.GetFiles(dir, "libcudnn_*.so.9").ToList();
                pending.Sort((a, b) => Rank(a).CompareTo(Rank(b)));
                bool progress = true;
                while (pending.Count > 0 && progress)
                {
                    progress = false;
                    for (int i = 0; i < pending.Count; i++)
                    {
                        if (!host.TryLoad(pending[i], out _, out _)) continue;
                        pending.RemoveAt(i--);
                        progress = true;
                    }
                }
                break;
        }

        static int Rank(string file) =>
            file.Contains("_graph", StringComparison.Ordinal) ? 0 :
            file.Contains("_engines", StringComparison.Ordinal) || file.Contains("_heuristic", StringComparison.Ordinal) ? 1 :
            file.Contains("_ops", StringComparison.Ordinal) ? 2 : 3;
    }
}

/// <summary>The probe host of the running process.</summary>
internal sealed class SystemProbeHost : IProbeHost
{
    public static readonly SystemProbeHost Instance = new();

    public bool IsWindows => OperatingSystem.IsWindows();
    public string? GetEnvironmentVariable(string name) => Environment.GetEnvironmentVariable(name);
    public bool DirectoryExists(string path) => Directory.Exists(path);
    public bool FileExists(string path) => File.Exists(path);

    public string ResolveDirectory(string path)
    {
        try
        {
            return Directory.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return path; }
    }

    public IReadOnlyList<string> GetDirectories(string path, string pattern)
    {
        try
        {
            if (!Directory.Exists(path)) return [];
            var d = Directory.GetDirectories(path, pattern);
            Array.Sort(d, StringComparer.Ordinal);
            return d;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    public IReadOnlyList<string> GetFiles(string path, string pattern)
    {
        try
        {
            if (!Directory.Exists(path)) return [];
            var f = Directory.GetFiles(path, pattern);
            Array.Sort(f, StringComparer.Ordinal);
            return f;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    public bool TryLoad(string pathOrName, out nint handle, out string? error)
    {
        try
        {
            handle = NativeLibrary.Load(pathOrName);
            error = null;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            handle = 0;
            error = e.Message;
            return false;
        }
    }

    /// <summary>On Linux, the mapping in /proc/self/maps that holds one of the library's exports.</summary>
    public string? LoadedPath(nint handle, string symbol)
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryGetExport(handle, symbol, out nint address)) return null;
        try
        {
            ulong a = (ulong)address;
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                // start-end perms offset dev inode path
                int dash = line.IndexOf('-'), space = line.IndexOf(' ');
                if (dash <= 0 || space <= dash) continue;
                ulong start = Convert.ToUInt64(line[..dash], 16), end = Convert.ToUInt64(line[(dash + 1)..space], 16);
                if (a < start || a >= end) continue;
                int slash = line.IndexOf('/');
                return slash >= 0 ? line[slash..].Trim() : null;
            }
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { }
        return null;
    }
}
