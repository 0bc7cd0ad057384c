namespace Dicc.Engine.Backends.Cuda;

/// <summary>
/// CUDA cannot be used here: no driver or device, a library missing (the driver, NVRTC, cuBLAS, cuDNN 9; the
/// message names every place searched), or a GPU older than the kernels support. Every CUDA entry point throws
/// this, and only this, for an unusable machine. The message says what was needed, what was found and what to
/// try; the CLI prints it as an input error (exit code 2).
/// </summary>
public sealed class GpuUnavailableException : InputException
{
    /// <summary>A GPU that cannot be used, with the reason.</summary>
    public GpuUnavailableException(string message) : base(message) { }
    /// <summary>A GPU that cannot be used, with the reason and the error behind it.</summary>
    public GpuUnavailableException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>The GPU has too little free memory for what the run plans (a batch too large for the device).</summary>
public sealed class GpuOutOfMemoryException : InputException
{
    /// <summary>Device memory ran out: what was asked for, free, total and held by the engine's pool.</summary>
    public GpuOutOfMemoryException(string device, long requestedBytes, long freeBytes, long totalBytes, long heldBytes, Exception? inner = null)
        : base(Format(device, requestedBytes, freeBytes, totalBytes, heldBytes), inner)
    {
        RequestedBytes = requestedBytes;
        FreeBytes = freeBytes;
        TotalBytes = totalBytes;
    }

    /// <summary>Bytes that were asked for.</summary>
    public long RequestedBytes { get; }
    /// <summary>Bytes free on the device when it failed.</summary>
    public long FreeBytes { get; }
    /// <summary>The device's total memory in bytes.</summary>
    public long TotalBytes { get; }

    internal static string Format(string device, long requested, long free, long total, long held) =>
        $"Out of GPU memory on {device}: {Size(requested)} more were needed, {(free >= 0 ? Size(free) : "an unknown amount")} of {Size(total)} are free " +
        $"(this run already holds {Size(held)}). Try a smaller batch (or width), close other programs using the GPU, or use the CPU.";

    internal static string Size(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):F2} GiB"
        : $"{bytes / (double)(1L << 20):F1} MiB";
}
