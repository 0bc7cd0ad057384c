namespace Dicc.Engine.Backends.Cuda.Interop;

/// <summary>What a library is called and where it may live; the data behind <see cref="NativeLibraryProbe"/>.</summary>
internal sealed record CudaLibrarySpec(
    CudaLibrary Library,
    string DisplayName,
    string ImportName,
    string PathVariable,
    string[] LinuxNames,
    string[] WindowsNames,
    string ProbeSymbol)
{
    public static readonly CudaLibrarySpec Driver = new(
        CudaLibrary.Driver, "CUDA driver", "dicc-cuda", "DICC_CUDA_PATH",
        ["libcuda.so.1", "libcuda.so"], ["nvcuda.dll"], "cuInit");

    // libnvrtc.so.11.2 is the soname of every NVRTC 11.x (Debian's libnvrtc11.2 holds NVRTC 11.8).
    public static readonly CudaLibrarySpec Nvrtc = new(
        CudaLibrary.Nvrtc, "NVRTC", "dicc-nvrtc", "DICC_NVRTC_PATH",
        ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"], "nvrtcVersion");

    public static readonly CudaLibrarySpec Cublas = new(
        CudaLibrary.Cublas, "cuBLAS", "dicc-cublas", "DICC_CUBLAS_PATH",
        ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"],
        ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"], "cublasCreate_v2");

    public static readonly CudaLibrarySpec Cudnn = new(
        CudaLibrary.Cudnn, "cuDNN 9", "dicc-cudnn", "DICC_CUDNN_PATH",
        ["libcudnn.so.9"], ["cudnn64_9.dll"], "cudnnGetVersion");

    public static CudaLibrarySpec Of(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => Driver,
        CudaLibrary.Nvrtc => Nvrtc,
        CudaLibrary.Cublas => Cublas,
        CudaLibrary.Cudnn => Cudnn,
        _ => throw new ArgumentOutOfRangeException(nameof(library)),
    };

    public static CudaLibrarySpec? OfImportName(string importName) =>
        importName == Driver.ImportName ? Driver :
        importName == Nvrtc.ImportName ? Nvrtc :
        importName == Cublas.ImportName ? Cublas :
        importName == Cudnn.ImportName ? Cudnn : null;

    public string[] FileNames => OperatingSystem.IsWindows() ? WindowsNames : LinuxNames;
}
