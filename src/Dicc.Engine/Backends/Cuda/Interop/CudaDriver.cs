using System.Runtime.InteropServices;

namespace Dicc.Engine.Backends.Cuda.Interop;

// CUDA driver API (libcuda). Signatures checked against cuda.h of CUDA 12.6 (CUDA_VERSION 12060). The
// entry points are the exported symbols that cuda.h's macros select (cuMemAlloc -> cuMemAlloc_v2,
// cuGraphInstantiate -> cuGraphInstantiateWithFlags, ...); drivers keep exporting them for applications built
// with older toolkits, so they are what driver 580 (CUDA 13.0) runs too. None of the functions used here
// changed signature in CUDA 13.0 (its changes hit cuCtxCreate, cuMemAdvise, cuMemPrefetchAsync,
// cuStreamGetCaptureInfo, none of which is bound).
// ABI: CUresult and every CU* enum are C enums (int); CUdevice is int; CUdeviceptr is unsigned long long
// on 64-bit hosts (ulong); handles (CUcontext, CUstream, CUevent, CUmodule, CUfunction, CUgraph,
// CUgraphExec) are pointers (nint); size_t is nuint.

/// <summary>CUresult values the engine names itself (the text of any value comes from cuGetErrorName/String).</summary>
internal enum CuResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    Deinitialized = 4,
    StubLibrary = 34,
    DeviceUnavailable = 46,
    NoDevice = 100,
    InvalidDevice = 101,
    InvalidImage = 200,
    InvalidContext = 201,
    NoBinaryForGpu = 209,
    InvalidPtx = 218,
    UnsupportedPtxVersion = 222,
    InvalidHandle = 400,
    NotFound = 500,
    NotReady = 600,
    IllegalAddress = 700,
    LaunchOutOfResources = 701,
    LaunchFailed = 719,
    NotSupported = 801,
    SystemDriverMismatch = 803,
    CompatNotSupportedOnDevice = 804,
    StreamCaptureUnsupported = 900,
    StreamCaptureInvalidated = 901,
    Unknown = 999,
}

/// <summary>CUdevice_attribute values read for device reports (cuda.h 12.6).</summary>
internal enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxBlockDimX = 2,
    MaxGridDimX = 5,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    ClockRate = 13,
    MultiprocessorCount = 16,
    MemoryClockRate = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    MaxThreadsPerMultiprocessor = 39,
    PciBusId = 33,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary>CUfunction_attribute values (cuda.h 12.6).</summary>
internal enum CuFunctionAttribute
{
    MaxThreadsPerBlock = 0,
    NumRegisters = 4,
    MaxDynamicSharedSizeBytes = 8,
}

internal static unsafe partial class CudaDriver
{
    private const string Lib = "dicc-cuda";

    public const uint StreamNonBlocking = 0x1;   // CU_STREAM_NON_BLOCKING
    public const uint EventDefault = 0x0;        // CU_EVENT_DEFAULT
    public const uint EventDisableTiming = 0x2;  // CU_EVENT_DISABLE_TIMING
    public const uint MemHostAllocPortable = 0x1; // CU_MEMHOSTALLOC_PORTABLE

    // ---- initialisation, version, errors ----
    [LibraryImport(Lib)] public static partial CuResult cuInit(uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuDriverGetVersion(out int driverVersion);
    [LibraryImport(Lib)] public static partial CuResult cuGetErrorName(CuResult error, out nint str);
    [LibraryImport(Lib)] public static partial CuResult cuGetErrorString(CuResult error, out nint str);

    // ---- devices ----
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetName(byte* name, int len, int dev);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceGetAttribute(out int value, CuDeviceAttribute attrib, int dev);
    [LibraryImport(Lib)] public static partial CuResult cuDeviceTotalMem_v2(out nuint bytes, int dev);

    // ---- primary context ----
    [LibraryImport(Lib)] public static partial CuResult cuDevicePrimaryCtxRetain(out nint context, int dev);
    [LibraryImport(Lib)] public static partial CuResult cuDevicePrimaryCtxRelease_v2(int dev);
    [LibraryImport(Lib)] public static partial CuResult cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] public static partial CuResult cuCtxGetCurrent(out nint context);
    [LibraryImport(Lib)] public static partial CuResult cuCtxSynchronize();
    [LibraryImport(Lib)] public static partial CuResult cuMemGetInfo_v2(out nuint free, out nuint total);

    // ---- memory ----
    [LibraryImport(Lib)] public static partial CuResult cuMemAlloc_v2(out ulong dptr, nuint bytesize);
    [LibraryImport(Lib)] public static partial CuResult cuMemFree_v2(ulong dptr);
    [LibraryImport(Lib)] public static partial CuResult cuMemHostAlloc(out nint pointer, nuint bytesize, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuMemFreeHost(nint pointer);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyHtoD_v2(ulong dstDevice, void* srcHost, nuint byteCount);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyDtoH_v2(void* dstHost, ulong srcDevice, nuint byteCount);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyDtoD_v2(ulong dstDevice, ulong srcDevice, nuint byteCount);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyHtoDAsync_v2(ulong dstDevice, void* srcHost, nuint byteCount, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyDtoHAsync_v2(void* dstHost, ulong srcDevice, nuint byteCount, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemcpyDtoDAsync_v2(ulong dstDevice, ulong srcDevice, nuint byteCount, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD8_v2(ulong dstDevice, byte value, nuint count);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD32_v2(ulong dstDevice, uint value, nuint count);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD8Async(ulong dstDevice, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuMemsetD32Async(ulong dstDevice, uint value, nuint count, nint stream);

    // ---- streams and events ----
    [LibraryImport(Lib)] public static partial CuResult cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuStreamQuery(nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuStreamWaitEvent(nint stream, nint evt, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuEventCreate(out nint evt, uint flags);
    [LibraryImport(Lib)] public static partial CuResult cuEventDestroy_v2(nint evt);
    [LibraryImport(Lib)] public static partial CuResult cuEventRecord(nint evt, nint stream);
    [LibraryImport(Lib)] public static partial CuResult cuEventSynchronize(nint evt);
    [LibraryImport(Lib)] public static partial CuResult cuEventQuery(nint evt);
    [LibraryImport(Lib)] public static partial CuResult cuEventElapsedTime(out float milliseconds, nint start, nint end);

    // ---- modules and kernels ----
    [LibraryImport(Lib)] public static partial CuResult cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] public static partial CuResult cuModuleUnload(nint module);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial CuResult cuModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Lib)] public static partial CuResult cuFuncGetAttribute(out int value, CuFunctionAttribute attrib, nint function);
    [LibraryImport(Lib)] public static partial CuResult cuFuncSetAttribute(nint function, CuFunctionAttribute attrib, int value);

    [LibraryImport(Lib)]
    public static partial CuResult cuLaunchKernel(nint function,
        uint gridDimX, uint gridDimY, uint gridDimZ,
        uint blockDimX, uint blockDimY, uint blockDimZ,
        uint sharedMemBytes, nint stream, void** kernelParams, void** extra);

    /// <summary>"CUDA_ERROR_..." for a status, or null when the driver does not know it.</summary>
    public static string? ErrorName(CuResult status) =>
        cuGetErrorName(status, out nint p) == CuResult.Success && p != 0 ? Marshal.PtrToStringUTF8(p) : null;

    /// <summary>The driver's description of a status, or null when it does not know it.</summary>
    public static string? ErrorString(CuResult status) =>
        cuGetErrorString(status, out nint p) == CuResult.Success && p != 0 ? Marshal.PtrToStringUTF8(p) : null;
}
