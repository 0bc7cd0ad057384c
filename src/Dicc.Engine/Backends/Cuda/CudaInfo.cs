using System.Text;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda;

/// <summary>One native library in a <see cref="CudaReport"/>: where it was loaded from and its version, or why not.</summary>
public sealed record CudaLibraryReport(CudaLibrary Library, string Name, bool IsLoaded, string? Path, string? Version, string? Error);

/// <summary>A device in a <see cref="CudaReport"/>.</summary>
public sealed record CudaDeviceReport(CudaDeviceInfo Device, long FreeMemoryBytes);

/// <summary>What <c>dicc info</c> shows about CUDA: driver, devices, libraries, kernels.</summary>
public sealed record CudaReport(
    string? DriverVersion,
    string? DriverError,
    IReadOnlyList<CudaDeviceInfo> Devices,
    IReadOnlyList<CudaLibraryReport> Libraries,
    IReadOnlyList<int> NvrtcArchitectures,
    string? KernelCacheDirectory,
    string? PrebuiltKernelDirectory,
    IReadOnlyList<string> PrebuiltKernelStatus)
{
    /// <summary>True when a device is present and every library the CUDA backend needs loaded.</summary>
    public bool IsUsable => Devices.Count > 0 && Libraries.All(l => l.IsLoaded);

    /// <summary>Human-readable lines.</summary>
    public string Format()
    {
        var s = new StringBuilder();
        foreach (var l in Libraries)
        {
            s.AppendLine(l.IsLoaded ? $"{l.Name}: {l.Version ?? "?"} ({l.Path})" : $"{l.Name}: unavailable ({l.Error})");
            if (l.Library != CudaLibrary.Driver || !l.IsLoaded) continue;
            if (DriverError is not null) s.AppendLine($"  no usable device: {DriverError}");
            else if (Devices.Count == 0) s.AppendLine("  no device");
            foreach (var d in Devices) s.AppendLine($"  {d}");
        }
        if (NvrtcArchitectures.Count > 0) s.AppendLine($"NVRTC architectures: {string.Join(", ", NvrtcArchitectures.Select(a => $"sm_{a}"))}");
        s.AppendLine($"Kernel cache: {KernelCacheDirectory ?? "off"}");
        s.AppendLine($"Prebuilt kernels: {PrebuiltKernelDirectory ?? "none"}");
        foreach (var k in PrebuiltKernelStatus) s.AppendLine($"  {k}");
        return s.ToString();
    }
}

/// <summary>Probes the machine's CUDA support for reports; never throws.</summary>
public static class CudaInfo
{
    /// <summary>Probes the driver, the devices and the libraries; never throws (failures are reported in the result).</summary>
    public static CudaReport Probe()
    {
        string? driverVersion = null, driverError = null;
        var devices = new List<CudaDeviceInfo>();
        var libraries = new List<CudaLibraryReport>();

        var driver = CudaLibraries.TryLoad(CudaLibrary.Driver);
        if (driver.IsLoaded)
        {
            try
            {
                driverVersion = CudaDevices.FormatVersion(CudaDevices.DriverVersion);
                int count = CudaDevices.Count;
                for (int i = 0; i < count; i++) devices.Add(CudaDevices.Get(i));
            }
            catch (Exception e) { driverError = e.Message; }
        }
        else driverError = driver.Error;
        libraries.Add(Report(driver, () => driverVersion));

        var archs = new List<int>();
        libraries.Add(Report(CudaLibraries.TryLoad(CudaLibrary.Nvrtc), () =>
        {
            var (major, minor) = CudaRuntimeCompiler.Version;
            archs.AddRange(CudaRuntimeCompiler.SupportedArchitectures);
            return $"{major}.{minor}";
        }));
        libraries.Add(Report(CudaLibraries.TryLoad(CudaLibrary.Cublas), () =>
        {
            var (major, minor, patch) = CublasContext.Version;
            return $"{major}.{minor}.{patch}";
        }));
        libraries.Add(Report(CudaLibraries.TryLoad(CudaLibrary.Cudnn), () => CudnnContext.FormatVersion(CudnnContext.Version)));

        string? cacheDir = null, prebuiltDir = null;
        var prebuilt = new List<string>();
        try
        {
            var loader = KernelModuleLoader.Default;
            cacheDir = loader.Cache?.Directory;
            prebuiltDir = loader.PrebuiltDirectory;
            if (prebuiltDir is not null)
                foreach (string module in KernelSources.Modules)
                    prebuilt.Add(loader.TryPrebuilt(module, out string reason) is not null ? $"{module}: current" : $"{module}: not used ({reason})");
        }
        catch (Exception e) { prebuilt.Add($"kernel sources: {e.Message}"); }

        return new CudaReport(driverVersion, driverError, devices, libraries, archs, cacheDir, prebuiltDir, prebuilt);
    }

    private static CudaLibraryReport Report(LibraryLoadResult r, Func<string?> version)
    {
        if (!r.IsLoaded) return new CudaLibraryReport(r.Library, r.DisplayName, false, null, null, r.Error);
        try
        {
            return new CudaLibraryReport(r.Library, r.DisplayName, true, r.Path, version(), null);
        }
        catch (Exception e) // a library that loads but does not answer (wrong version, missing symbol)
        {
            return new CudaLibraryReport(r.Library, r.DisplayName, false, r.Path, null, e.Message);
        }
    }
}
