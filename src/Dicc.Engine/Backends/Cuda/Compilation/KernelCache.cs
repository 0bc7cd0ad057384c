using System.Security.Cryptography;
using System.Text;

namespace Dicc.Engine.Backends.Cuda.Compilation;

/// <summary>
/// Compiled kernel images on disk, keyed by everything that determines them: the source hash, the NVRTC
/// version, the compile options (which name the architecture) and the image kind. A hit skips NVRTC (about a
/// second per module). The folder is DICC_KERNEL_CACHE when set ("off" disables the cache), else
/// $XDG_CACHE_HOME/dicc/kernels or ~/.cache/dicc/kernels. The cache is an optimisation: a folder that
/// cannot be written is ignored, and an entry that fails to load is replaced.
/// </summary>
internal sealed class KernelCache
{
    public const string DirectoryVariable = "DICC_KERNEL_CACHE";

    public KernelCache(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = directory;
    }

    public string Directory { get; }

    /// <summary>The cache of this process's settings, or null when DICC_KERNEL_CACHE=off.</summary>
    public static KernelCache? Default
    {
        get
        {
            string? dir = DefaultDirectory();
            return dir is null ? null : new KernelCache(dir);
        }
    }

    internal static string? DefaultDirectory()
    {
        string? configured = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrWhiteSpace(configured))
            return configured.Trim().ToLowerInvariant() is "off" or "none" or "0" or "false" ? null : configured;
        if (OperatingSystem.IsWindows())
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "dicc", "kernels");
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrWhiteSpace(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "dicc", "kernels");
    }

    /// <summary>The cache key: SHA-256 (hex) over the source hash, NVRTC version, options in order, and image kind.</summary>
    public static string Key(string sourceHash, string nvrtcVersion, IEnumerable<string> options, KernelImageKind kind)
    {
        var text = new StringBuilder("dicc-kernel-cache 1\n");
        text.Append("source ").Append(sourceHash).Append('\n');
        text.Append("nvrtc ").Append(nvrtcVersion).Append('\n');
        foreach (string o in options) text.Append("option ").Append(o).Append('\n');
        text.Append("kind ").Append(kind).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>The file an entry lives in: readable names first (module, kind), then the key.</summary>
    public string PathOf(string module, string key, KernelImageKind kind) =>
        Path.Combine(Directory, $"{Path.GetFileNameWithoutExtension(module)}-{key}.{(kind == KernelImageKind.Ptx ? "ptx" : kind == KernelImageKind.Cubin ? "cubin" : "fatbin")}");

    public bool TryRead(string module, string key, KernelImageKind kind, out byte[] image)
    {
        string path = PathOf(module, key, kind);
        try
        {
            if (File.Exists(path))
            {
                image = File.ReadAllBytes(path);
                if (image.Length > 0) return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        image = [];
        return false;
    }

    /// <summary>Stores an image (write to a temporary file, then rename, so readers never see half an entry).</summary>
    public bool TryWrite(string module, string key, KernelImageKind kind, byte[] image)
    {
        string path = PathOf(module, key, kind);
        string temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            File.WriteAllBytes(temp, image);
            File.Move(temp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
            return false;
        }
    }

    public void Remove(string module, string key, KernelImageKind kind)
    {
        try { File.Delete(PathOf(module, key, kind)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
