using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

// The GEMM micro-kernels. Each keeps an MR x NR tile of C in registers for a whole KC slice; the AVX
// kernels are written out in full (no loops over registers) so that the JIT keeps every accumulator in a
// register. Each runs within a few percent of the FMA peak on L1-resident slivers (measured on Zen 5:
// ~200 GFLOP/s per core for AVX-512, ~108 for AVX2).

/// <summary>
/// AVX-512 micro-kernel: an 8x32 tile in 16 zmm accumulators; A values are broadcast from the packed sliver.
/// 12x32 and 8x48 measured the same; 8 rows make A's packing whole 8x8 transposes and divide every VGG
/// channel count, so no tile is wasted on padding there.
/// </summary>
internal readonly unsafe struct Avx512Kernel : IGemmKernel
{
    public static int MR => 8;
    public static int NR => 32;
    public static bool IsSupported => Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) => Core(kc, a, b, 32, c, ldc, alpha, beta);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunStrided(int kc, float* a, float* b, nint bStep, float* c, nint ldc, float alpha, float beta) =>
        Core(kc, a, b, bStep, c, ldc, alpha, beta);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Core(int kc, float* a, float* b, nint bStep, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c0_0 = default; Vector512<float> c0_1 = default;
        Vector512<float> c1_0 = default; Vector512<float> c1_1 = default;
        Vector512<float> c2_0 = default; Vector512<float> c2_1 = default;
        Vector512<float> c3_0 = default; Vector512<float> c3_1 = default;
        Vector512<float> c4_0 = default; Vector512<float> c4_1 = default;
        Vector512<float> c5_0 = default; Vector512<float> c5_1 = default;
        Vector512<float> c6_0 = default; Vector512<float> c6_1 = default;
        Vector512<float> c7_0 = default; Vector512<float> c7_1 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Avx512F.LoadVector512(b + 0);
            Vector512<float> b1 = Avx512F.LoadVector512(b + 16);
            c0_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b1, c0_1);
            c1_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), b1, c1_1);
            c2_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), b1, c2_1);
            c3_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), b1, c3_1);
            c4_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), b1, c4_1);
            c5_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), b1, c5_1);
            c6_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[6]), b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[6]), b1, c6_1);
            c7_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[7]), b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[7]), b1, c7_1);
            a += 8;
            b += bStep;
        }
        Vector512<float> va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Vector512.Store(c0_0 * va, c + 0 * ldc + 0);
            Vector512.Store(c0_1 * va, c + 0 * ldc + 16);
            Vector512.Store(c1_0 * va, c + 1 * ldc + 0);
            Vector512.Store(c1_1 * va, c + 1 * ldc + 16);
            Vector512.Store(c2_0 * va, c + 2 * ldc + 0);
            Vector512.Store(c2_1 * va, c + 2 * ldc + 16);
            Vector512.Store(c3_0 * va, c + 3 * ldc + 0);
            Vector512.Store(c3_1 * va, c + 3 * ldc + 16);
            Vector512.Store(c4_0 * va, c + 4 * ldc + 0);
            Vector512.Store(c4_1 * va, c + 4 * ldc + 16);
            Vector512.Store(c5_0 * va, c + 5 * ldc + 0);
            Vector512.Store(c5_1 * va, c + 5 * ldc + 16);
            Vector512.Store(c6_0 * va, c + 6 * ldc + 0);
            Vector512.Store(c6_1 * va, c + 6 * ldc + 16);
            Vector512.Store(c7_0 * va, c + 7 * ldc + 0);
            Vector512.Store(c7_1 * va, c + 7 * ldc + 16);
        }
        else
        {
            Vector512<float> vb = Vector512.Create(beta);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 0 * ldc + 0), c0_0 * va), c + 0 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 0 * ldc + 16), c0_1 * va), c + 0 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 1 * ldc + 0), c1_0 * va), c + 1 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 1 * ldc + 16), c1_1 * va), c + 1 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 2 * ldc + 0), c2_0 * va), c + 2 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 2 * ldc + 16), c2_1 * va), c + 2 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 3 * ldc + 0), c3_0 * va), c + 3 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 3 * ldc + 16), c3_1 * va), c + 3 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 4 * ldc + 0), c4_0 * va), c + 4 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 4 * ldc + 16), c4_1 * va), c + 4 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 5 * ldc + 0), c5_0 * va), c + 5 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 5 * ldc + 16), c5_1 * va), c + 5 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 6 * ldc + 0), c6_0 * va), c + 6 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 6 * ldc + 16), c6_1 * va), c + 6 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 7 * ldc + 0), c7_0 * va), c + 7 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 7 * ldc + 16), c7_1 * va), c + 7 * ldc + 16);
        }
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Combine(float beta, float c, float scaled) => MathF.FusedMultiplyAdd(beta, c, scaled);
}

/// <summary>AVX2 + FMA micro-kernel: a 6x16 tile in 12 ymm accumulators (of 16 registers); A values are broadcast from the packed sliver.</summary>
internal readonly unsafe struct Avx2Kernel : IGemmKernel
{
    public static int MR => 6;
    public static int NR => 16;
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) => Core(kc, a, b, 16, c, ldc, alpha, beta);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunStrided(int kc, float* a, float* b, nint bStep, float* c, nint ldc, float alpha, float beta) =>
        Core(kc, a, b, bStep, c, ldc, alpha, beta);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Core(int kc, float* a, float* b, nint bStep, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c0_0 = default; Vector256<float> c0_1 = default;
        Vector256<float> c1_0 = default; Vector256<float> c1_1 = default;
        Vector256<float> c2_0 = default; Vector256<float> c2_1 = default;
        Vector256<float> c3_0 = default; Vector256<float> c3_1 = default;
        Vector256<float> c4_0 = default; Vector256<float> c4_1 = default;
        Vector256<float> c5_0 = default; Vector256<float> c5_1 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Avx.LoadVector256(b + 0);
            Vector256<float> b1 = Avx.LoadVector256(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            a += 6;
            b += bStep;
        }
        Vector256<float> va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Vector256.Store(c0_0 * va, c + 0 * ldc + 0);
            Vector256.Store(c0_1 * va, c + 0 * ldc + 8);
            Vector256.Store(c1_0 * va, c + 1 * ldc + 0);
            Vector256.Store(c1_1 * va, c + 1 * ldc + 8);
            Vector256.Store(c2_0 * va, c + 2 * ldc + 0);
            Vector256.Store(c2_1 * va, c + 2 * ldc + 8);
            Vector256.Store(c3_0 * va, c + 3 * ldc + 0);
            Vector256.Store(c3_1 * va, c + 3 * ldc + 8);
            Vector256.Store(c4_0 * va, c + 4 * ldc + 0);
            Vector256.Store(c4_1 * va, c + 4 * ldc + 8);
            Vector256.Store(c5_0 * va, c + 5 * ldc + 0);
            Vector256.Store(c5_1 * va, c + 5 * ldc + 8);
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 0 * ldc + 0), c0_0 * va), c + 0 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 0 * ldc + 8), c0_1 * va), c + 0 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 1 * ldc + 0), c1_0 * va), c + 1 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 1 * ldc + 8), c1_1 * va), c + 1 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 2 * ldc + 0), c2_0 * va), c + 2 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 2 * ldc + 8), c2_1 * va), c + 2 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 3 * ldc + 0), c3_0 * va), c + 3 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 3 * ldc + 8), c3_1 * va), c + 3 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 4 * ldc + 0), c4_0 * va), c + 4 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 4 * ldc + 8), c4_1 * va), c + 4 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 5 * ldc + 0), c5_0 * va), c + 5 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(vb, Vector256.Load(c + 5 * ldc + 8), c5_1 * va), c + 5 * ldc + 8);
        }
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Combine(float beta, float c, float scaled) => MathF.FusedMultiplyAdd(beta, c, scaled);
}

/// <summary>Portable 4x4 micro-kernel for CPUs without AVX2 (correct everywhere, not fast).</summary>
internal readonly unsafe struct ScalarKernel : IGemmKernel
{
    public static int MR => 4;
    public static int NR => 4;
    public static bool IsSupported => true;

    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) => RunStrided(kc, a, b, 4, c, ldc, alpha, beta);

    public static void RunStrided(int kc, float* a, float* b, nint bStep, float* c, nint ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[16];
        for (int i = 0; i < 16; i++) acc[i] = 0f;
        for (int p = 0; p < kc; p++, a += 4, b += bStep)
            for (int i = 0; i < 4; i++)
            {
                float ai = a[i];
                for (int j = 0; j < 4; j++) acc[i * 4 + j] += ai * b[j];
            }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
            {
                float scaled = alpha * acc[i * 4 + j];
                c[i * ldc + j] = beta == 0f ? scaled : Combine(beta, c[i * ldc + j], scaled);
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Combine(float beta, float c, float scaled) => beta * c + scaled;
}
