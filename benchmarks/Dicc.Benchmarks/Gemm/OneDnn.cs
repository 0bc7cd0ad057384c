using System.Runtime.InteropServices;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// oneDNN's dnnl_sgemm (Debian's libdnnl2, the library PyTorch's CPU convolutions come from) as a second GEMM
/// peer. Optional: the GEMM benchmark uses it when the library loads. It threads with GNU OpenMP; the thread
/// count is set with omp_set_num_threads on the calling thread.
/// </summary>
internal static unsafe partial class OneDnn
{
    private const string Library = "libdnnl.so.2";

    [LibraryImport(Library, EntryPoint = "dnnl_sgemm")]
    private static partial int DnnlSgemm(byte transA, byte transB, long m, long n, long k, float alpha,
        float* a, long lda, float* b, long ldb, float beta, float* c, long ldc);

    [LibraryImport(Library, EntryPoint = "dnnl_get_effective_cpu_isa")]
    private static partial int GetEffectiveCpuIsa();

    [LibraryImport(Library, EntryPoint = "dnnl_version")]
    private static partial DnnlVersion* Version();

    [LibraryImport("libgomp.so.1", EntryPoint = "omp_set_num_threads")]
    private static partial void OmpSetNumThreads(int threads);

    [StructLayout(LayoutKind.Sequential)]
    private struct DnnlVersion
    {
        public int Major, Minor, Patch;
        public nint Hash;
        public uint CpuRuntime, GpuRuntime;
    }

    /// <summary>Whether libdnnl.so.2 can be loaded (checked once).</summary>
    public static bool IsAvailable => Available.Value;

    private static readonly Lazy<bool> Available = new(() => NativeLibrary.TryLoad(Library, out _));

    /// <summary>Row-major C = alpha * op(A) * op(B) + beta * C (oneDNN's sgemm is row-major, like ours).</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        int status = DnnlSgemm(transA ? (byte)'T' : (byte)'N', transB ? (byte)'T' : (byte)'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (status != 0) throw new InvalidOperationException($"dnnl_sgemm failed with status {status}.");
    }

    public static void SetNumThreads(int threads) => OmpSetNumThreads(threads);

    /// <summary>"oneDNN 2.6.3 (avx512_core)".</summary>
    public static string Describe()
    {
        if (!IsAvailable) return "oneDNN not loadable; install libdnnl2";
        var v = Version();
        return $"oneDNN {v->Major}.{v->Minor}.{v->Patch} (ISA {IsaName(GetEffectiveCpuIsa())})";
    }

    private static string IsaName(int isa) => isa switch
    {
        0x1 => "sse41",
        0x3 => "avx",
        0x7 => "avx2",
        0x407 => "avx2_vnni",
        0x27 => "avx512_core",
        0x67 => "avx512_core_vnni",
        0xe7 => "avx512_core_bf16",
        0x3e7 => "avx512_core_amx",
        _ => $"0x{isa:x}",
    };
}
