using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// The fast path's 3x3, stride-1, padding-1 convolutions on maps smaller than Winograd's (VGG's 5 x 5 and 2 x 2 layers),
/// computing only the taps that fall inside the image. The im2col GEMM multiplies every output by all 9 taps, padding
/// included: at 5 x 5 a quarter of its work (56 of 225 tap-positions) and at 2 x 2 five ninths multiply zeros. Here the
/// images are laid out position-major, <c>xt[position][32 images][channel]</c> as 32-wide rows, so that one tap and one
/// output position is a product <c>Y[K, 32 images] += W_tap[K, C] X_(position + tap)[C, 32 images]</c> whose B operand is
/// already in the GEMM micro-kernel's packed layout, and a tap that falls outside the image for a position is simply not
/// multiplied (docs/benchmarks.md, "Small maps").
/// </summary>
/// <remarks>
/// Output channels are split into ranges of 8-row slivers, one range per part; each part packs its slivers of the
/// weights tap by tap (<c>W_tap</c> in the micro-kernel's A layout), then runs, for each slice of at most 256 input channels
/// and each tap (the centre first, which every position has), every position and 32-image sliver that has the tap,
/// accumulating into its tiles of <c>yt[position][32 images][K]</c> in place, then writes its channels of y with the
/// bias. Every output is computed the same way whichever part computes it, so results do not depend on the thread count;
/// the order of the sum differs from the direct convolution's, so tests bound the difference by its rounding bound.
/// The input gradient is the same code on dy with the flipped, transposed weights (stride 1, padding 1 again).
/// Batches are padded to a multiple of 32 images with zeros for the forward pass and the input gradient, so those run
/// where the padding costs less than the skipped taps save; the filter gradient needs no padding and runs at any batch.
/// </remarks>
internal static unsafe class SmallMapConvolution
{
    private const int Taps = 9;

    /// <summary>Images per row of the position-major layout: the micro-kernel's NR.</summary>
    private const int Lanes = 32;

    /// <summary>Output channels per A sliver: the micro-kernel's MR.</summary>
    private const int Mr = 8;

    /// <summary>Input channels per reduction slice: a B sliver of 32 KB, which stays in L1 across a part's slivers of A.</summary>
    private const int SliceChannels = 256;

    /// <summary>Largest map run here (Winograd takes 8 x 8 and more).</summary>
    private const int MaxPositions = 64;

    /// <summary>The centre tap first: every output position has it, so it starts every tile (beta = 0).</summary>
    private static ReadOnlySpan<byte> TapOrder => [4, 0, 1, 2, 3, 5, 6, 7, 8];

    /// <summary>
    /// Off with the environment variable <c>DICC_CPU_SMALL_MAPS=0</c> (or from a test or benchmark): those layers then
    /// run the implicit-GEMM direct convolution, bit-identical to the reference path.
    /// </summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("DICC_CPU_SMALL_MAPS") != "0";

    /// <summary>
    /// Whether the forward convolution <paramref name="g"/> runs here: a layer this file takes (<see cref="Takes"/>) whose
    /// batch, padded to 32-image slivers, still leaves less work than the direct convolution's: the in-image share of
    /// the tap-positions times the padding must not exceed 1 (at 5 x 5, 169 / 225: from 25 images per sliver; at 2 x 2,
    /// 16 / 36: from 15). Measured at the edges (`conv-profile`, 2 threads): batch 16 at 5 x 5 slower (conv4_2 forward
    /// 7.9-8.3 against 6.0 ms), at 2 x 2 even or faster (conv5_1 input gradient 1.2-1.4 against 1.6-2.1 ms).
    /// </summary>
    public static bool Applies(in ConvolutionGeometry g) =>
        Takes(g) && (long)(3 * g.P - 2) * (3 * g.Q - 2) * Slivers(g.N) * Lanes <= 9L * g.P * g.Q * g.N;

    /// <summary>
    /// 3x3, stride 1, padding 1, at least 16 input channels, output channels a multiple of 8, a map of at most 64
    /// positions that Winograd does not take, on a CPU with AVX-512.
    /// </summary>
    private static bool Takes(in ConvolutionGeometry g) =>
        Enabled && Avx512F.IsSupported && Avx512Kernel.NR == Lanes && Avx512Kernel.MR == Mr &&
        g.R == 3 && g.S == 3 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 1 && g.PadW == 1 &&
        g.C >= 16 && g.K % Mr == 0 && (long)g.P * g.Q <= MaxPositions && !WinogradConvolution.Applies(g);

    private static int Slivers(int images) => (images + Lanes - 1) / Lanes;

    private static long Align(long floats) => (floats + 15) / 16 * 16;

    /// <summary>Floats of one (position, 32 images) block of channels, plus a cache line against L1 set conflicts.</summary>
    private static long BlockFloats(int channels) => (long)channels * Lanes + 16;

    /// <summary>Floats of one (tap, 8 output channels) sliver of packed weights, plus a cache line.</summary>
    private static long WeightSliverFloats(int channels) => (long)channels * Mr + 16;

    private static long InputFloats(in ConvolutionGeometry g) => (long)g.H * g.W * Slivers(g.N) * BlockFloats(g.C);
    /// <summary>
    /// Floats between two taps' packed weights, plus a cache line: K / 8 slivers of C * 8 + 16 floats can be a multiple
    /// of 4 KB (64 slivers of 512 channels are), which would put the 9 taps' writes of the packing in one L1 set (no
    /// speed difference was measured; it follows the rule of the Winograd transforms, where it mattered).
    /// </summary>
    private static long TapFloats(int outputs, int channels) => outputs / Mr * WeightSliverFloats(channels) + 16;

    private static long WeightFloats(in ConvolutionGeometry g) => Taps * TapFloats(g.K, g.C);
    private static long OutputFloats(in ConvolutionGeometry g) => (long)g.P * g.Q * Slivers(g.N) * BlockFloats(g.K);

    /// <summary>Workspace floats of a call over <paramref name="g"/>: position-major x, packed weights, position-major y.</summary>
    public static long WorkspaceFloats(in ConvolutionGeometry g) =>
        Align(InputFloats(g)) + Align(WeightFloats(g)) + Align(OutputFloats(g));

    /// <summary>
    /// y = conv(x, w) + bias (bias may be null) with w as stored, [K, C, 3, 3]; or, when <paramref name="flippedWeights"/>,
    /// with the flipped and transposed weights of a layer whose w is [C, K, 3, 3] (the input gradient: x is then dy,
    /// y is dx). <paramref name="ws"/> holds <see cref="WorkspaceFloats"/> floats, 64-byte aligned.
    /// </summary>
    public static void Forward(in ConvolutionGeometry g, float* x, float* w, float* bias, float* y, float* ws, bool flippedWeights)
    {
        int slivers = Slivers(g.N), hw = g.H * g.W;
        float* xt = ws, a = xt + Align(InputFloats(g)), yt = a + Align(WeightFloats(g));
        CpuParallel.For(g.C, (long)slivers * Lanes * hw, new InputBody(x, xt, g.N, g.C, hw, slivers));
        CpuParallel.For(g.K / Mr, (long)g.C * Mr * Taps * g.P * g.Q * slivers * Lanes, new ProductBody(g, xt, w, flippedWeights, a, yt, bias, y));
    }

    /// <summary>x [N, C, H*W] to xt [H*W][slivers][C][32 images], images past N zero; one channel per item.</summary>
    private readonly struct InputBody(float* x, float* xt, int images, int channels, int hw, int slivers) : IRangeBody
    {
        public void Run(int start, int end)
        {
            long block = BlockFloats(channels), image = (long)channels * hw;
            for (int c = start; c < end; c++)
                for (int s = 0; s < slivers; s++)
                {
                    float* dst = xt + s * block + (long)c * Lanes;
                    for (int j = 0; j < Lanes; j++)
                    {
                        int n = s * Lanes + j;
                        float* src = x + n * image + (long)c * hw;
                        if (n < images)
                            for (int i = 0; i < hw; i++) dst[i * slivers * block + j] = src[i];
                        else
                            for (int i = 0; i < hw; i++) dst[i * slivers * block + j] = 0f;
                    }
                }
        }
    }

    /// <summary>
    /// The weights of taps t for output slivers [ks0, ks1) into a[t][k / 8][C][8] (element (k, c) of tap t at its
    /// c * 8 + k % 8); flipped: W'[k, c, t] = w[c, k, 8 - t] of a layer whose w is [C, K, 3, 3]. 8 x 9 blocks are
    /// transposed in registers, and w is read in runs: 8 whole rows as stored, and flipped one run of (ks1 - ks0) * 72
    /// floats per input channel (one 8-row sliver's 288 bytes per 18 KB jump took 2.4 ms for 9.4 MB).
    /// </summary>
    private static void PackWeights(float* w, float* a, int outputs, int channels, bool flipped, int ks0, int ks1)
    {
        long sliver = WeightSliverFloats(channels), tapStride = TapFloats(outputs, channels);
        if (!flipped)
        {
            long row = (long)channels * Taps;
            for (int ks = ks0; ks < ks1; ks++)
            {
                float* src = w + ks * Mr * row, dst = a + ks * sliver;
                for (int c = 0; c < channels; c++) Transpose8x9(src + c * Taps, row, dst + c * Mr, tapStride);
            }
            return;
        }
        for (int c = 0; c < channels; c++)
        {
            float* src = w + ((long)c * outputs + ks0 * Mr) * Taps, dst = a + c * Mr + (Taps - 1) * tapStride;
            for (int ks = ks0; ks < ks1; ks++, src += Mr * Taps) Transpose8x9(src, Taps, dst + ks * sliver, -tapStride);
        }
    }

    /// <summary>d[t * ldd + r] = s[r * lds + t] for r in [0, 8), t in [0, 9).</summary>
    private static void Transpose8x9(float* s, long lds, float* d, long ldd)
    {
        GemmPacking.Transpose8x8(s, lds, d, ldd);
        float* last = d + 8 * ldd;
        for (int r = 0; r < Mr; r++) last[r] = s[r * lds + 8];
    }

    /// <summary>
    /// The products of output channels [8 start, 8 end) and their part of y (with the bias). Each part packs its own
    /// slivers of the weights first, so they are still in its core's cache when multiplied (a separate packing pass
    /// wrote all 9.4 MB of conv4_2's packed weights out to memory first).
    /// </summary>
    private readonly struct ProductBody(in ConvolutionGeometry g, float* xt, float* w, bool flipped, float* a, float* yt, float* bias, float* y) : IRangeBody
    {
        private readonly ConvolutionGeometry _g = g;

        public void Run(int start, int end)
        {
            var g = _g;
            PackWeights(w, a, g.K, g.C, flipped, start, end);
            int slivers = Slivers(g.N), pq = g.P * g.Q;
            long inBlock = BlockFloats(g.C), outBlock = BlockFloats(g.K), wSliver = WeightSliverFloats(g.C);
            long tapStride = TapFloats(g.K, g.C);
            int slices = (g.C + SliceChannels - 1) / SliceChannels;
            for (int slice = 0; slice < slices; slice++)
            {
                int c0 = g.C * slice / slices, kc = g.C * (slice + 1) / slices - c0;
                foreach (byte t in TapOrder)
                {
                    int dr = t / 3 - 1, dc = t % 3 - 1;
                    float beta = slice == 0 && t == 4 ? 0f : 1f;
                    float* aTap = a + t * tapStride + c0 * Mr;
                    for (int pr = Math.Max(0, -dr); pr < Math.Min(g.P, g.H - dr); pr++)
                        for (int pc = Math.Max(0, -dc); pc < Math.Min(g.Q, g.W - dc); pc++)
                        {
                            int p = pr * g.Q + pc, i = (pr + dr) * g.W + pc + dc;
                            for (int s = 0; s < slivers; s++)
                            {
                                float* b = xt + ((long)i * slivers + s) * inBlock + (long)c0 * Lanes;
                                float* c = yt + ((long)p * slivers + s) * outBlock;
                                for (int ks = start; ks < end; ks++)
                                    Avx512Kernel.Run(kc, aTap + ks * wSliver, b, c + ks * Mr * Lanes, Lanes, 1f, beta);
                            }
                        }
                }
            }
            // This part's output channels back to [N, K, P*Q], with the bias, while its tiles are still in cache.
            for (int k = start * Mr; k < end * Mr; k++)
            {
                float add = bias == null ? 0f : bias[k];
                for (int n = 0; n < g.N; n++)
                {
                    float* dst = y + ((long)n * g.K + k) * pq;
                    float* src = yt + (n / Lanes) * outBlock + (long)k * Lanes + n % Lanes;
                    long step = slivers * outBlock;
                    if (bias == null) for (int p = 0; p < pq; p++) dst[p] = src[p * step];
                    else for (int p = 0; p < pq; p++) dst[p] = src[p * step] + add;
                }
            }
        }
    }

    // ---- filter gradient ------------------------------------------------------------------------------

    /// <summary>Output channels per block of the filter gradient (8 slivers): its dy rows stay in L1 across the block's inputs.</summary>
    private const int FilterKBlock = 64;

    /// <summary>Input channels per block of the filter gradient (4 slivers of 32): its x rows, ~100 KB at batch 32, stay in L2.</summary>
    private const int FilterCBlock = 128;

    /// <summary>
    /// Whether the filter gradient of <paramref name="g"/> runs here: a layer this file takes, with input channels a
    /// multiple of 32, at any batch (it sums over the images as they are, with no 32-image slivers: at batch 16 conv4_2
    /// 4.0 against 5.0-5.2 ms, conv5_1 0.57 against 0.93-1.04 ms).
    /// </summary>
    public static bool AppliesToFilterGradient(in ConvolutionGeometry g) => Takes(g) && g.C % Lanes == 0;

    /// <summary>Row stride of the channels-last copies: a cache line more than the channels, against L1 set conflicts.</summary>
    private static long RowFloats(int channels) => channels + 16;

    /// <summary>Workspace floats of the filter gradient: channels-last, position-major copies of x and dy.</summary>
    public static long FilterGradientWorkspaceFloats(in ConvolutionGeometry g) =>
        Align((long)g.H * g.W * g.N * RowFloats(g.C)) + Align((long)g.P * g.Q * g.N * RowFloats(g.K));

    /// <summary>
    /// dw[k, c, t] = sum over output positions p that have tap t and images n of dy[n, k, p] x[n, c, p + t]: per tap a
    /// product of dy and x over the rectangle of positions that have it, no padding multiplied. x and dy are first copied
    /// position-major and channels-last (<c>[position][image][channel]</c>), so a row of the rectangle is one run of
    /// steps with a fixed stride through both; each 8 x 32 tile of dw_t sums its whole rectangle in registers (rows,
    /// then positions and images in order), whichever thread runs it.
    /// </summary>
    public static void FilterGradient(in ConvolutionGeometry g, float* x, float* dy, float* dw, float* ws)
    {
        int hw = g.H * g.W, pq = g.P * g.Q;
        float* xt = ws, dyt = ws + Align((long)hw * g.N * RowFloats(g.C));
        // [position][image][channel], rows RowFloats apart.
        CpuParallel.For(g.N * ((g.C + 7) / 8), 8L * hw, new CpuBackend.ToChannelsLastBody(x, xt, g.C, hw, RowFloats(g.C), g.N * RowFloats(g.C)));
        CpuParallel.For(g.N * ((g.K + 7) / 8), 8L * pq, new CpuBackend.ToChannelsLastBody(dy, dyt, g.K, pq, RowFloats(g.K), g.N * RowFloats(g.K)));
        int kBlocks = (g.K + FilterKBlock - 1) / FilterKBlock, cBlocks = (g.C + FilterCBlock - 1) / FilterCBlock;
        CpuParallel.For(kBlocks * cBlocks, (long)FilterKBlock * FilterCBlock * Taps * pq * g.N, new FilterBody(g, xt, dyt, dw));
    }

    /// <summary>
    /// The tiles of one (64 outputs, 128 inputs) block of dw, all 9 taps of a tile together: their sums go to a scratch
    /// block and are interleaved into dw's rows (c, t) by 8 x 8 transposes (each tap's tile written on its own, 256
    /// scattered stores per tile, took conv5_1's filter gradient 2.0 ms against 1.1-1.3).
    /// </summary>
    private readonly struct FilterBody(in ConvolutionGeometry g, float* xt, float* dyt, float* dw) : IRangeBody
    {
        private readonly ConvolutionGeometry _g = g;

        public void Run(int start, int end)
        {
            var g = _g;
            int cBlocks = (g.C + FilterCBlock - 1) / FilterCBlock;
            long xRow = RowFloats(g.C), dyRow = RowFloats(g.K), dwRow = (long)g.C * Taps;
            const int TileFloats = Mr * Lanes;
            float* tiles = stackalloc float[Taps * TileFloats];
            // Each tap's rectangle of output positions: rows, steps per row, its first dy and x rows.
            int* rows = stackalloc int[Taps], steps = stackalloc int[Taps];
            long* aStart = stackalloc long[Taps], bStart = stackalloc long[Taps];
            for (int t = 0; t < Taps; t++)
            {
                int dr = t / 3 - 1, dc = t % 3 - 1;
                int pr0 = Math.Max(0, -dr), pr1 = Math.Min(g.P, g.H - dr), pc0 = Math.Max(0, -dc), pc1 = Math.Min(g.Q, g.W - dc);
                // A map one row or column high has no such tap: no rows, and its tiles come out zero.
                rows[t] = Math.Max(0, pr1 - pr0);
                steps[t] = Math.Max(0, pc1 - pc0) * g.N;
                aStart[t] = rows[t] == 0 ? 0 : (long)(pr0 * g.Q + pc0) * g.N * dyRow;
                bStart[t] = rows[t] == 0 ? 0 : (long)((pr0 + dr) * g.W + pc0 + dc) * g.N * xRow;
            }
            nint aRow = (nint)((long)g.Q * g.N * dyRow), bRow = (nint)((long)g.W * g.N * xRow);
            for (int item = start; item < end; item++)
            {
                int cb = item % cBlocks, kb = item / cBlocks;
                int k1 = Math.Min(g.K, (kb + 1) * FilterKBlock), c1 = Math.Min(g.C, (cb + 1) * FilterCBlock);
                for (int k = kb * FilterKBlock; k < k1; k += Mr)
                    for (int c = cb * FilterCBlock; c < c1; c += Lanes)
                    {
                        for (int t = 0; t < Taps; t++)
                            FilterTile(rows[t], steps[t], dyt + aStart[t] + k, (nint)dyRow, aRow, xt + bStart[t] + c, (nint)xRow, bRow, tiles + t * TileFloats);
                        // dw[k + r, c + j, t] = tiles[t, r, j]: per row r, the 9 x 32 block transposed to 32 x 9.
                        float* d = dw + ((long)k * g.C + c) * Taps;
                        for (int r = 0; r < Mr; r++, d += dwRow)
                        {
                            float* src = tiles + r * Lanes;
                            for (int j = 0; j < Lanes; j += 8) GemmPacking.Transpose8x8(src + j, TileFloats, d + j * Taps, Taps);
                            float* last = src + (Taps - 1) * TileFloats;
                            for (int j = 0; j < Lanes; j++) d[j * Taps + Taps - 1] = last[j];
                        }
                    }
            }
        }
    }

    /// <summary>
    /// tile[r, j] = sum over rows of steps of a[r] * b[j] (8 x 32, one FMA chain per element in order), a and b moving
    /// <paramref name="aStep"/> and <paramref name="bStep"/> floats a step and <paramref name="aRow"/> and <paramref name="bRow"/> a row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FilterTile(int rows, int steps, float* a, nint aStep, nint aRow, float* b, nint bStep, nint bRow, float* tile)
    {
        Vector512<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default;
        Vector512<float> c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default;
        Vector512<float> c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default;
        Vector512<float> c6_0 = default, c6_1 = default, c7_0 = default, c7_1 = default;
        for (int row = 0; row < rows; row++, a += aRow, b += bRow)
        {
            float* ap = a, bp = b;
            for (int s = 0; s < steps; s++, ap += aStep, bp += bStep)
            {
                Vector512<float> b0 = Avx512F.LoadVector512(bp), b1 = Avx512F.LoadVector512(bp + 16);
                c0_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[0]), b0, c0_0);
                c0_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[0]), b1, c0_1);
                c1_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[1]), b0, c1_0);
                c1_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[1]), b1, c1_1);
                c2_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[2]), b0, c2_0);
                c2_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[2]), b1, c2_1);
                c3_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[3]), b0, c3_0);
                c3_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[3]), b1, c3_1);
                c4_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[4]), b0, c4_0);
                c4_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[4]), b1, c4_1);
                c5_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[5]), b0, c5_0);
                c5_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[5]), b1, c5_1);
                c6_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[6]), b0, c6_0);
                c6_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[6]), b1, c6_1);
                c7_0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[7]), b0, c7_0);
                c7_1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[7]), b1, c7_1);
            }
        }
        Vector512.Store(c0_0, tile + 0); Vector512.Store(c0_1, tile + 16);
        Vector512.Store(c1_0, tile + 32); Vector512.Store(c1_1, tile + 48);
        Vector512.Store(c2_0, tile + 64); Vector512.Store(c2_1, tile + 80);
        Vector512.Store(c3_0, tile + 96); Vector512.Store(c3_1, tile + 112);
        Vector512.Store(c4_0, tile + 128); Vector512.Store(c4_1, tile + 144);
        Vector512.Store(c5_0, tile + 160); Vector512.Store(c5_1, tile + 176);
        Vector512.Store(c6_0, tile + 192); Vector512.Store(c6_1, tile + 208);
        Vector512.Store(c7_0, tile + 224); Vector512.Store(c7_1, tile + 240);
    }
}
