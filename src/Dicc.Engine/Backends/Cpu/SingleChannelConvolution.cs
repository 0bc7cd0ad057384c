using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// The fast path's first layer: a 3 x 3, stride-1, padding-1 convolution of one input channel (VGG's grey image in),
/// computed directly with AVX-512 along the output rows instead of as a GEMM whose inner dimension is only 9 (the
/// GEMM ran it at 20-70 GFLOP/s; docs/benchmarks.md).
/// </summary>
/// <remarks>
/// The forward pass does the GEMM's arithmetic per output (a fused multiply-add chain over the nine taps in order,
/// from zero, then the bias added), so it stays bit-identical to the reference; the padding's zeros are multiplied
/// like the reference's. The filter gradient sums each tap's products in 16 lanes (a block of columns at a time, image after image, row after row),
/// then adds the lanes in a fixed order: the same result on any thread count, within float rounding of the
/// reference's sum (tests bound it).
/// </remarks>
internal static unsafe class SingleChannelConvolution
{
    private const int Lanes = 16;

    /// <summary>Whether <paramref name="g"/> runs here.</summary>
    public static bool Applies(in ConvolutionGeometry g) =>
        Avx512F.IsSupported && g.C == 1 && g.R == 3 && g.S == 3 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 1 && g.PadW == 1;

    /// <summary>y[n, k] = sum over taps of w[k, tap] * x[n] shifted, + bias[k] (bias may be null).</summary>
    public static void Forward(in ConvolutionGeometry g, float* x, float* w, float* bias, float* y) =>
        CpuParallel.For(g.N, (long)g.K * g.P * g.Q * 9, new ForwardBody(g, x, w, bias, y));

    /// <summary>
    /// dw[k, tap] = sum over images and outputs of dy[n, k] * x[n] shifted (dw overwritten), and dbias[k] = sum of
    /// dy[n, k] when dbias is not null, in the same pass over dy (it is the op's only large operand).
    /// </summary>
    public static void FilterGradient(in ConvolutionGeometry g, float* x, float* dy, float* dw, float* dbias) =>
        CpuParallel.For(g.K, (long)g.N * g.P * g.Q * 10, new FilterGradientBody(g, x, dy, dw, dbias));

    /// <summary>Which lanes of the three column shifts of outputs q0 .. q0 + 15 lie inside a row of the given width.</summary>
    private readonly struct ShiftMasks
    {
        public readonly Vector512<float> M0, M1, M2;

        public ShiftMasks(int q0, int width)
        {
            // Lane t of shift s reads column q0 + t + s - 1, inside the image when 0 <= q0 + t + s - 1 < width.
            var column = Vector512<int>.Indices + Vector512.Create(q0 - 1);
            var limit = Vector512.Create(width);
            M0 = (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, limit)).AsSingle();
            column += Vector512<int>.One;
            M1 = (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, limit)).AsSingle();
            column += Vector512<int>.One;
            M2 = (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, limit)).AsSingle();
        }
    }

    /// <summary>The three column shifts of input row <paramref name="row"/> for outputs q0 .. q0 + 15: lane t of shift s is x[row, q0 + t + s - 1], zero outside the image.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadShifts(float* row, int q0, in ShiftMasks m, out Vector512<float> s0, out Vector512<float> s1, out Vector512<float> s2)
    {
        s0 = Avx512F.MaskLoad(row + q0 - 1, m.M0, Vector512<float>.Zero);
        s1 = Avx512F.MaskLoad(row + q0, m.M1, Vector512<float>.Zero);
        s2 = Avx512F.MaskLoad(row + q0 + 1, m.M2, Vector512<float>.Zero);
    }

    private readonly struct ForwardBody(ConvolutionGeometry g, float* x, float* w, float* bias, float* y) : IRangeBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int n0, int n1)
        {
            int h = g.H, width = g.W, p = g.P, q = g.Q;
            long plane = (long)p * q;
            for (int n = n0; n < n1; n++)
            {
                float* image = x + (long)n * h * width, output = y + (long)n * g.K * plane;
                for (int row = 0; row < p; row++)
                {
                    // Taps of kernel row r read input row row + r - 1, zeros outside the image (multiplied like the
                    // reference's padding, so that even infinite weights give what it gives).
                    bool top = row - 1 >= 0, bottom = row + 1 < h;
                    for (int q0 = 0; q0 < q; q0 += Lanes)
                    {
                        var masks = new ShiftMasks(q0, width);
                        Vector512<float> a0 = default, a1 = default, a2 = default, b0, b1, b2, c0 = default, c1 = default, c2 = default;
                        if (top) LoadShifts(image + (long)(row - 1) * width, q0, masks, out a0, out a1, out a2);
                        LoadShifts(image + (long)row * width, q0, masks, out b0, out b1, out b2);
                        if (bottom) LoadShifts(image + (long)(row + 1) * width, q0, masks, out c0, out c1, out c2);
                        var store = LaneMasks.First512(Math.Min(Lanes, q - q0));
                        for (int k = 0; k < g.K; k++)
                        {
                            float* wk = w + k * 9;
                            var acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[0]), a0, Vector512<float>.Zero);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[1]), a1, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[2]), a2, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[3]), b0, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[4]), b1, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[5]), b2, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[6]), c0, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[7]), c1, acc);
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(wk[8]), c2, acc);
                            if (bias != null) acc += Vector512.Create(bias[k]);
                            Avx512F.MaskStore(output + k * plane + (long)row * q + q0, store, acc);
                        }
                    }
                }
            }
        }
    }

    private readonly struct FilterGradientBody(ConvolutionGeometry g, float* x, float* dy, float* dw, float* dbias) : IRangeBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int k0, int k1)
        {
            int h = g.H, width = g.W, p = g.P, q = g.Q;
            long plane = (long)p * q;
            float* lanes = stackalloc float[Lanes];
            for (int k = k0; k < k1; k++)
            {
                Vector512<float> t0 = default, t1 = default, t2 = default, t3 = default, t4 = default,
                    t5 = default, t6 = default, t7 = default, t8 = default, tb = default;
                // Columns blocks outermost, so that their masks are computed once per block and output channel.
                for (int q0 = 0; q0 < q; q0 += Lanes)
                {
                    var masks = new ShiftMasks(q0, width);
                    // Lanes past the row's end hold zero gradients, so they add nothing.
                    var inRow = LaneMasks.First512(Math.Min(Lanes, q - q0));
                    for (int n = 0; n < g.N; n++)
                    {
                        float* image = x + (long)n * h * width, grad = dy + ((long)n * g.K + k) * plane;
                        // The next image's plane of this channel is K planes (~0.5 MB) on: too far for the hardware
                        // prefetchers, so the first column block's pass fetches it row by row ahead of use (2.5-3.8 ->
                        // 2.4-2.7 ms at batch 32, 14-20 -> 11.5-12 ms at batch 128). Reading dy in memory order instead
                        // (image by image, each plane's sums added to per-channel sums) was slower: 4.3-4.8 ms.
                        float* next = grad + g.K * plane;
                        bool prefetch = q0 == 0 && n + 1 < g.N;
                        for (int row = 0; row < p; row++)
                        {
                            if (prefetch)
                            {
                                float* ahead = next + (long)row * q;
                                Sse.Prefetch0(ahead);
                                Sse.Prefetch0(ahead + 16);
                                Sse.Prefetch0(ahead + 32);
                            }
                            var d = Avx512F.MaskLoad(grad + (long)row * q + q0, inRow, Vector512<float>.Zero);
                            // Rows outside the image are zeros, multiplied as the reference's padding is.
                            Vector512<float> a0 = default, a1 = default, a2 = default, b0, b1, b2, c0 = default, c1 = default, c2 = default;
                            if (row - 1 >= 0) LoadShifts(image + (long)(row - 1) * width, q0, masks, out a0, out a1, out a2);
                            LoadShifts(image + (long)row * width, q0, masks, out b0, out b1, out b2);
                            if (row + 1 < h) LoadShifts(image + (long)(row + 1) * width, q0, masks, out c0, out c1, out c2);
                            t0 = Avx512F.FusedMultiplyAdd(d, a0, t0);
                            t1 = Avx512F.FusedMultiplyAdd(d, a1, t1);
                            t2 = Avx512F.FusedMultiplyAdd(d, a2, t2);
                            t3 = Avx512F.FusedMultiplyAdd(d, b0, t3);
                            t4 = Avx512F.FusedMultiplyAdd(d, b1, t4);
                            t5 = Avx512F.FusedMultiplyAdd(d, b2, t5);
                            t6 = Avx512F.FusedMultiplyAdd(d, c0, t6);
                            t7 = Avx512F.FusedMultiplyAdd(d, c1, t7);
                            t8 = Avx512F.FusedMultiplyAdd(d, c2, t8);
                            tb += d;
                        }
                    }
                }
                float* dwk = dw + k * 9;
                dwk[0] = Sum(t0, lanes); dwk[1] = Sum(t1, lanes); dwk[2] = Sum(t2, lanes);
                dwk[3] = Sum(t3, lanes); dwk[4] = Sum(t4, lanes); dwk[5] = Sum(t5, lanes);
                dwk[6] = Sum(t6, lanes); dwk[7] = Sum(t7, lanes); dwk[8] = Sum(t8, lanes);
                if (dbias != null) dbias[k] = Sum(tb, lanes);
            }
        }

        /// <summary>The lanes added pairwise in a fixed order.</summary>
        private static float Sum(Vector512<float> v, float* scratch)
        {
            Vector512.Store(v, scratch);
            for (int width = Lanes / 2; width >= 1; width /= 2)
                for (int i = 0; i < width; i++) scratch[i] += scratch[i + width];
            return scratch[0];
        }
    }
}
