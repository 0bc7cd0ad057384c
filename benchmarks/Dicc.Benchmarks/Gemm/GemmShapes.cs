namespace Dicc.Benchmarks.Gemm;

/// <summary>One GEMM shape, row-major with tight leading dimensions: C[M,N] = op(A)[M,K] * op(B)[K,N].</summary>
public sealed record GemmShape(string Name, bool TransA, bool TransB, int M, int N, int K)
{
    public int Lda => TransA ? M : K;
    public int Ldb => TransB ? K : N;
    public int Ldc => N;
    public long ASize => (long)M * K;
    public long BSize => (long)K * N;
    public long CSize => (long)M * N;
    public double Flops => 2.0 * M * N * K;
    public string Ops => $"{(TransA ? 'T' : 'N')}{(TransB ? 'T' : 'N')}";

    // BenchmarkDotNet prints parameters with ToString.
    public override string ToString() => $"{Name} {Ops} {M}x{N}x{K}";
}

/// <summary>The shapes we measure: squares, and the GEMMs the CPU convolution issues for VGG19.</summary>
public static class GemmShapes
{
    public static IReadOnlyList<GemmShape> Square { get; } =
        [.. new[] { 256, 512, 1024 }.Select(s => new GemmShape($"square {s}", false, false, s, s, s))];

    /// <summary>
    /// The small GEMMs of the classifier heads at batch 32 (CpuBackend.Dense: forward x * W^T, backward
    /// dx = dy * W and dW = dy^T * x): the 512 -> 7 baseline head and one 128 -> 128 layer of the mapping MLP.
    /// </summary>
    public static IReadOnlyList<GemmShape> Heads(int batch = 32) =>
    [
        new("head 512:7 fwd", false, true, batch, 7, 512),
        new("head 512:7 bwd-data", false, false, batch, 512, 7),
        new("head 512:7 bwd-weight", true, false, 7, 512, batch),
        new("mlp 128:128 fwd", false, true, batch, 128, 128),
        new("mlp 128:128 bwd-weight", true, false, 128, 128, batch),
    ];

    /// <summary>
    /// The GEMMs of VGG19's convolutions at the given batch and input size, as CpuBackend.Convolution issues
    /// them: forward W[K, C*9] x col[C*9, cols] (NN), backward-data W^T x dy (TN), backward-filter
    /// dy x col^T (NT), where cols is one chunk of images' output positions. The chunk rule below mirrors
    /// CpuBackend.ChunkImages (MinGemmColumns = 512, ColumnBudget = 4M floats); keep them in step.
    /// </summary>
    public static IReadOnlyList<GemmShape> Vgg19(int batch = 32, int size = 44)
    {
        int[] config = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0];
        var shapes = new List<GemmShape>();
        var seen = new HashSet<(int, int, int)>();
        int channels = 1, h = size, block = 1, inBlock = 0;
        foreach (int k in config)
        {
            if (k == 0) { h /= 2; block++; inBlock = 0; continue; }
            inBlock++;
            if (seen.Add((channels, k, h)))
            {
                int crs = channels * 9, pq = h * h, cols = ChunkImages(batch, channels, pq) * pq;
                string name = $"conv{block}_{inBlock} c{channels} k{k} @{h}";
                shapes.Add(new GemmShape($"{name} fwd", false, false, k, cols, crs));
                // The first layer's input needs no gradient, so it has no backward-data GEMM.
                if (channels > 1) shapes.Add(new GemmShape($"{name} bwd-data", true, false, crs, cols, k));
                shapes.Add(new GemmShape($"{name} bwd-filter", false, true, k, crs, cols));
            }
            channels = k;
        }
        return shapes;
    }

    /// <summary>The four layers whose GEMMs dominate VGG19's time, one per resolution, for the BenchmarkDotNet run.</summary>
    public static IReadOnlyList<GemmShape> Vgg19Representative() =>
        [.. Vgg19().Where(s => s.Name.StartsWith("conv1_2") || s.Name.StartsWith("conv2_2") ||
                                s.Name.StartsWith("conv3_2") || s.Name.StartsWith("conv4_2") || s.Name.StartsWith("conv5_1"))];

    private static int ChunkImages(int batch, int channels, int pq)
    {
        const int minGemmColumns = 512;
        const long columnBudget = 4L << 20;
        long crs = channels * 9L;
        if (pq >= minGemmColumns) return 1;
        long byWidth = (minGemmColumns * 4 + pq - 1) / pq;
        long byBudget = Math.Max(1, columnBudget / Math.Max(1, crs * pq));
        return (int)Math.Clamp(Math.Min(byWidth, byBudget), 1, batch);
    }
}
