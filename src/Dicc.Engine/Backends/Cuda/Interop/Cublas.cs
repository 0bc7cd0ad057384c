using System.Runtime.InteropServices;

namespace Dicc.Engine.Backends.Cuda.Interop;

// cuBLAS v2 API (libcublas). Signatures checked against cublas_api.h of cuBLAS 12.6.4 (CUDA 12.6) and
// library_types.h; cublas_v2.h maps cublasCreate -> cublasCreate_v2 etc., so the _v2 symbols are bound.
// The same symbols exist in cuBLAS 11, 12 and 13. ABI: cublasStatus_t, cublasOperation_t, cublasMath_t,
// cublasComputeType_t, cublasGemmAlgo_t, cudaDataType and libraryPropertyType are C enums (int); the handle
// and cudaStream_t are pointers (nint); device pointers are passed as ulong (the CUdeviceptr value); alpha
// and beta are host pointers (the default CUBLAS_POINTER_MODE_HOST); long long is long; size_t is nuint.

/// <summary>cublasStatus_t (cublas_api.h 12.6).</summary>
internal enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

/// <summary>cublasOperation_t.</summary>
internal enum CublasOperation
{
    NonTranspose = 0,
    Transpose = 1,
    ConjugateTranspose = 2,
}

/// <summary>cublasMath_t: whether cuBLAS may use reduced-precision tensor cores for float32 work.</summary>
internal enum CublasMathMode
{
    /// <summary>Full float32 arithmetic (CUBLAS_DEFAULT_MATH).</summary>
    Default = 0,

    /// <summary>Deterministic reduction order and no reduced precision (CUBLAS_PEDANTIC_MATH).</summary>
    Pedantic = 2,

    /// <summary>TF32 tensor cores for float32 GEMMs (CUBLAS_TF32_TENSOR_OP_MATH): faster, 10-bit mantissa inputs.</summary>
    Tf32TensorOp = 3,
}

/// <summary>cublasComputeType_t values used with <c>cublasGemmEx</c>.</summary>
internal enum CublasComputeType
{
    Float32 = 68,          // CUBLAS_COMPUTE_32F
    Float32Pedantic = 69,  // CUBLAS_COMPUTE_32F_PEDANTIC
    Float32FastTf32 = 77,  // CUBLAS_COMPUTE_32F_FAST_TF32
}

/// <summary>cudaDataType (library_types.h) values the engine uses.</summary>
internal enum CudaDataType
{
    Float32 = 0,   // CUDA_R_32F
    Float16 = 2,   // CUDA_R_16F
    BFloat16 = 14, // CUDA_R_16BF
}

internal static unsafe partial class Cublas
{
    private const string Lib = "dicc-cublas";

    public const int GemmDefault = -1;              // CUBLAS_GEMM_DEFAULT
    public const int LibraryPropertyMajor = 0;      // MAJOR_VERSION
    public const int LibraryPropertyMinor = 1;      // MINOR_VERSION
    public const int LibraryPropertyPatch = 2;      // PATCH_LEVEL

    [LibraryImport(Lib)] public static partial CublasStatus cublasCreate_v2(out nint handle);
    [LibraryImport(Lib)] public static partial CublasStatus cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] public static partial CublasStatus cublasGetProperty(int type, out int value);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetStream_v2(nint handle, nint stream);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetWorkspace_v2(nint handle, ulong workspace, nuint workspaceSizeInBytes);
    [LibraryImport(Lib)] public static partial CublasStatus cublasSetMathMode(nint handle, CublasMathMode mode);
    [LibraryImport(Lib)] public static partial nint cublasGetStatusName(CublasStatus status);
    [LibraryImport(Lib)] public static partial nint cublasGetStatusString(CublasStatus status);

    [LibraryImport(Lib)]
    public static partial CublasStatus cublasSgemm_v2(nint handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha, ulong a, int lda, ulong b, int ldb, float* beta, ulong c, int ldc);

    [LibraryImport(Lib)]
    public static partial CublasStatus cublasGemmEx(nint handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, void* alpha, ulong a, CudaDataType aType, int lda, ulong b, CudaDataType bType, int ldb,
        void* beta, ulong c, CudaDataType cType, int ldc, CublasComputeType computeType, int algo);

    [LibraryImport(Lib)]
    public static partial CublasStatus cublasSgemmStridedBatched(nint handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha, ulong a, int lda, long strideA, ulong b, int ldb, long strideB,
        float* beta, ulong c, int ldc, long strideC, int batchCount);

    public static string StatusName(CublasStatus status)
    {
        nint p = cublasGetStatusName(status);
        return p == 0 ? $"CUBLAS_STATUS {(int)status}" : Marshal.PtrToStringUTF8(p) ?? $"CUBLAS_STATUS {(int)status}";
    }

    public static string StatusString(CublasStatus status)
    {
        nint p = cublasGetStatusString(status);
        return p == 0 ? "" : Marshal.PtrToStringUTF8(p) ?? "";
    }
}
