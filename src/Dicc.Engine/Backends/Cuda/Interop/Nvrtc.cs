using System.Runtime.InteropServices;

namespace Dicc.Engine.Backends.Cuda.Interop;

// NVRTC (libnvrtc). Signatures checked against nvrtc.h of CUDA 12.6; every function bound here exists
// unchanged since NVRTC 11.2 (nvrtcGetCUBIN* since 11.1, nvrtcGetSupportedArchs since 11.2), so Debian's
// NVRTC 11.8 (libnvrtc.so.11.2), NVRTC 12.x and 13.x all work. ABI: nvrtcResult is a C enum (int),
// nvrtcProgram a pointer (nint), size_t nuint, strings are NUL-terminated UTF-8.

/// <summary>nvrtcResult (nvrtc.h 12.6).</summary>
internal enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
    TimeFileWriteFailed = 12,
}

internal static unsafe partial class Nvrtc
{
    private const string Lib = "dicc-nvrtc";

    [LibraryImport(Lib)] public static partial nint nvrtcGetErrorString(NvrtcResult result);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetNumSupportedArchs(out int count);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetSupportedArchs(int* archs);

    [LibraryImport(Lib)]
    public static partial NvrtcResult nvrtcCreateProgram(out nint program, byte* source, byte* name,
        int numHeaders, byte** headers, byte** includeNames);

    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcDestroyProgram(ref nint program);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcCompileProgram(nint program, int numOptions, byte** options);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetPTXSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetCUBINSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetProgramLogSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial NvrtcResult nvrtcGetProgramLog(nint program, byte* log);

    public static string ErrorString(NvrtcResult result)
    {
        nint p = nvrtcGetErrorString(result);
        return p == 0 ? $"NVRTC error {(int)result}" : Marshal.PtrToStringUTF8(p) ?? $"NVRTC error {(int)result}";
    }
}
