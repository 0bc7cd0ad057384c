using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>The driver: initialisation, version and the devices it sees.</summary>
internal static class CudaDevices
{
    private static readonly object Gate = new();
    private static bool _initialized;

    /// <summary>Loads libcuda and calls cuInit once; throws <see cref="GpuUnavailableException"/> without driver or device.</summary>
    public static void EnsureInitialized()
    {
        lock (Gate)
        {
            if (_initialized) return;
            CudaLibraries.Require(CudaLibrary.Driver);
            ThrowIfFailed(CudaDriver.cuInit(0));
            _initialized = true;
        }
    }

    /// <summary>The driver's CUDA version, e.g. 13000 for 13.0.</summary>
    public static int DriverVersion
    {
        get
        {
            CudaLibraries.Require(CudaLibrary.Driver);
            ThrowIfFailed(CudaDriver.cuDriverGetVersion(out int v));
            return v;
        }
    }

    public static int Count
    {
        get
        {
            EnsureInitialized();
            ThrowIfFailed(CudaDriver.cuDeviceGetCount(out int n));
            return n;
        }
    }

    public static unsafe CudaDeviceInfo Get(int ordinal)
    {
        EnsureInitialized();
        int count = Count;
        if (ordinal < 0 || ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal,
                count == 0 ? "No CUDA device is present." : $"CUDA device ordinals are 0..{count - 1}.");
        ThrowIfFailed(CudaDriver.cuDeviceGet(out int dev, ordinal));
        const int nameLength = 256;
        byte* name = stackalloc byte[nameLength];
        ThrowIfFailed(CudaDriver.cuDeviceGetName(name, nameLength, dev));
        ThrowIfFailed(CudaDriver.cuDeviceTotalMem_v2(out nuint total, dev));
        return new CudaDeviceInfo(
            ordinal,
            Marshal.PtrToStringUTF8((nint)name) ?? "unknown",
            Attribute(dev, CuDeviceAttribute.ComputeCapabilityMajor),
            Attribute(dev, CuDeviceAttribute.ComputeCapabilityMinor),
            (long)total,
            Attribute(dev, CuDeviceAttribute.MultiprocessorCount),
            Attribute(dev, CuDeviceAttribute.MaxThreadsPerBlock),
            Attribute(dev, CuDeviceAttribute.MaxSharedMemoryPerBlock),
            Attribute(dev, CuDeviceAttribute.MaxSharedMemoryPerBlockOptin),
            Attribute(dev, CuDeviceAttribute.WarpSize),
            Attribute(dev, CuDeviceAttribute.L2CacheSize),
            Attribute(dev, CuDeviceAttribute.ClockRate),
            Attribute(dev, CuDeviceAttribute.MemoryClockRate),
            Attribute(dev, CuDeviceAttribute.GlobalMemoryBusWidth));
    }

    internal static int Handle(int ordinal)
    {
        EnsureInitialized();
        ThrowIfFailed(CudaDriver.cuDeviceGet(out int dev, ordinal));
        return dev;
    }

    private static int Attribute(int dev, CuDeviceAttribute attribute)
    {
        ThrowIfFailed(CudaDriver.cuDeviceGetAttribute(out int v, attribute, dev));
        return v;
    }

    /// <summary>"13.0" from 13000.</summary>
    public static string FormatVersion(int cudaVersion) => $"{cudaVersion / 1000}.{cudaVersion % 1000 / 10}";
}
