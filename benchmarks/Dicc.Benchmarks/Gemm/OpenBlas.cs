using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// OpenBLAS as the CPU peer for GEMM (Debian's libopenblas0-pthread). Only the benchmarks use it: the
/// engine itself has no native dependency on the CPU.
/// </summary>
/// <remarks>
/// OpenBLAS 0.3.21 picks its kernels from the CPU's model number and does not know recent CPUs (Zen 5, recent
/// Xeons): it falls back to its Prescott (SSE3) or Haswell (AVX2) kernels there. So before the library loads,
/// <see cref="ChooseCoreType"/> sets OPENBLAS_CORETYPE from the CPU's instruction sets (SkylakeX wherever
/// AVX-512 F/BW/DQ/VL are present), overriding an inherited one: the ratio is then against the peer's best.
/// </remarks>
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

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>How the core type was chosen, for the report (set by <see cref="ChooseCoreType"/>).</summary>
    public static string CoreTypeChoice { get; private set; } = "OpenBLAS's own detection";

    /// <summary>
    /// Sets OPENBLAS_CORETYPE for this process (the native environment OpenBLAS reads when it loads) to
    /// <paramref name="forced"/>, or else to the best core type for the CPU's instruction sets, overriding one
    /// inherited from the environment (which may name older kernels). Call before the first OpenBLAS call; later
    /// calls do nothing.
    /// </summary>
    public static void ChooseCoreType(string? forced = null)
    {
        if (_chosen) return;
        _chosen = true;
        string? inherited = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE");
        string? core = forced ??
            (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported ? "SkylakeX" :
             Avx2.IsSupported && Fma.IsSupported ? "Haswell" : null);
        if (core is null) return;
        SetEnv("OPENBLAS_CORETYPE", core, 1);
        CoreTypeChoice = $"OPENBLAS_CORETYPE={core}, " +
                         (forced is not null ? "as asked" : $"chosen from the CPU's {(core == "SkylakeX" ? "AVX-512 F/BW/DQ/VL" : "AVX2 + FMA")}") +
                         (inherited is not null && inherited != core ? $", overriding {inherited} from the environment" : "");
    }

    private static bool _chosen;

    /// <summary>Row-major C = alpha * op(A) * op(B) + beta * C, the same contract as the engine's Gemm.Sgemm.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc) =>
        CblasSgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>Caps OpenBLAS's threads (it starts with one per core); chooses the core type first if nobody has.</summary>
    public static void SetNumThreads(int threads)
    {
        ChooseCoreType();
        SetNumThreadsNative(threads);
    }

    /// <summary>"OpenBLAS 0.3.21 ... (core SkylakeX, 2 threads; OPENBLAS_CORETYPE=SkylakeX, chosen ...)", or why it could not be loaded.</summary>
    public static string Describe()
    {
        ChooseCoreType();
        try
        {
            string config = Marshal.PtrToStringAnsi(GetConfig()) ?? "OpenBLAS";
            string core = Marshal.PtrToStringAnsi(GetCoreName()) ?? "?";
            return $"{config.Trim()} (core {core}, {GetNumThreads()} threads; {CoreTypeChoice})";
        }
        catch (DllNotFoundException e)
        {
            return $"OpenBLAS not loadable ({e.Message}); install libopenblas0-pthread";
        }
    }
}
