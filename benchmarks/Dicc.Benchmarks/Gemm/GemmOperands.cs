using System.Runtime.InteropServices;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Randomness;

namespace Dicc.Benchmarks.Gemm;

/// <summary>A, B and C for one shape in 64-byte aligned native memory, filled with seeded values in [-1, 1).</summary>
internal sealed unsafe class GemmOperands : IDisposable
{
    public GemmShape Shape { get; }
    public float* A { get; }
    public float* B { get; }
    public float* C { get; }

    public GemmOperands(GemmShape shape, ulong seed = 1)
    {
        Shape = shape;
        var random = new RandomStream(seed);
        A = Allocate(shape.ASize, random);
        B = Allocate(shape.BSize, random);
        C = Allocate(shape.CSize, random);
    }

    /// <summary>Threads our Sgemm may use (the peers are capped separately, with OpenBlas.SetNumThreads and OneDnn.SetNumThreads).</summary>
    public int Threads { get; init; } = CpuParallel.Threads;

    /// <summary>Our kernel family (the best this CPU supports unless asked).</summary>
    public GemmKernelKind Kernel { get; init; } = Engine.Backends.Cpu.Gemm.BestKernel;

    public void Ours() =>
        Engine.Backends.Cpu.Gemm.Sgemm(Kernel, Threads, Shape.TransA, Shape.TransB, Shape.M, Shape.N, Shape.K, 1f, A, Shape.Lda, B, Shape.Ldb, 0f, C, Shape.Ldc);

    public void OpenBlasSgemm() =>
        OpenBlas.Sgemm(Shape.TransA, Shape.TransB, Shape.M, Shape.N, Shape.K, 1f, A, Shape.Lda, B, Shape.Ldb, 0f, C, Shape.Ldc);

    public void OneDnnSgemm() =>
        OneDnn.Sgemm(Shape.TransA, Shape.TransB, Shape.M, Shape.N, Shape.K, 1f, A, Shape.Lda, B, Shape.Ldb, 0f, C, Shape.Ldc);

    private static float* Allocate(long count, RandomStream random)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        for (long i = 0; i < count; i++) p[i] = 2f * random.NextFloat() - 1f;
        return p;
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(A);
        NativeMemory.AlignedFree(B);
        NativeMemory.AlignedFree(C);
    }
}
