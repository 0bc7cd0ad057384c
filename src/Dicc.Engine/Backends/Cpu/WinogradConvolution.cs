using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// The fast path's 3x3, stride-1, padding-1 convolutions on maps of at least 8 x 8 as Winograd F(2x2, 3x3) (Lavin and
/// Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 output tile is
/// <c>A^T [(G g G^T) . (B^T d B)] A</c> over its 4x4 input tile d, so the work is 16 products
/// <c>M_pos[K, tiles] = U_pos[K, C] V_pos[C, tiles]</c>, 16 multiplications per 4 outputs where the direct convolution
/// needs 36. The input gradient is the same convolution of dy with the flipped, transposed weights; the filter gradient
/// is the same algebra backwards, <c>dg = G^T [sum over tiles of (A dY A^T) . V] G</c> (docs/benchmarks.md, "Winograd").
/// </summary>
/// <remarks>
/// Forward and input gradient: work goes in groups of 32 consecutive tiles (of any images and tile rows), one group at a
/// time per thread. The input transform reads each run of up to 16 tiles of one tile row as four masked loads per patch
/// row, split into even and odd columns, and writes V straight in the GEMM micro-kernel's packed B layout; U is
/// transformed once per call into the packed A layout; the 16 products run the micro-kernel on them without packing;
/// the output transform interleaves each tile's two columns back and stores whole output rows, adding the bias. A
/// group's V and M stay in the core's L2 cache. Filter gradient: transforms vectorised along channels over channels-last
/// copies of x and dy (so that V and dM come out tile-major, as the micro-kernel's reduction needs), in fixed slices of
/// tiles per thread or in fixed chunks shared by all threads, dU added slice by slice or chunk by chunk in order.
/// Blocks written or read together (16 positions, their slivers) are padded by a cache line each, so that they do not
/// share L1 sets: without it they sit a multiple of 4 KB apart and the transforms ran several times slower.
/// <para>
/// Every output is computed the same way whichever thread computes it, so results do not depend on the thread count.
/// The arithmetic differs from the direct convolution's (the reference path's): tests bound the difference by the
/// rounding bound of the direct sum times the growth of Winograd's transforms (tests/Dicc.Engine.Tests/Cpu/CpuFastPathTests.cs).
/// </para>
/// </remarks>
internal static unsafe class WinogradConvolution
{
    /// <summary>Transformed positions of a 4x4 tile.</summary>
    private const int Positions = 16;

    /// <summary>Tiles per group: the micro-kernel's NR, so a group's V for one position and channel is one B row.</summary>
    private const int GroupTiles = 32;

    /// <summary>Output channels per A sliver of the micro-kernel (its MR).</summary>
    private const int Mr = 8;

    /// <summary>
    /// Smallest output side run here. A 5x5 map pays for 6x6 tiles (1.56x fewer multiplications, not 2.25x) and its
    /// 256-512 channels make U 4-16 MB, streamed once per group: measured slower than the direct convolution at 5x5 and
    /// 2x2, in groups or as whole-batch GEMMs (docs/benchmarks.md).
    /// </summary>
    private const int MinSide = 8;

    /// <summary>
    /// Off with the environment variable <c>DICC_CPU_WINOGRAD=0</c> (or from a test or benchmark): every layer then runs
    /// the implicit-GEMM direct convolution, bit-identical to the reference path (the fast path as it was before Winograd).
    /// </summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("DICC_CPU_WINOGRAD") != "0";

    /// <summary>
    /// Whether the forward convolution <paramref name="g"/> runs here: 3x3, stride 1, padding 1, at least 16 input
    /// channels, output channels a multiple of 8, an output map at least 8 on each side, on a CPU with AVX-512.
    /// </summary>
    public static bool Applies(in ConvolutionGeometry g) =>
        Enabled && Avx512F.IsSupported && Avx512Kernel.NR == GroupTiles && Avx512Kernel.MR == Mr &&
        g.R == 3 && g.S == 3 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 1 && g.PadW == 1 &&
        g.C >= 16 && g.K % Mr == 0 && g.P >= MinSide && g.Q >= MinSide;

    private static int TilesH(in ConvolutionGeometry g) => (g.P + 1) / 2;
    private static int TilesW(in ConvolutionGeometry g) => (g.Q + 1) / 2;
    private static long Tiles(in ConvolutionGeometry g) => (long)g.N * TilesH(g) * TilesW(g);

    private static long Align(long floats) => (floats + 15) / 16 * 16;

    /// <summary>Floats between two positions' blocks of U or dU (K x C each), plus a cache line against L1 set conflicts.</summary>
    private static long UStride(int k, int c) => (long)k * c + 16;

    /// <summary>Floats between two positions' blocks of V: C rows of 32, plus a cache line against L1 set conflicts.</summary>
    private static long VStride(int channels) => (long)channels * GroupTiles + 16;

    /// <summary>At most this many runs (of one tile row, up to 16 tiles) per group: a run has at least one tile.</summary>
    private const int MaxRuns = GroupTiles;

    /// <summary>Per run: first lane, length, image offset, first input row and column, first output, lower row exists.</summary>
    private const int RunInts = 8;

    /// <summary>Per run: four input-load masks, two output-store masks, the V store mask (16 floats each).</summary>
    private const int RunMaskFloats = 7 * 16;

    /// <summary>One thread's floats: V, M, the runs' masks and offsets.</summary>
    private static long LaneFloats(in ConvolutionGeometry g) =>
        Positions * VStride(g.C) + Positions * VStride(g.K) + MaxRuns * RunMaskFloats + MaxRuns * RunInts;

    /// <summary>Workspace floats of a call over <paramref name="g"/>: lane flags, U, one lane per thread.</summary>
    public static long WorkspaceFloats(in ConvolutionGeometry g) =>
        Align(CpuParallel.Threads) + Positions * UStride(g.K, g.C) + CpuParallel.Threads * Align(LaneFloats(g));

    /// <summary>
    /// y = conv(x, w) + bias (bias may be null) with w as stored, [K, C, 3, 3]; or, when <paramref name="flippedWeights"/>,
    /// with the flipped and transposed weights of a layer whose w is [C, K, 3, 3] (the input gradient: x is then dy,
    /// y is dx). <paramref name="ws"/> holds <see cref="WorkspaceFloats"/> floats, 64-byte aligned.
    /// </summary>
    public static void Forward(in ConvolutionGeometry g, float* x, float* w, float* bias, float* y, float* ws, bool flippedWeights)
    {
        float* u = ws + Align(CpuParallel.Threads);
        CpuParallel.For(g.K / Mr, (long)g.C * Mr * 64, new WeightTransformBody(w, u, g.K, g.C, flippedWeights));
        var lanes = new WorkspaceLanes((int*)ws, CpuParallel.Threads);
        long groups = (Tiles(g) + GroupTiles - 1) / GroupTiles;
        var body = new GroupBody(g, x, u, bias, y, lanes, u + Positions * UStride(g.K, g.C), Align(LaneFloats(g)));
        CpuParallel.For(checked((int)groups), (long)Positions * g.K * g.C * GroupTiles * 2, body);
    }

    // ---- filter gradient ------------------------------------------------------------------------------

    /// <summary>Target floats of one chunk's transformed inputs and output gradients (4 MB: they stay in L3).</summary>
    private const long FilterChunkFloats = 1L << 20;

    /// <summary>Channels per vector of the channels-last transforms.</summary>
    private const int Vec = 16;

    /// <summary>
    /// Whether the filter gradient of <paramref name="g"/> runs here: where <see cref="Applies"/>, with input channels a
    /// multiple of 32 (the micro-kernel's NR) and output channels a multiple of 16 (VGG's layers from conv1_2 to conv3_4).
    /// </summary>
    public static bool AppliesToFilterGradient(in ConvolutionGeometry g) => Applies(g) && g.C % GroupTiles == 0 && g.K % Vec == 0;

    /// <summary>Tiles per chunk of the filter gradient (fixed by the geometry, so results do not depend on the thread count).</summary>
    private static int FilterChunkTiles(in ConvolutionGeometry g) =>
        (int)Math.Clamp(FilterChunkFloats / (Positions * (long)(g.C + g.K)) / Vec * Vec, Vec, Tiles(g));

    /// <summary>Tiles per slice of a sliced filter gradient (fixed, so results do not depend on the thread count).</summary>
    private const int SliceTiles = 1024;

    /// <summary>Tiles a slice transforms and multiplies at a time (its V and dM stay in the core's L2 cache).</summary>
    private const int SliceGroupTiles = 64;

    /// <summary>
    /// Whether the filter gradient is summed per slice of tiles, each slice on one thread into its own dU, the slices'
    /// dU added in order at the end: where there are several slices and dU is at most 1 MB (conv1_2 to conv2_2), or at
    /// least four slices and dU at most 4 MB (conv3_x at batch 128: 42 -> 38 ms for conv3_2; at batch 32, two uneven
    /// slices were slower than the chunks, 11 against 15 ms). The chunked form's transforms write each chunk's V and dM
    /// to L3 for the products to read back on any core, which made them memory-bound on these many-tile layers.
    /// </summary>
    private static bool Sliced(in ConvolutionGeometry g)
    {
        long du = (long)Positions * g.K * g.C, tiles = Tiles(g);
        return tiles > SliceTiles && (du <= 1 << 18 || (du <= 1 << 20 && tiles >= 4L * SliceTiles));
    }

    private static int Slices(in ConvolutionGeometry g) => (int)((Tiles(g) + SliceTiles - 1) / SliceTiles);

    /// <summary>One thread's floats of a sliced filter gradient: a group's V and dM.</summary>
    private static long SliceLaneFloats(in ConvolutionGeometry g) =>
        Align(Positions * FilterPositionFloats(g.C, SliceGroupTiles, GroupTiles) + Positions * FilterPositionFloats(g.K, SliceGroupTiles, Mr));

    /// <summary>
    /// Workspace floats of the filter gradient: channels-last copies of x and dy, a zero pixel, then one chunk's V and
    /// dM and dU; or, sliced, lane flags, one lane per thread and each slice's dU.
    /// </summary>
    public static long FilterGradientWorkspaceFloats(in ConvolutionGeometry g)
    {
        long copies = Align((long)g.N * g.H * g.W * g.C) + Align((long)g.N * g.P * g.Q * g.K) + Align(Math.Max(g.C, g.K));
        if (Sliced(g))
            return copies + Align(CpuParallel.Threads) + CpuParallel.Threads * SliceLaneFloats(g) + Slices(g) * Positions * UStride(g.K, g.C);
        long tc = FilterChunkTiles(g);
        return copies + Positions * FilterPositionFloats(g.C, tc, GroupTiles) + Positions * FilterPositionFloats(g.K, tc, Mr) +
            Positions * UStride(g.K, g.C);
    }

    /// <summary>Floats between two positions' blocks of a chunk's V or dM: a cache line more than their tiles take, so that the
    /// 16 stores of one transform do not all fall in one L1 set (the blocks are a multiple of 4 KB apart otherwise).</summary>
    private static long FilterPositionFloats(int channels, long tc, int width) => channels / width * SliverFloats(tc, width);

    /// <summary>Floats between two slivers (tiles x width channels) of one position: a cache line more, for the same reason.</summary>
    private static long SliverFloats(long tc, int width) => tc * width + 16;

    /// <summary>
    /// dw = the filter gradient of the convolution (overwritten; the bias gradient is the caller's): V = B^T d B and
    /// dM = A dY A^T for every tile (vectorised along channels over channels-last copies, so both come out in the
    /// micro-kernel's layouts) and dU_pos += dM_pos V_pos^T over the tiles, either per slice (<see cref="Sliced"/>: each
    /// slice on one thread into its own dU, summed in order at the end) or per chunk (all threads transform a chunk, then
    /// each (position, 32 inputs) block of dU is one part's, chunks added in order); finally dw = G^T dU G.
    /// </summary>
    public static void FilterGradient(in ConvolutionGeometry g, float* x, float* dy, float* dw, float* ws)
    {
        long tiles = Tiles(g);
        int tc = FilterChunkTiles(g), hw = g.H * g.W, pq = g.P * g.Q;
        float* xt = ws;
        float* dyt = xt + Align((long)g.N * hw * g.C);
        float* zero = dyt + Align((long)g.N * pq * g.K);
        float* v = zero + Align(Math.Max(g.C, g.K));
        new Span<float>(zero, Math.Max(g.C, g.K)).Clear();
        CpuParallel.For(g.N * ((g.C + 7) / 8), 8L * hw, new CpuBackend.ToChannelsLastBody(x, xt, g.C, hw));
        CpuParallel.For(g.N * ((g.K + 7) / 8), 8L * pq, new CpuBackend.ToChannelsLastBody(dy, dyt, g.K, pq));
        int items = Positions * (g.C / GroupTiles);
        if (Sliced(g))
        {
            float* laneBase = v + Align(CpuParallel.Threads);
            float* partials = laneBase + CpuParallel.Threads * SliceLaneFloats(g);
            var lanes = new WorkspaceLanes((int*)v, CpuParallel.Threads);
            CpuParallel.For(Slices(g), (long)SliceTiles * Positions * g.K * g.C * 2,
                new FilterSliceBody(g, xt, dyt, zero, lanes, laneBase, SliceLaneFloats(g), partials));
            CpuParallel.For(g.K, (long)g.C * 64 * Slices(g), new FilterFromTransformBody(partials, dw, g.K, g.C, Slices(g)));
            return;
        }
        float* dm = v + Positions * FilterPositionFloats(g.C, tc, GroupTiles);
        float* du = dm + Positions * FilterPositionFloats(g.K, tc, Mr);
        for (long t0 = 0; t0 < tiles; t0 += tc)
        {
            int count = (int)Math.Min(tc, tiles - t0);
            CpuParallel.For(count, (long)Positions * (g.C + g.K) * 4, new FilterTransformBody(g, xt, dyt, zero, v, dm, t0, tc));
            CpuParallel.For(items, (long)g.C * count * Mr * 2, new FilterProductBody(v, dm, du, g.K, g.C, tc, count, t0 == 0));
        }
        CpuParallel.For(g.K, (long)g.C * 64, new FilterFromTransformBody(du, dw, g.K, g.C, 1));
    }

    /// <summary>Slices of tiles, each into its own dU: groups of 64 tiles transformed and multiplied in the lane's L2-sized buffers.</summary>
    private readonly struct FilterSliceBody(ConvolutionGeometry g, float* xt, float* dyt, float* zero, WorkspaceLanes lanes,
        float* laneBase, long laneFloats, float* partials) : IRangeBody
    {
        public void Run(int s0, int s1)
        {
            int lane = lanes.Claim();
            try
            {
                float* v = laneBase + lane * laneFloats;
                float* dm = v + Positions * FilterPositionFloats(g.C, SliceGroupTiles, GroupTiles);
                long tiles = Tiles(g);
                int items = Positions * (g.C / GroupTiles);
                for (int s = s0; s < s1; s++)
                {
                    long begin = (long)s * SliceTiles, end = Math.Min(tiles, begin + SliceTiles);
                    float* du = partials + s * Positions * UStride(g.K, g.C);
                    for (long t0 = begin; t0 < end; t0 += SliceGroupTiles)
                    {
                        int count = (int)Math.Min(SliceGroupTiles, end - t0);
                        new FilterTransformBody(g, xt, dyt, zero, v, dm, t0, SliceGroupTiles).Run(0, count);
                        new FilterProductBody(v, dm, du, g.K, g.C, SliceGroupTiles, count, t0 == begin).Run(0, items);
                    }
                }
            }
            finally
            {
                lanes.Release(lane);
            }
        }
    }

    /// <summary>One chunk's V[pos, c / 32, tile, c % 32] and dM[pos, k / 8, tile, k % 8], 16 channels per vector.</summary>
    private readonly struct FilterTransformBody(ConvolutionGeometry g, float* xt, float* dyt, float* zero, float* v, float* dm,
        long t0, int tc) : IRangeBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int th = TilesH(g), tw = TilesW(g);
            long perImage = (long)th * tw, vPosition = FilterPositionFloats(g.C, tc, GroupTiles), mPosition = FilterPositionFloats(g.K, tc, Mr);
            long vSliver = SliverFloats(tc, GroupTiles), mSliver = SliverFloats(tc, Mr);
            float** pixel = stackalloc float*[Positions];
            for (int lt = start; lt < end; lt++)
            {
                long t = t0 + lt;
                int n = (int)(t / perImage), rest = (int)(t % perImage);
                int ti = rest / tw, tj = rest % tw;
                // The tile's 16 input pixels (channels-last; the zero pixel outside the image).
                for (int r = 0; r < 4; r++)
                    for (int s = 0; s < 4; s++)
                    {
                        int row = 2 * ti - 1 + r, col = 2 * tj - 1 + s;
                        pixel[r * 4 + s] = (uint)row < (uint)g.H && (uint)col < (uint)g.W
                            ? xt + (((long)n * g.H + row) * g.W + col) * g.C : zero;
                    }
                for (int c = 0; c < g.C; c += Vec)
                {
                    float* dst = v + c / GroupTiles * vSliver + (long)lt * GroupTiles + c % GroupTiles;
                    var d0 = new Column4(Vector512.Load(pixel[0] + c), Vector512.Load(pixel[1] + c), Vector512.Load(pixel[2] + c), Vector512.Load(pixel[3] + c));
                    var d1 = new Column4(Vector512.Load(pixel[4] + c), Vector512.Load(pixel[5] + c), Vector512.Load(pixel[6] + c), Vector512.Load(pixel[7] + c));
                    var d2 = new Column4(Vector512.Load(pixel[8] + c), Vector512.Load(pixel[9] + c), Vector512.Load(pixel[10] + c), Vector512.Load(pixel[11] + c));
                    var d3 = new Column4(Vector512.Load(pixel[12] + c), Vector512.Load(pixel[13] + c), Vector512.Load(pixel[14] + c), Vector512.Load(pixel[15] + c));
                    StoreInputTransform(d0, d1, d2, d3, dst, vPosition, default, full: true);
                }
                // The tile's 2x2 output gradients (the zero pixel past the map's edge).
                int p0 = 2 * ti, q0 = 2 * tj;
                float* y00 = dyt + (((long)n * g.P + p0) * g.Q + q0) * g.K;
                float* y01 = q0 + 1 < g.Q ? y00 + g.K : zero;
                float* y10 = p0 + 1 < g.P ? y00 + (long)g.Q * g.K : zero;
                float* y11 = q0 + 1 < g.Q && p0 + 1 < g.P ? y00 + ((long)g.Q + 1) * g.K : zero;
                for (int k = 0; k < g.K; k += Vec)
                {
                    float* dst = dm + k / Mr * mSliver + (long)lt * Mr;
                    var a0 = Vector512.Load(y00 + k);
                    var a1 = Vector512.Load(y01 + k);
                    var b0 = Vector512.Load(y10 + k);
                    var b1 = Vector512.Load(y11 + k);
                    // A dY A^T with A = [1 0; 1 1; 1 -1; 0 -1]: rows (y0, y0 + y1, y0 - y1, -y1), then the same per row.
                    StoreGradientRow(a0, a1, dst, 0, mPosition, mSliver);
                    StoreGradientRow(a0 + b0, a1 + b1, dst, 4, mPosition, mSliver);
                    StoreGradientRow(a0 - b0, a1 - b1, dst, 8, mPosition, mSliver);
                    StoreGradientRow(-b0, -b1, dst, 12, mPosition, mSliver);
                }
            }
        }

        /// <summary>Row (left, right) of A dY times A^T: (left, left + right, left - right, -right); 16 channels as two slivers of 8.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreGradientRow(Vector512<float> left, Vector512<float> right, float* dst, int first, long stride, long sliver)
        {
            StoreHalves(left, dst + (first + 0) * stride, sliver);
            StoreHalves(left + right, dst + (first + 1) * stride, sliver);
            StoreHalves(left - right, dst + (first + 2) * stride, sliver);
            StoreHalves(-right, dst + (first + 3) * stride, sliver);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreHalves(Vector512<float> value, float* dst, long sliver)
        {
            Vector256.Store(value.GetLower(), dst);
            Vector256.Store(value.GetUpper(), dst + sliver);
        }
    }

    /// <summary>
    /// dU_pos (+)= dM_pos V_pos^T over one chunk's tiles, one (position, 32 inputs) block per item: its V sliver (the
    /// chunk's tiles x 32 inputs) stays in L1 while the 8-output slivers of dM stream past it.
    /// </summary>
    private readonly struct FilterProductBody(float* v, float* dm, float* du, int k, int c, int tc, int count, bool first) : IRangeBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int inputBlocks = c / GroupTiles;
            for (int item = start; item < end; item++)
            {
                int pos = item / inputBlocks, cb = item % inputBlocks;
                float* b = v + pos * FilterPositionFloats(c, tc, GroupTiles) + cb * SliverFloats(tc, GroupTiles);
                float* a = dm + pos * FilterPositionFloats(k, tc, Mr);
                long aSliver = SliverFloats(tc, Mr);
                float* dst = du + pos * UStride(k, c) + cb * GroupTiles;
                for (int kb = 0; kb < k / Mr; kb++)
                    Avx512Kernel.Run(count, a + kb * aSliver, b, dst + (long)kb * Mr * c, c, 1f, first ? 0f : 1f);
            }
        }
    }

    /// <summary>dw[k, c] = G^T dU[k, c] G (4x4 to 3x3), dU the sum of <paramref name="parts"/> consecutive dU blocks, added in order.</summary>
    private readonly struct FilterFromTransformBody(float* du, float* dw, int k, int c, int parts) : IRangeBody
    {
        public void Run(int k0, int k1)
        {
            long position = UStride(k, c);
            float* t = stackalloc float[12];
            for (int o = k0; o < k1; o++)
                for (int i = 0; i < c; i++)
                {
                    float* src = du + (long)o * c + i;
                    // G^T dU: rows dU0 + (dU1 + dU2) / 2, (dU1 - dU2) / 2, (dU1 + dU2) / 2 + dU3, per column j.
                    for (int j = 0; j < 4; j++)
                    {
                        float u0 = Sum(src + (0 * 4 + j) * position), u1 = Sum(src + (1 * 4 + j) * position);
                        float u2 = Sum(src + (2 * 4 + j) * position), u3 = Sum(src + (3 * 4 + j) * position);
                        t[0 * 4 + j] = u0 + 0.5f * (u1 + u2);
                        t[1 * 4 + j] = 0.5f * (u1 - u2);
                        t[2 * 4 + j] = 0.5f * (u1 + u2) + u3;
                    }
                    float* dst = dw + ((long)o * c + i) * 9;
                    for (int r = 0; r < 3; r++)
                    {
                        float a0 = t[r * 4], a1 = t[r * 4 + 1], a2 = t[r * 4 + 2], a3 = t[r * 4 + 3];
                        dst[r * 3 + 0] = a0 + 0.5f * (a1 + a2);
                        dst[r * 3 + 1] = 0.5f * (a1 - a2);
                        dst[r * 3 + 2] = 0.5f * (a1 + a2) + a3;
                    }
                }
        }

        /// <summary>One dU element summed over the parts, in order.</summary>
        private float Sum(float* at)
        {
            float sum = at[0];
            long part = Positions * UStride(k, c);
            for (int p = 1; p < parts; p++) sum += at[p * part];
            return sum;
        }
    }

    /// <summary>
    /// U_pos[k, c] = (G g G^T)_pos for the weights g of output k, input c, in the micro-kernel's A layout (per position,
    /// blocks of 8 outputs, then inputs, then the 8 outputs): one block of 8 outputs per item, computed eight outputs to a
    /// vector, so that each position's block is written in order, a vector at a time (scalar stores 16 blocks apart
    /// took 1.8 ms for conv3_2's 256 x 256 kernels, the vectors 0.2 ms).
    /// </summary>
    private readonly struct WeightTransformBody(float* w, float* u, int k, int c, bool flipped) : IRangeBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int b0, int b1)
        {
            long position = UStride(k, c);
            long oStride = flipped ? 9 : (long)c * 9;
            var half = Vector256.Create(0.5f);
            var t = stackalloc Vector256<float>[12];
            for (int b = b0; b < b1; b++)
            {
                for (int i = 0; i < c; i++)
                {
                    // g[r, s] of outputs b * 8 .. b * 8 + 7 and input i; flipped: w[i, o, 2 - r, 2 - s] of a [C, K, 3, 3] tensor.
                    float* g = flipped ? w + ((long)i * k + b * Mr) * 9 : w + ((long)b * Mr * c + i) * 9;
                    // G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2, each of 3 columns.
                    for (int col = 0; col < 3; col++)
                    {
                        var g0 = Tap(g, oStride, 0, col, flipped);
                        var g1 = Tap(g, oStride, 1, col, flipped);
                        var g2 = Tap(g, oStride, 2, col, flipped);
                        t[0 * 3 + col] = g0;
                        t[1 * 3 + col] = half * (g0 + g1 + g2);
                        t[2 * 3 + col] = half * (g0 - g1 + g2);
                        t[3 * 3 + col] = g2;
                    }
                    // (G g) G^T: the same combination along each row.
                    float* dst = u + ((long)b * c + i) * Mr;
                    for (int r = 0; r < 4; r++)
                    {
                        var a0 = t[r * 3];
                        var a1 = t[r * 3 + 1];
                        var a2 = t[r * 3 + 2];
                        Vector256.Store(a0, dst + (r * 4 + 0) * position);
                        Vector256.Store(half * (a0 + a1 + a2), dst + (r * 4 + 1) * position);
                        Vector256.Store(half * (a0 - a1 + a2), dst + (r * 4 + 2) * position);
                        Vector256.Store(a2, dst + (r * 4 + 3) * position);
                    }
                }
            }
        }

        /// <summary>Tap (r, s) of eight outputs' kernels, <paramref name="oStride"/> floats apart.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Tap(float* g, long oStride, int r, int s, bool flipped)
        {
            int at = flipped ? (2 - r) * 3 + (2 - s) : r * 3 + s;
            return Vector256.Create(g[at], g[oStride + at], g[2 * oStride + at], g[3 * oStride + at],
                g[4 * oStride + at], g[5 * oStride + at], g[6 * oStride + at], g[7 * oStride + at]);
        }
    }

    /// <summary>Groups of 32 tiles: transform in, 16 products, transform out.</summary>
    private readonly struct GroupBody(ConvolutionGeometry g, float* x, float* u, float* bias, float* y,
        WorkspaceLanes lanes, float* laneBase, long laneFloats) : IRangeBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int group0, int group1)
        {
            int lane = lanes.Claim();
            try
            {
                float* v = laneBase + lane * laneFloats;
                long vStride = VStride(g.C), mStride = VStride(g.K);
                float* m = v + Positions * vStride;
                float* masks = m + Positions * mStride;
                int* runs = (int*)(masks + MaxRuns * RunMaskFloats);
                long tiles = Tiles(g);
                for (int group = group0; group < group1; group++)
                {
                    long t0 = (long)group * GroupTiles;
                    int count = (int)Math.Min(GroupTiles, tiles - t0);
                    int runCount = Locate(t0, count, runs, masks);
                    if (count < GroupTiles) ClearTail(v, vStride, count);
                    TransformInput(v, vStride, runs, masks, runCount);
                    Multiply(v, vStride, m, mStride);
                    TransformOutput(m, mStride, runs, masks, runCount);
                }
            }
            finally
            {
                lanes.Release(lane);
            }
        }

        /// <summary>
        /// Splits the group's tiles into runs of at most 16 consecutive tiles of one tile row, with each run's offsets
        /// and the masks of its input loads (columns inside the image) and output stores (outputs that exist).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private int Locate(long t0, int count, int* runs, float* masks)
        {
            int th = TilesH(g), tw = TilesW(g);
            long perImage = (long)th * tw;
            var width = Vector512.Create(g.W);
            int runCount = 0;
            for (int lane = 0; lane < count; runCount++)
            {
                long t = t0 + lane;
                int n = (int)(t / perImage), rest = (int)(t % perImage);
                int ti = rest / tw, tj = rest % tw;
                int length = Math.Min(Math.Min(count - lane, tw - tj), Vector512<float>.Count);
                int* run = runs + runCount * RunInts;
                run[0] = lane;
                run[1] = length;
                run[2] = checked(n * g.C * g.H * g.W);
                run[3] = 2 * ti - 1;
                run[4] = 2 * tj - 1;
                run[5] = checked(n * g.K * g.P * g.Q + 2 * ti * g.Q + 2 * tj);
                run[6] = 2 * ti + 1 < g.P ? 1 : 0;
                float* mask = masks + runCount * RunMaskFloats;
                // Input loads: columns col0 + lane (+16, +2, +18) that lie inside the image row.
                var column = Vector512<int>.Indices + Vector512.Create(2 * tj - 1);
                Vector512.Store(Inside(column, width), mask);
                Vector512.Store(Inside(column + Vector512.Create(16), width), mask + 16);
                Vector512.Store(Inside(column + Vector512.Create(2), width), mask + 32);
                Vector512.Store(Inside(column + Vector512.Create(18), width), mask + 48);
                // Output stores: the run's 2 * length columns from 2 * tj, those left of Q.
                var outLane = Vector512<int>.Indices;
                var outLimit = Vector512.Create(Math.Min(2 * length, g.Q - 2 * tj));
                Vector512.Store(Vector512.LessThan(outLane, outLimit).AsSingle(), mask + 64);
                Vector512.Store(Vector512.LessThan(outLane + Vector512.Create(16), outLimit).AsSingle(), mask + 80);
                Vector512.Store(LaneMasks.First512(length), mask + 96);
                lane += length;
            }
            return runCount;
        }

        private static Vector512<float> Inside(Vector512<int> column, Vector512<int> width) =>
            (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, width)).AsSingle();

        /// <summary>Zeroes V's columns past the last tile of a partial group (its products are computed, not stored).</summary>
        private void ClearTail(float* v, long vStride, int count)
        {
            for (int pos = 0; pos < Positions; pos++)
                for (int c = 0; c < g.C; c++)
                    new Span<float>(v + pos * vStride + (long)c * GroupTiles + count, GroupTiles - count).Clear();
        }

        /// <summary>
        /// V_pos[c, tile] = (B^T d B)_pos of each tile's 4x4 patch d of channel c, in the micro-kernel's B layout: 16
        /// tiles of a tile row at a time, each patch row read with four masked loads split into even and odd columns.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransformInput(float* v, long vStride, int* runs, float* masks, int runCount)
        {
            long plane = (long)g.H * g.W;
            var even = Vector512<int>.Indices * 2;
            var odd = even + Vector512<int>.One;
            for (int r = 0; r < runCount; r++)
            {
                int* run = runs + r * RunInts;
                float* mask = masks + r * RunMaskFloats;
                var m0 = Vector512.Load(mask);
                var m1 = Vector512.Load(mask + 16);
                var s0 = Vector512.Load(mask + 32);
                var s1 = Vector512.Load(mask + 48);
                var store = Vector512.Load(mask + 96);
                bool full = run[1] == Vector512<float>.Count;
                int row0 = run[3];
                float* first = x + run[2] + (long)row0 * g.W + run[4];
                float* dst = v + run[0];
                for (int c = 0; c < g.C; c++)
                {
                    float* p = first + c * plane;
                    var d0 = LoadRow(p, row0, even, odd, m0, m1, s0, s1);
                    var d1 = LoadRow(p + g.W, row0 + 1, even, odd, m0, m1, s0, s1);
                    var d2 = LoadRow(p + 2 * g.W, row0 + 2, even, odd, m0, m1, s0, s1);
                    var d3 = LoadRow(p + 3 * g.W, row0 + 3, even, odd, m0, m1, s0, s1);
                    StoreInputTransform(d0, d1, d2, d3, dst + (long)c * GroupTiles, vStride, store, full);
                }
            }
        }

        /// <summary>Row <paramref name="row"/> of 16 patches: columns col0 + 2j + s for s = 0..3 (zero outside the image).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private Column4 LoadRow(float* p, int row, Vector512<int> even, Vector512<int> odd,
            Vector512<float> m0, Vector512<float> m1, Vector512<float> s0, Vector512<float> s1)
        {
            if ((uint)row >= (uint)g.H) return default;
            var l0 = Avx512F.MaskLoad(p, m0, Vector512<float>.Zero);
            var l1 = Avx512F.MaskLoad(p + 16, m1, Vector512<float>.Zero);
            var h0 = Avx512F.MaskLoad(p + 2, s0, Vector512<float>.Zero);
            var h1 = Avx512F.MaskLoad(p + 18, s1, Vector512<float>.Zero);
            return new Column4(Avx512F.PermuteVar16x32x2(l0, even, l1), Avx512F.PermuteVar16x32x2(l0, odd, l1),
                Avx512F.PermuteVar16x32x2(h0, even, h1), Avx512F.PermuteVar16x32x2(h0, odd, h1));
        }

        /// <summary>M_pos = U_pos V_pos for the 16 positions, on the GEMM's micro-kernel (U and V already packed).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Multiply(float* v, long vStride, float* m, long mStride)
        {
            int blocks = g.K / Mr;
            long position = UStride(g.K, g.C);
            for (int pos = 0; pos < Positions; pos++)
            {
                float* up = u + pos * position, vp = v + pos * vStride, mp = m + pos * mStride;
                for (int b = 0; b < blocks; b++)
                    Avx512Kernel.Run(g.C, up + (long)b * g.C * Mr, vp, mp + b * Mr * GroupTiles, GroupTiles, 1f, 0f);
            }
        }

        /// <summary>
        /// y's 2x2 tiles = A^T M A (+ bias) for each output channel, 16 tiles of a tile row at a time: the tiles' two
        /// output rows are interleaved from their left and right columns and stored as two masked rows of 32.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransformOutput(float* m, long mStride, int* runs, float* masks, int runCount)
        {
            long plane = (long)g.P * g.Q;
            int q = g.Q;
            var low = Interleave(0);
            var high = Interleave(8);
            for (int k = 0; k < g.K; k++)
            {
                var b = Vector512.Create(bias == null ? 0f : bias[k]);
                float* yk = y + k * plane;
                float* mk = m + k * GroupTiles;
                for (int r = 0; r < runCount; r++)
                {
                    int* run = runs + r * RunInts;
                    float* mr = mk + run[0];
                    // Rows: A^T M = (m0 + m1 + m2, m1 - m2 - m3), column by column.
                    var m0 = Load4(mr, 0, mStride);
                    var m1 = Load4(mr, 4, mStride);
                    var m2 = Load4(mr, 8, mStride);
                    var m3 = Load4(mr, 12, mStride);
                    var s0 = m0.Plus(m1).Plus(m2);
                    var s1 = m1.Minus(m2).Minus(m3);
                    // Columns: (s0 + s1 + s2, s1 - s2 - s3) of each row.
                    float* mask = masks + r * RunMaskFloats;
                    var lowMask = Vector512.Load(mask + 64);
                    var highMask = Vector512.Load(mask + 80);
                    float* o = yk + run[5];
                    StoreOutputRow(s0.A + s0.B + s0.C + b, s0.B - s0.C - s0.D + b, o, low, high, lowMask, highMask);
                    if (run[6] != 0)
                        StoreOutputRow(s1.A + s1.B + s1.C + b, s1.B - s1.C - s1.D + b, o + q, low, high, lowMask, highMask);
                }
            }
        }

        /// <summary>Indices that interleave lanes first .. first + 7 of two vectors: a0, b0, a1, b1, ...</summary>
        private static Vector512<int> Interleave(int first) =>
            Vector512<int>.Indices / Vector512.Create(2) + Vector512.Create(first) + (Vector512<int>.Indices & Vector512<int>.One) * 16;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreOutputRow(Vector512<float> left, Vector512<float> right, float* o,
            Vector512<int> low, Vector512<int> high, Vector512<float> lowMask, Vector512<float> highMask)
        {
            Avx512F.MaskStore(o, lowMask, Avx512F.PermuteVar16x32x2(left, low, right));
            Avx512F.MaskStore(o + 16, highMask, Avx512F.PermuteVar16x32x2(left, high, right));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Column4 Load4(float* mk, int first, long stride) => new(
            Vector512.Load(mk + (first + 0) * stride), Vector512.Load(mk + (first + 1) * stride),
            Vector512.Load(mk + (first + 2) * stride), Vector512.Load(mk + (first + 3) * stride));
    }

    /// <summary>
    /// B^T d B of 16 patches (rows d0 .. d3, each as four columns), position pos stored at dst + pos * stride: all 16
    /// lanes when <paramref name="full"/>, else the lanes of <paramref name="mask"/>. The forward groups (16 tiles per
    /// vector) and the filter gradient (16 channels per vector) share it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInputTransform(in Column4 d0, in Column4 d1, in Column4 d2, in Column4 d3, float* dst, long stride,
        Vector512<float> mask, bool full)
    {
        // Rows: B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3), column by column; then each row times B.
        StoreInputRow(d0.Minus(d2), dst, 0, stride, mask, full);
        StoreInputRow(d1.Plus(d2), dst, 4, stride, mask, full);
        StoreInputRow(d2.Minus(d1), dst, 8, stride, mask, full);
        StoreInputRow(d1.Minus(d3), dst, 12, stride, mask, full);
    }

    /// <summary>Columns: row t times B = (t0 - t2, t1 + t2, t2 - t1, t1 - t3), stored at positions first .. first + 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInputRow(in Column4 t, float* dst, int first, long stride, Vector512<float> mask, bool full)
    {
        Store(t.A - t.C, dst + (first + 0) * stride, mask, full);
        Store(t.B + t.C, dst + (first + 1) * stride, mask, full);
        Store(t.C - t.B, dst + (first + 2) * stride, mask, full);
        Store(t.B - t.D, dst + (first + 3) * stride, mask, full);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> value, float* dst, Vector512<float> mask, bool full)
    {
        if (full) Vector512.Store(value, dst);
        else Avx512F.MaskStore(dst, mask, value);
    }

    /// <summary>Four columns of one row of a 4x4 tile, 16 tiles (or channels) per vector.</summary>
    private readonly struct Column4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        public readonly Vector512<float> A = a, B = b, C = c, D = d;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Column4 Plus(in Column4 o) => new(A + o.A, B + o.B, C + o.C, D + o.D);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Column4 Minus(in Column4 o) => new(A - o.A, B - o.B, C - o.C, D - o.D);
    }
}

/// <summary>
/// Per-thread slices of a workspace for the parts of one parallel loop: a part claims a free lane for its duration
/// (at most <see cref="CpuParallel.Threads"/> parts run at once).
/// </summary>
internal readonly unsafe struct WorkspaceLanes
{
    private readonly int* _busy;
    private readonly int _count;

    /// <summary>Lanes over <paramref name="count"/> flags at <paramref name="flags"/>, all cleared.</summary>
    public WorkspaceLanes(int* flags, int count)
    {
        _busy = flags;
        _count = count;
        new Span<int>(flags, count).Clear();
    }

    public int Claim()
    {
        for (int i = 0; i < _count; i++)
            if (Interlocked.CompareExchange(ref _busy[i], 1, 0) == 0) return i;
        throw new InvalidOperationException($"More than {_count} parallel parts claimed a workspace lane at once.");
    }

    public void Release(int lane) => Volatile.Write(ref _busy[lane], 0);
}
