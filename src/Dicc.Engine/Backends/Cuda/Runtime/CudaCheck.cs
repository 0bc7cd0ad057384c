using System.Runtime.CompilerServices;
using Dicc.Engine.Backends.Cuda.Interop;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// Every native status goes through one of these: success returns, anything else throws a
/// <see cref="CudaException"/> naming the API (taken from the call expression), the status name and the
/// library's text. The throwing part is out of line so that the checks cost a compare on the hot path.
/// </summary>
internal static class CudaCheck
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ThrowIfFailed(CuResult status, [CallerArgumentExpression(nameof(status))] string? call = null)
    {
        if (status != CuResult.Success) ThrowDriver(status, call);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ThrowIfFailed(NvrtcResult status, [CallerArgumentExpression(nameof(status))] string? call = null)
    {
        if (status != NvrtcResult.Success) ThrowNvrtc(status, call);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ThrowIfFailed(CublasStatus status, [CallerArgumentExpression(nameof(status))] string? call = null)
    {
        if (status != CublasStatus.Success) ThrowCublas(status, call);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ThrowIfFailed(CudnnStatus status, [CallerArgumentExpression(nameof(status))] string? call = null)
    {
        if (status != CudnnStatus.Success) ThrowCudnn(status, call);
    }

    /// <summary>"cuMemAlloc_v2" from "CudaDriver.cuMemAlloc_v2(out ulong p, (nuint)bytes)".</summary>
    internal static string ApiName(string? call)
    {
        if (string.IsNullOrWhiteSpace(call)) return "CUDA call";
        int paren = call.IndexOf('(');
        string head = paren >= 0 ? call[..paren] : call;
        int dot = head.LastIndexOf('.');
        return (dot >= 0 ? head[(dot + 1)..] : head).Trim();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDriver(CuResult status, string? call)
    {
        string api = ApiName(call);
        string name = SafeText(() => CudaDriver.ErrorName(status)) ?? $"CUDA_ERROR {(int)status}";
        string text = SafeText(() => CudaDriver.ErrorString(status)) ?? "";
        // A machine without a usable device is "unavailable", not a failed call.
        if (status is CuResult.NoDevice or CuResult.StubLibrary or CuResult.DeviceUnavailable or CuResult.SystemDriverMismatch
                or CuResult.CompatNotSupportedOnDevice
            || (status == CuResult.NotInitialized && api == nameof(CudaDriver.cuInit)))
            throw new GpuUnavailableException($"CUDA is not usable on this machine: {api} returned {name} ({(int)status}){(text.Length > 0 ? ": " + text : "")}.");
        throw new CudaException(api, name, (int)status, text);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNvrtc(NvrtcResult status, string? call) =>
        throw new CudaException(ApiName(call), SafeText(() => Nvrtc.ErrorString(status)) ?? $"NVRTC error {(int)status}", (int)status, "");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowCublas(CublasStatus status, string? call) =>
        throw new CudaException(ApiName(call), SafeText(() => Cublas.StatusName(status)) ?? $"CUBLAS_STATUS {(int)status}", (int)status,
            SafeText(() => Cublas.StatusString(status)) ?? "");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowCudnn(CudnnStatus status, string? call) =>
        throw new CudaException(ApiName(call), SafeText(() => Cudnn.ErrorString(status)) ?? $"CUDNN_STATUS {(int)status}", (int)status, "",
            SafeText(Cudnn.LastErrorString));

    /// <summary>Error text is best effort: an old library without the text function must not hide the real error.</summary>
    private static string? SafeText(Func<string?> get)
    {
        try { return get(); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
    }
}
