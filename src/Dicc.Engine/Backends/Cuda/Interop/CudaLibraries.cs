using System.Reflection;
using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Interop;

/// <summary>
/// The process-wide state of the NVIDIA libraries: each is probed once (see <see cref="NativeLibraryProbe"/>),
/// and the engine's P/Invoke declarations (which use private import names such as "dicc-cudnn") resolve to
/// the handle found. Every entry point calls <see cref="Require"/> before its first native call, so a missing
/// library surfaces as one <see cref="GpuUnavailableException"/> naming what was searched, never as a
/// DllNotFoundException.
/// </summary>
internal static class CudaLibraries
{
    private static readonly object Gate = new();
    private static readonly Dictionary<CudaLibrary, LibraryLoadResult> Results = [];
    private static bool _resolverInstalled;

    /// <summary>Loads the library (once) or throws <see cref="GpuUnavailableException"/> saying what was searched.</summary>
    public static void Require(CudaLibrary library)
    {
        var r = TryLoad(library);
        if (!r.IsLoaded) throw new GpuUnavailableException(r.Error ?? $"{r.DisplayName} could not be loaded.");
    }

    /// <summary>Loads the library (once) and reports how; never throws.</summary>
    public static LibraryLoadResult TryLoad(CudaLibrary library)
    {
        lock (Gate)
        {
            if (Results.TryGetValue(library, out var cached)) return cached;
            InstallResolver();
            // cuDNN's engines open cuBLAS(Lt) and NVRTC by bare name: have them loaded (from wherever they are) first.
            if (library == CudaLibrary.Cudnn)
            {
                LoadLocked(CudaLibrary.Cublas);
                LoadLocked(CudaLibrary.Nvrtc);
            }
            return LoadLocked(library);
        }
    }

    private static LibraryLoadResult LoadLocked(CudaLibrary library)
    {
        if (Results.TryGetValue(library, out var cached)) return cached;
        LibraryLoadResult result;
        try
        {
            result = new NativeLibraryProbe(SystemProbeHost.Instance).Load(CudaLibrarySpec.Of(library));
        }
        catch (Exception e) // the probe touches the file system and the loader: never let that escape as anything odd
        {
            var spec = CudaLibrarySpec.Of(library);
            result = new LibraryLoadResult(library, spec.DisplayName, 0, null, $"{spec.DisplayName}: probing failed: {e.Message}");
        }
        Results[library] = result;
        return result;
    }

    private static void InstallResolver()
    {
        if (_resolverInstalled) return;
        _resolverInstalled = true;
        // One resolver per assembly is allowed; this one answers only the CUDA import names and defers the rest.
        NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var spec = CudaLibrarySpec.OfImportName(name);
        if (spec is null) return 0;
        lock (Gate) return Results.TryGetValue(spec.Library, out var r) ? r.Handle : LoadLocked(spec.Library).Handle;
    }
}
