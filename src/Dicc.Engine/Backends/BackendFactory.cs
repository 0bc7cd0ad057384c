using Dicc.Engine.Backends.Cpu;

namespace Dicc.Engine.Backends;

/// <summary>Creates the backend a <c>--device</c> value names: cpu, cuda, cuda:N, or auto (CUDA when usable, else CPU).</summary>
public static class BackendFactory
{
    /// <summary>
    /// Creates a CUDA backend on device <c>ordinal</c>; set by the CUDA backend's assembly code at start-up so
    /// that this file does not depend on it. Throws an <see cref="InputException"/>-derived error saying why
    /// CUDA cannot be used.
    /// </summary>
    internal static Func<int, Backend>? CudaFactory { get; set; }

    /// <summary>Whether a CUDA backend could be created (a driver, a device and the libraries are present).</summary>
    internal static Func<bool>? CudaAvailable { get; set; }

    /// <summary>Why the latest <c>auto</c> choice fell back to the CPU although a GPU was found (null when it did not).</summary>
    public static string? AutoFallbackReason { get; private set; }

    /// <summary>The backend <paramref name="device"/> names: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c> (CUDA when usable, else the CPU; see <see cref="AutoFallbackReason"/>). The caller owns (and disposes) the backend.</summary>
    /// <exception cref="InputException">An unknown device, or a GPU that cannot be used (parameter "device" for a malformed name).</exception>
    public static Backend Create(string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        string d = device.Trim().ToLowerInvariant();
        if (d == "cpu") return new CpuBackend();
        if (d == "auto")
        {
            AutoFallbackReason = null;
            if (CudaAvailable?.Invoke() != true || CudaFactory is null) return new CpuBackend();
            try
            {
                return CudaFactory(0);
            }
            catch (InputException e)
            {
                // A GPU that is present but cannot be used (too old, out of memory, a library that fails to
                // start): auto means "the best that works", so train on the CPU and say why.
                AutoFallbackReason = e.Message;
                return new CpuBackend();
            }
        }
        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int ordinal = 0;
            if (d.Length > 5 && !int.TryParse(d.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ordinal))
                throw new InputException($"device '{device}' is not cuda:N with a device number N.") { Parameter = "device" };
            if (CudaFactory is null) throw new InputException("device cuda: this build has no CUDA backend; use the CPU.") { Parameter = "device" };
            return CudaFactory(ordinal);
        }
        throw new InputException($"device '{device}' is unknown; use auto, cpu, cuda or cuda:N.") { Parameter = "device" };
    }
}
