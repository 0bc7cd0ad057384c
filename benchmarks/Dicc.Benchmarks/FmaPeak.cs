using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cpu;

namespace Dicc.Benchmarks;

/// <summary>
/// The machine's FP32 peak as our GEMM micro-kernel reaches it: every thread runs the kernel on its own
/// L1-resident slivers (nothing but FMAs, broadcasts and loads), timed in each thread's CPU time so that time
/// slices lost to other processes do not lower it. The sum over threads is the peak that "% of peak" refers to;
/// it includes whatever clock the cores hold with all of them busy.
/// </summary>
internal static unsafe class FmaPeak
{
    /// <summary>GFLOP/s of <paramref name="threads"/> threads together.</summary>
    public static double Measure(int threads, double seconds = 0.3)
    {
        var perThread = new double[threads];
        var workers = new Thread[threads];
        using var start = new ManualResetEventSlim(false);
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            workers[t] = new Thread(() =>
            {
                start.Wait();
                perThread[index] = OneThread(seconds);
            });
            workers[t].Start();
        }
        start.Set();
        foreach (var w in workers) w.Join();
        return perThread.Sum();
    }

    private static double OneThread(double seconds)
    {
        const int kc = 256;
        var kind = Engine.Backends.Cpu.Gemm.BestKernel;
        int mr = kind switch { GemmKernelKind.Avx512 => Avx512Kernel.MR, GemmKernelKind.Avx2 => Avx2Kernel.MR, _ => ScalarKernel.MR };
        int nr = kind switch { GemmKernelKind.Avx512 => Avx512Kernel.NR, GemmKernelKind.Avx2 => Avx2Kernel.NR, _ => ScalarKernel.NR };
        float* a = (float*)NativeMemory.AlignedAlloc((nuint)(kc * mr * sizeof(float)), 64);
        float* b = (float*)NativeMemory.AlignedAlloc((nuint)(kc * nr * sizeof(float)), 64);
        float* c = (float*)NativeMemory.AlignedAlloc((nuint)(mr * nr * sizeof(float)), 64);
        try
        {
            for (int i = 0; i < kc * mr; i++) a[i] = 1e-3f * (i % 7);
            for (int i = 0; i < kc * nr; i++) b[i] = 1e-3f * (i % 5);
            long calls = 0;
            double begin = Machine.ThreadCpuSeconds(), now;
            do
            {
                for (int i = 0; i < 1000; i++) Kernel(kind, kc, a, b, c, nr);
                calls += 1000;
                now = Machine.ThreadCpuSeconds();
            } while (now - begin < seconds);
            return 2.0 * kc * mr * nr * calls / (now - begin) / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
            NativeMemory.AlignedFree(c);
        }
    }

    private static void Kernel(GemmKernelKind kind, int kc, float* a, float* b, float* c, int ldc)
    {
        switch (kind)
        {
            case GemmKernelKind.Avx512: Avx512Kernel.Run(kc, a, b, c, ldc, 1f, 0f); break;
            case GemmKernelKind.Avx2: Avx2Kernel.Run(kc, a, b, c, ldc, 1f, 0f); break;
            default: ScalarKernel.Run(kc, a, b, c, ldc, 1f, 0f); break;
        }
    }
}
