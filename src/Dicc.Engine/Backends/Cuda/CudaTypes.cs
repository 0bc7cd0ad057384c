namespace Dicc.Engine.Backends.Cuda;

/// <summary>The native NVIDIA libraries the CUDA backend binds to.</summary>
public enum CudaLibrary
{
    /// <summary>The CUDA driver API (libcuda), installed with the NVIDIA driver.</summary>
    Driver,

    /// <summary>NVRTC, the run-time CUDA C compiler (libnvrtc); needs no GPU.</summary>
    Nvrtc,

    /// <summary>cuBLAS (libcublas).</summary>
    Cublas,

    /// <summary>cuDNN 9 (libcudnn.so.9, a shim that loads libcudnn_ops / libcudnn_cnn / ...).</summary>
    Cudnn,
}

/// <summary>What one GPU is, as the driver reports it.</summary>
public sealed record CudaDeviceInfo(
    int Ordinal,
    string Name,
    int ComputeCapabilityMajor,
    int ComputeCapabilityMinor,
    long TotalMemoryBytes,
    int MultiprocessorCount,
    int MaxThreadsPerBlock,
    int MaxSharedMemoryPerBlock,
    int MaxSharedMemoryPerBlockOptin,
    int WarpSize,
    int L2CacheBytes,
    int ClockRateKHz,
    int MemoryClockRateKHz,
    int MemoryBusWidthBits)
{
    /// <summary>Compute capability as one number, e.g. 90 for 9.0.</summary>
    public int ComputeCapability => ComputeCapabilityMajor * 10 + ComputeCapabilityMinor;

    /// <summary>The real architecture name, e.g. "sm_90".</summary>
    public string Architecture => $"sm_{ComputeCapability}";

    /// <inheritdoc/>
    public override string ToString() =>
        $"cuda:{Ordinal} {Name}, compute capability {ComputeCapabilityMajor}.{ComputeCapabilityMinor}, " +
        $"{TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, {MultiprocessorCount} SMs";
}
