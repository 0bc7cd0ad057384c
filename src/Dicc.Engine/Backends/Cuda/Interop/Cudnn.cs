using System.Runtime.InteropServices;

namespace Dicc.Engine.Backends.Cuda.Interop;

// cuDNN 9 legacy (descriptor) API. Signatures checked against cudnn_graph.h, cudnn_ops.h and cudnn_cnn.h of
// cuDNN 9.6.0. In cuDNN 9 the API is split over libcudnn_graph (handle, version, errors), libcudnn_ops
// (tensor / filter / pooling / activation descriptors, pooling, activation, batch normalisation) and
// libcudnn_cnn (convolution descriptors, algorithm search, convolutions); libcudnn.so.9 is a shim that
// exports all of them and opens the sub-libraries by name at first use, so every function binds to the shim.
// Every function bound here exists in cuDNN 9 (most are marked CUDNN_DEPRECATED there, i.e. still present
// and scheduled for removal in a later major version). Removed before 9 and therefore not used:
// cudnnGetConvolutionForwardAlgorithm (non-_v7), cudnnSetRNNDescriptor_v6 & co.
// ABI: cudnnStatus_t and every cudnn*_t enum are C enums (int); handles and descriptors are pointers (nint);
// cudaStream_t is a pointer; size_t is nuint; double stays double; device data pointers are passed as ulong;
// alpha/beta are host pointers to float for float32 data.

/// <summary>cudnnStatus_t (cudnn_graph.h 9.6; categories are multiples of 1000 since cuDNN 9).</summary>
internal enum CudnnStatus
{
    Success = 0,
    NotInitialized = 1001,
    SublibraryVersionMismatch = 1002,
    SublibraryLoadingFailed = 1008,
    BadParam = 2000,
    NotSupported = 3000,
    InternalError = 4000,
    ExecutionFailed = 5000,
}

/// <summary>cudnnDataType_t.</summary>
internal enum CudnnDataType { Float = 0, Double = 1, Half = 2, Int8 = 3, Int32 = 4, BFloat16 = 9 }

/// <summary>cudnnTensorFormat_t.</summary>
internal enum CudnnTensorFormat { Nchw = 0, Nhwc = 1 }

/// <summary>cudnnConvolutionMode_t (PyTorch's Conv2d is a cross-correlation).</summary>
internal enum CudnnConvolutionMode { Convolution = 0, CrossCorrelation = 1 }

/// <summary>cudnnMathType_t.</summary>
internal enum CudnnMathType
{
    /// <summary>cuDNN's default (CUDNN_DEFAULT_MATH): on Ampere and later it may use TF32 tensor cores for float32.</summary>
    Default = 0,

    /// <summary>Tensor cores allowed (CUDNN_TENSOR_OP_MATH).</summary>
    TensorOp = 1,

    /// <summary>Tensor cores with down-conversion allowed, TF32 for float32 (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION).</summary>
    TensorOpAllowConversion = 2,

    /// <summary>Float32 FMA kernels only (CUDNN_FMA_MATH): full precision, matches the CPU backend to rounding.</summary>
    Fma = 3,
}

/// <summary>cudnnDeterminism_t.</summary>
internal enum CudnnDeterminism { NonDeterministic = 0, Deterministic = 1 }

/// <summary>cudnnConvolutionFwdAlgoPerf_t (and the BwdData / BwdFilter ones, which have the same layout): 48 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CudnnConvolutionAlgoPerf
{
    public int Algorithm;           // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
    public CudnnStatus Status;
    public float Time;              // milliseconds
    public nuint Memory;            // workspace bytes
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    public fixed int Reserved[3];
}

internal static unsafe partial class Cudnn
{
    private const string Lib = "dicc-cudnn";

    /// <summary>CUDNN_CONVOLUTION_FWD_ALGO_COUNT, _BWD_DATA_ALGO_COUNT, _BWD_FILTER_ALGO_COUNT (upper bounds for searches).</summary>
    public const int ForwardAlgorithmCount = 8, BackwardDataAlgorithmCount = 6, BackwardFilterAlgorithmCount = 7;

    // ---- cudnn_graph: library, handle, errors ----
    [LibraryImport(Lib)] public static partial nuint cudnnGetVersion();
    [LibraryImport(Lib)] public static partial nuint cudnnGetCudartVersion();
    [LibraryImport(Lib)] public static partial nint cudnnGetErrorString(CudnnStatus status);
    [LibraryImport(Lib)] public static partial void cudnnGetLastErrorString(byte* message, nuint maxSize);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnCreate(out nint handle);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnDestroy(nint handle);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnSetStream(nint handle, nint stream);

    // ---- cudnn_ops: tensor and filter descriptors ----
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnCreateTensorDescriptor(out nint desc);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnDestroyTensorDescriptor(nint desc);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnSetTensor4dDescriptor(nint desc, CudnnTensorFormat format, CudnnDataType dataType,
        int n, int c, int h, int w);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnSetTensorNdDescriptor(nint desc, CudnnDataType dataType, int nbDims, int* dims, int* strides);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnCreateFilterDescriptor(out nint desc);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnDestroyFilterDescriptor(nint desc);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnSetFilter4dDescriptor(nint desc, CudnnDataType dataType, CudnnTensorFormat format,
        int k, int c, int h, int w);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnAddTensor(nint handle, float* alpha, nint aDesc, ulong a, float* beta, nint cDesc, ulong c);

    // ---- cudnn_cnn: convolution descriptor ----
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnCreateConvolutionDescriptor(out nint desc);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnDestroyConvolutionDescriptor(nint desc);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnSetConvolution2dDescriptor(nint desc, int padH, int padW, int strideH, int strideW,
        int dilationH, int dilationW, CudnnConvolutionMode mode, CudnnDataType computeType);
    [LibraryImport(Lib)] public static partial CudnnStatus cudnnSetConvolutionMathType(nint desc, CudnnMathType mathType);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolution2dForwardOutputDim(nint convDesc, nint inputDesc, nint filterDesc,
        out int n, out int c, out int h, out int w);

    // ---- cudnn_cnn: algorithm choice (heuristic _v7, or measured *Ex) and workspace sizes ----
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolutionForwardAlgorithm_v7(nint handle, nint xDesc, nint wDesc, nint convDesc,
        nint yDesc, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvolutionAlgoPerf* perfResults);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolutionBackwardDataAlgorithm_v7(nint handle, nint wDesc, nint dyDesc, nint convDesc,
        nint dxDesc, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvolutionAlgoPerf* perfResults);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolutionBackwardFilterAlgorithm_v7(nint handle, nint xDesc, nint dyDesc, nint convDesc,
        nint dwDesc, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvolutionAlgoPerf* perfResults);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnFindConvolutionForwardAlgorithmEx(nint handle, nint xDesc, ulong x, nint wDesc, ulong w,
        nint convDesc, nint yDesc, ulong y, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvolutionAlgoPerf* perfResults,
        ulong workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnFindConvolutionBackwardDataAlgorithmEx(nint handle, nint wDesc, ulong w, nint dyDesc, ulong dy,
        nint convDesc, nint dxDesc, ulong dx, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvolutionAlgoPerf* perfResults,
        ulong workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnFindConvolutionBackwardFilterAlgorithmEx(nint handle, nint xDesc, ulong x, nint dyDesc, ulong dy,
        nint convDesc, nint dwDesc, ulong dw, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvolutionAlgoPerf* perfResults,
        ulong workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolutionForwardWorkspaceSize(nint handle, nint xDesc, nint wDesc, nint convDesc,
        nint yDesc, int algo, out nuint sizeInBytes);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolutionBackwardDataWorkspaceSize(nint handle, nint wDesc, nint dyDesc, nint convDesc,
        nint dxDesc, int algo, out nuint sizeInBytes);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnGetConvolutionBackwardFilterWorkspaceSize(nint handle, nint xDesc, nint dyDesc, nint convDesc,
        nint dwDesc, int algo, out nuint sizeInBytes);

    // ---- cudnn_cnn: convolutions ----
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnConvolutionForward(nint handle, float* alpha, nint xDesc, ulong x, nint wDesc, ulong w,
        nint convDesc, int algo, ulong workSpace, nuint workSpaceSizeInBytes, float* beta, nint yDesc, ulong y);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnConvolutionBackwardData(nint handle, float* alpha, nint wDesc, ulong w, nint dyDesc, ulong dy,
        nint convDesc, int algo, ulong workSpace, nuint workSpaceSizeInBytes, float* beta, nint dxDesc, ulong dx);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnConvolutionBackwardFilter(nint handle, float* alpha, nint xDesc, ulong x, nint dyDesc, ulong dy,
        nint convDesc, int algo, ulong workSpace, nuint workSpaceSizeInBytes, float* beta, nint dwDesc, ulong dw);
    [LibraryImport(Lib)]
    public static partial CudnnStatus cudnnConvolutionBackwardBias(nint handle, float* alpha, nint dyDesc, ulong dy, float* beta,
        nint dbDesc, ulong db);

    public static string ErrorString(CudnnStatus status)
    {
        nint p = cudnnGetErrorString(status);
        return p == 0 ? $"CUDNN_STATUS {(int)status}" : Marshal.PtrToStringUTF8(p) ?? $"CUDNN_STATUS {(int)status}";
    }

    /// <summary>cuDNN 9's description of the last failure on this thread (empty when it has none).</summary>
    public static string LastErrorString()
    {
        const int size = 1024;
        byte* buffer = stackalloc byte[size];
        buffer[0] = 0;
        cudnnGetLastErrorString(buffer, size);
        return Marshal.PtrToStringUTF8((nint)buffer) ?? "";
    }
}
