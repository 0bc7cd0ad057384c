using System.Runtime.InteropServices;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// OpenBLAS as the CPU peer for GEMM (Debian's libopenblas0-pthread). Only the benchmarks use it: the
/// engine itself has no native dependency on the CPU.
/// </summary>
internal static unsafe partial class OpenBlas
{
    private const string Library = "libopenblas.so.0";

    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    [LibraryImport(Library, EntryPoint = "cblas_sgemm")]
    private static partial void CblasSgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library, EntryPoint = "openblas_get_num_threads")]
    private static partial int GetNumThreads();

    [LibraryImport(Library, EntryPoint = "openblas_set_num_threads")]
    private static partial void SetNumThreadsNative(int threads);

    [LibraryImport(Library, EntryPoint = "openblas_get_corename")]
    private static partial nint GetCoreName();

    [LibraryImport(Library, EntryPoint = "openblas_get_config")]
    private static partial nint GetConfig();

    /// <summary>Row-major C = alpha * op(A) * op(B) + beta * C, the same contract as the engine's Gemm.Sgemm.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc) =>
        CblasSgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>Caps OpenBLAS's threads (it starts with one per core).</summary>
    public static void SetNumThreads(int threads) => SetNumThreadsNative(threads);

    /// <summary>"OpenBLAS 0.3.21 ... (core Haswell, 2 threads)", or why it could not be loaded.</summary>
    public static string Describe()
    {
        try
        {
            string config = Marshal.PtrToStringAnsi(GetConfig()) ?? "OpenBLAS";
            string core = Marshal.PtrToStringAnsi(GetCoreName()) ?? "?";
            return $"{config.Trim()} (core {core}, {GetNumThreads()} threads)";
        }
        catch (DllNotFoundException e)
        {
            return $"OpenBLAS not loadable ({e.Message}); install libopenblas0-pthread";
        }
    }
}
