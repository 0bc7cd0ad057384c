// The part of the CUDA driver API (cuda.h) that the emulated device implements: the functions that
// src/Dicc.Engine/Cuda/Native/CudaDriver.cs binds, with cuda.h's types and values. We write our own
// declarations because the emulator must build where no CUDA toolkit is installed.
#pragma once

#include <cstddef>

extern "C" {

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct DiccEmuContext* CUcontext;
typedef struct DiccEmuModule* CUmodule;
typedef struct DiccEmuFunction* CUfunction;
typedef struct DiccEmuStream* CUstream;
typedef struct DiccEmuEvent* CUevent;
typedef struct DiccEmuGraph* CUgraph;
typedef struct DiccEmuGraphExec* CUgraphExec;

enum : CUresult
{
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_ILLEGAL_STATE = 401,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_TIMEOUT = 702,
    CUDA_ERROR_HARDWARE_STACK_ERROR = 714,
    CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
    CUDA_ERROR_MISALIGNED_ADDRESS = 716,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
    CUDA_ERROR_UNKNOWN = 999,
};

// CUdevice_attribute values the emulator reports (cuda.h 12.6).
enum
{
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY = 9,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12,
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_INTEGRATED = 18,
    CU_DEVICE_ATTRIBUTE_COMPUTE_MODE = 20,
    CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS = 31,
    CU_DEVICE_ATTRIBUTE_ECC_ENABLED = 32,
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
    CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36,
    CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37,
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
    CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
};

// CUfunction_attribute values (cuda.h 12.6).
enum
{
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES = 2,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CU_FUNC_ATTRIBUTE_PTX_VERSION = 5,
    CU_FUNC_ATTRIBUTE_BINARY_VERSION = 6,
    CU_FUNC_ATTRIBUTE_CACHE_MODE_CA = 7,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
};

enum
{
    CU_EVENT_DISABLE_TIMING = 0x2,
    CU_STREAM_CAPTURE_STATUS_NONE = 0,
    CU_STREAM_CAPTURE_STATUS_ACTIVE = 1,
    CU_STREAM_CAPTURE_STATUS_INVALIDATED = 2,
};

#define DICC_EMU_API __attribute__((visibility("default")))

DICC_EMU_API CUresult cuInit(unsigned flags);
DICC_EMU_API CUresult cuDriverGetVersion(int* version);
DICC_EMU_API CUresult cuGetErrorName(CUresult error, const char** str);
DICC_EMU_API CUresult cuGetErrorString(CUresult error, const char** str);

DICC_EMU_API CUresult cuDeviceGetCount(int* count);
DICC_EMU_API CUresult cuDeviceGet(CUdevice* device, int ordinal);
DICC_EMU_API CUresult cuDeviceGetName(char* name, int len, CUdevice dev);
DICC_EMU_API CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice dev);
DICC_EMU_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev);

DICC_EMU_API CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice dev);
DICC_EMU_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
DICC_EMU_API CUresult cuCtxSetCurrent(CUcontext context);
DICC_EMU_API CUresult cuCtxGetCurrent(CUcontext* context);
DICC_EMU_API CUresult cuCtxSynchronize(void);
DICC_EMU_API CUresult cuMemGetInfo_v2(size_t* free, size_t* total);

DICC_EMU_API CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize);
DICC_EMU_API CUresult cuMemFree_v2(CUdeviceptr dptr);
DICC_EMU_API CUresult cuMemHostAlloc(void** pointer, size_t bytesize, unsigned flags);
DICC_EMU_API CUresult cuMemFreeHost(void* pointer);
DICC_EMU_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes);
DICC_EMU_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes);
DICC_EMU_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
DICC_EMU_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream stream);
DICC_EMU_API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream stream);
DICC_EMU_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream);
DICC_EMU_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count);
DICC_EMU_API CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned value, size_t count);
DICC_EMU_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, CUstream stream);
DICC_EMU_API CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned value, size_t count, CUstream stream);

DICC_EMU_API CUresult cuStreamCreate(CUstream* stream, unsigned flags);
DICC_EMU_API CUresult cuStreamDestroy_v2(CUstream stream);
DICC_EMU_API CUresult cuStreamSynchronize(CUstream stream);
DICC_EMU_API CUresult cuStreamQuery(CUstream stream);
DICC_EMU_API CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned flags);
DICC_EMU_API CUresult cuEventCreate(CUevent* event, unsigned flags);
DICC_EMU_API CUresult cuEventDestroy_v2(CUevent event);
DICC_EMU_API CUresult cuEventRecord(CUevent event, CUstream stream);
DICC_EMU_API CUresult cuEventSynchronize(CUevent event);
DICC_EMU_API CUresult cuEventQuery(CUevent event);
DICC_EMU_API CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end);

DICC_EMU_API CUresult cuModuleLoadData(CUmodule* module, const void* image);
DICC_EMU_API CUresult cuModuleUnload(CUmodule module);
DICC_EMU_API CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name);
DICC_EMU_API CUresult cuFuncGetAttribute(int* value, int attribute, CUfunction function);
DICC_EMU_API CUresult cuFuncSetAttribute(CUfunction function, int attribute, int value);
DICC_EMU_API CUresult cuLaunchKernel(CUfunction function, unsigned gridDimX, unsigned gridDimY, unsigned gridDimZ,
                                     unsigned blockDimX, unsigned blockDimY, unsigned blockDimZ, unsigned sharedMemBytes,
                                     CUstream stream, void** kernelParams, void** extra);

DICC_EMU_API CUresult cuStreamBeginCapture_v2(CUstream stream, int mode);
DICC_EMU_API CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph);
DICC_EMU_API CUresult cuStreamIsCapturing(CUstream stream, int* status);
DICC_EMU_API CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long flags);
DICC_EMU_API CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream);
DICC_EMU_API CUresult cuGraphExecDestroy(CUgraphExec exec);
DICC_EMU_API CUresult cuGraphDestroy(CUgraph graph);

// Emulator extensions (README.md, "Error messages"): the detailed message of the most recent failure, on any
// thread ("" when none); and a test hook to change a setting of DICC_EMU_* at run time (0 on success).
DICC_EMU_API const char* dicc_emu_last_error(void);
/* Launches of a kernel (by name) that ran to the end, successful or not, since the library was loaded. */
DICC_EMU_API long long dicc_emu_launches(const char* kernel);
DICC_EMU_API int dicc_emu_set_option(const char* name, const char* value);

} // extern "C"
