using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Compilation;

/// <summary>A compiled module image and where it came from.</summary>
internal sealed record KernelImage(string Module, byte[] Image, KernelImageKind Kind, string Origin);

/// <summary>
/// Gets a kernel module onto a device: the prebuilt fatbin of build-kernels.ps1 when it is present and was
/// built from the embedded source (its recorded source hash matches) and loads on this device; otherwise the
/// kernel cache; otherwise NVRTC, for the device's architecture, storing the result in the cache.
/// Prebuilt fatbins are looked for in DICC_KERNELS_DIR, else in <c>kernels/</c> beside the engine assembly.
/// </summary>
internal sealed class KernelModuleLoader
{
    public const string PrebuiltDirectoryVariable = "DICC_KERNELS_DIR";

    public KernelModuleLoader(KernelCache? cache, string? prebuiltDirectory)
    {
        Cache = cache;
        PrebuiltDirectory = prebuiltDirectory;
    }

    /// <summary>The loader of this process's settings (default cache and prebuilt folder).</summary>
    public static KernelModuleLoader Default => new(KernelCache.Default, DefaultPrebuiltDirectory());

    public KernelCache? Cache { get; }
    public string? PrebuiltDirectory { get; }

    internal static string? DefaultPrebuiltDirectory()
    {
        string? configured = Environment.GetEnvironmentVariable(PrebuiltDirectoryVariable);
        if (!string.IsNullOrWhiteSpace(configured)) return configured;
        string beside = Path.Combine(AppContext.BaseDirectory, "kernels");
        return Directory.Exists(beside) ? beside : null;
    }

    /// <summary>The fatbin file of a module and the file recording its source hash.</summary>
    public static (string Fatbin, string Hash) PrebuiltFiles(string directory, string module)
    {
        string fatbin = Path.Combine(directory, Path.GetFileNameWithoutExtension(module) + ".fatbin");
        return (fatbin, fatbin + ".sha256");
    }

    /// <summary>The prebuilt image of a module when present and current; otherwise null and why not.</summary>
    public KernelImage? TryPrebuilt(string module, out string reason)
    {
        if (PrebuiltDirectory is null)
        {
            reason = "no prebuilt kernel folder";
            return null;
        }
        var (fatbin, hashFile) = PrebuiltFiles(PrebuiltDirectory, module);
        try
        {
            if (!File.Exists(fatbin) || !File.Exists(hashFile))
            {
                reason = $"{fatbin} or its .sha256 is absent";
                return null;
            }
            string recorded = File.ReadAllText(hashFile).Trim().Split(' ', 2)[0].ToLowerInvariant();
            string expected = KernelSources.SourceHash(module);
            if (recorded != expected)
            {
                reason = $"{fatbin} was built from other sources (hash {recorded[..Math.Min(12, recorded.Length)]}, sources {expected[..12]})";
                return null;
            }
            reason = "";
            return new KernelImage(module, File.ReadAllBytes(fatbin), KernelImageKind.Fatbin, $"prebuilt {fatbin}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = $"{fatbin}: {e.Message}";
            return null;
        }
    }

    /// <summary>The module compiled by NVRTC for a device of compute capability <paramref name="computeCapability"/> (cached).</summary>
    public KernelImage Compile(string module, int computeCapability, bool refresh = false)
    {
        var (major, minor) = CudaRuntimeCompiler.Version;
        var target = KernelTarget.For(computeCapability, CudaRuntimeCompiler.SupportedArchitectures);
        string sourceHash = KernelSources.SourceHash(module);
        string key = KernelCache.Key(sourceHash, $"{major}.{minor}", target.Options, target.Kind);
        if (Cache is not null && !refresh && Cache.TryRead(module, key, target.Kind, out byte[] cached))
            return new KernelImage(module, cached, target.Kind, $"cache {Cache.PathOf(module, key, target.Kind)}");

        using var compiler = new CudaRuntimeCompiler(KernelSources.Get(module), module,
            [new KeyValuePair<string, string>(KernelSources.HeaderName, KernelSources.Header)]);
        compiler.Compile(target.Options);
        byte[] image = target.Kind == KernelImageKind.Cubin ? compiler.GetCubin() : compiler.GetPtx();
        Cache?.TryWrite(module, key, target.Kind, image);
        return new KernelImage(module, image, target.Kind, $"NVRTC {major}.{minor} {target}");
    }

    /// <summary>Loads a module into <paramref name="context"/>, preferring a current prebuilt fatbin.</summary>
    public CudaModule Load(CudaContext context, string module)
    {
        var prebuilt = TryPrebuilt(module, out _);
        if (prebuilt is not null)
        {
            try
            {
                return LoadImage(context, prebuilt);
            }
            catch (CudaException)
            {
                // No code for this device in the fatbin (or PTX too new for the driver): compile instead.
            }
        }

        var image = Compile(module, context.Device.ComputeCapability);
        try
        {
            return LoadImage(context, image);
        }
        catch (CudaException) when (image.Origin.StartsWith("cache", StringComparison.Ordinal))
        {
            // A damaged or stale cache entry: compile afresh (this overwrites it).
            return LoadImage(context, Compile(module, context.Device.ComputeCapability, refresh: true));
        }
    }

    private static CudaModule LoadImage(CudaContext context, KernelImage image)
    {
        var m = context.LoadModule(image.Image, image.Module);
        m.Origin = image.Origin;
        return m;
    }
}
