using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

// Convolution as im2col + GEMM. Images are processed in chunks: a chunk's columns are laid side by side
// (col is [C*R*S, nb*P*Q]) so that the deep layers, whose P*Q is tiny, still give the GEMM wide matrices,
// while the shallow layers use one image per chunk and write the GEMM result straight into y.
// The fast path (the default) never writes col out: the GEMM packs it straight from the images
// (Im2ColOperand), and the input gradient of a stride-1 convolution is itself a convolution of dy with the
// flipped, transposed weights. The reference path materialises col and scatters col2im (the oracle).
public sealed unsafe partial class CpuBackend
{
    /// <summary>Upper bound for one chunk's im2col buffer, in floats (16 MiB).</summary>
    private const long ColumnBudget = 4L << 20;

    /// <summary>Below this many output columns per image, several images share one GEMM.</summary>
    private const int MinGemmColumns = 512;

    /// <summary>
    /// From this many output columns per image (8 AVX-512 slivers) the fast forward runs one image per GEMM, all
    /// images in one parallel job, instead of chunks of images side by side: no staging copy and one job instead of
    /// one per chunk. Measured (`conv-profile`, 2 threads, alternating builds): the 22 x 22 layers' forward and input
    /// gradient gained 4-20%, while at 11 x 11 (121 columns, 4 slivers) the chunks stayed ahead by 2-6%.
    /// </summary>
    private const int BatchedMinColumns = 256;

    private static int ChunkImages(in ConvolutionGeometry g)
    {
        long pq = (long)g.P * g.Q, crs = (long)g.C * g.R * g.S;
        if (pq >= MinGemmColumns) return 1;
        long byWidth = (MinGemmColumns * 4 + pq - 1) / pq; // aim for ~2048 columns
        long byBudget = Math.Max(1, ColumnBudget / Math.Max(1, crs * pq));
        return (int)Math.Clamp(Math.Min(byWidth, byBudget), 1, g.N);
    }

    /// <inheritdoc/>
    protected override long ConvolutionWorkspaceBytesCore(in ConvolutionGeometry g) =>
        Path == CpuPath.Reference ? ReferenceWorkspaceBytes(g) : FastWorkspaceBytes(g);

    /// <inheritdoc/>
    protected override void ConvolutionForwardCore(in ConvolutionGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        if (Path == CpuPath.Reference)
        {
            ReferenceConvolutionForward(g, x, w, bias, y);
            return;
        }
        if (SingleChannelConvolution.Applies(g))
        {
            SingleChannelConvolution.Forward(g, F(x), F(w), bias is null ? null : F(bias), F(y));
            return;
        }
        float* ws = Workspace(FastWorkspaceBytes(g) / sizeof(float));
        if (WinogradConvolution.Applies(g))
        {
            WinogradConvolution.Forward(g, F(x), F(w), bias is null ? null : F(bias), F(y), ws, flippedWeights: false);
            return;
        }
        if (SmallMapConvolution.Applies(g))
        {
            SmallMapConvolution.Forward(g, F(x), F(w), bias is null ? null : F(bias), F(y), ws, flippedWeights: false);
            return;
        }
        FastConvolutionForward(g, F(x), F(w), bias is null ? null : F(bias), F(y), ws);
    }

    /// <inheritdoc/>
    protected override void ConvolutionBackwardDataCore(in ConvolutionGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        if (Path == CpuPath.Reference || !DataGradientIsConvolution(g))
        {
            ReferenceConvolutionBackwardData(g, dy, w, dx);
            return;
        }
        float* ws = Workspace(FastWorkspaceBytes(g) / sizeof(float));
        // dx = conv(dy, W') with W'[c, k, r, s] = W[k, c, R-1-r, S-1-s], stride 1, padding R-1-pad: the
        // transposed convolution written as a forward one, so it too runs as an implicit GEMM.
        var flipped = FlippedGeometry(g);
        if (WinogradConvolution.Applies(flipped))
        {
            WinogradConvolution.Forward(flipped, F(dy), F(w), null, F(dx), ws, flippedWeights: true);
            return;
        }
        if (SmallMapConvolution.Applies(flipped))
        {
            SmallMapConvolution.Forward(flipped, F(dy), F(w), null, F(dx), ws, flippedWeights: true);
            return;
        }
        float* wt = ws;
        FlipWeights(g, F(w), wt);
        FastConvolutionForward(flipped, F(dy), wt, null, F(dx), ws + Align((long)g.K * g.C * g.R * g.S));
    }

    /// <inheritdoc/>
    protected override void ConvolutionBackwardFilterCore(in ConvolutionGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        if (Path == CpuPath.Reference)
        {
            ReferenceConvolutionBackwardFilter(g, x, dy, dw, dbias);
            return;
        }
        if (SingleChannelConvolution.Applies(g))
        {
            SingleChannelConvolution.FilterGradient(g, F(x), F(dy), F(dw), dbias is null ? null : F(dbias));
            return;
        }
        float* ws = Workspace(FastWorkspaceBytes(g) / sizeof(float));
        if (WinogradConvolution.AppliesToFilterGradient(g)) WinogradConvolution.FilterGradient(g, F(x), F(dy), F(dw), ws);
        else if (SmallMapConvolution.AppliesToFilterGradient(g)) SmallMapConvolution.FilterGradient(g, F(x), F(dy), F(dw), ws);
        else FastConvolutionBackwardFilter(g, F(x), F(dy), F(dw), ws);
        if (dbias is not null) SumPerChannelFast(F(dy), g.N, g.K, g.P * g.Q, F(dbias));
    }

    // ---- fast path ---------------------------------------------------------------------------------

    /// <summary>Whether dx can be computed as a forward convolution (stride 1, padding below the kernel size).</summary>
    private static bool DataGradientIsConvolution(in ConvolutionGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.PadH <= g.R - 1 && g.PadW <= g.S - 1;

    /// <summary>The geometry of dx = conv(dy, W'): K input channels of P x Q, C outputs of H x W.</summary>
    private static ConvolutionGeometry FlippedGeometry(in ConvolutionGeometry g) =>
        new(g.N, g.K, g.P, g.Q, g.C, g.R, g.S, 1, 1, g.R - 1 - g.PadH, g.S - 1 - g.PadW);

    /// <summary>Workspace floats rounded up to whole cache lines, so every part starts 64-byte aligned.</summary>
    private static long Align(long floats) => (floats + 15) / 16 * 16;

    /// <summary>Table and staging of one implicit-GEMM pass over <paramref name="g"/> with <paramref name="outputs"/> GEMM rows.</summary>
    private static long FastPassFloats(in ConvolutionGeometry g, int outputs)
    {
        long nb = ChunkImages(g), cols = nb * g.P * g.Q;
        return Align(Im2ColOperand.TableInts(g, (int)cols)) + (nb > 1 ? Align(outputs * cols) : 0);
    }

    private static long FastWorkspaceBytes(in ConvolutionGeometry g)
    {
        long floats = FastPassFloats(g, g.K); // forward (staging of y) and backward-filter (staging of dy)
        if (FilterGradientIsChannelsLast(g)) floats = Math.Max(floats, ChannelsLastFilterFloats(g));
        if (WinogradConvolution.Applies(g)) floats = Math.Max(floats, WinogradConvolution.WorkspaceFloats(g));
        if (WinogradConvolution.AppliesToFilterGradient(g)) floats = Math.Max(floats, WinogradConvolution.FilterGradientWorkspaceFloats(g));
        if (DataGradientIsConvolution(g) && WinogradConvolution.Applies(FlippedGeometry(g))) floats = Math.Max(floats, WinogradConvolution.WorkspaceFloats(FlippedGeometry(g)));
        if (SmallMapConvolution.Applies(g)) floats = Math.Max(floats, SmallMapConvolution.WorkspaceFloats(g));
        if (SmallMapConvolution.AppliesToFilterGradient(g)) floats = Math.Max(floats, SmallMapConvolution.FilterGradientWorkspaceFloats(g));
        if (DataGradientIsConvolution(g) && SmallMapConvolution.Applies(FlippedGeometry(g))) floats = Math.Max(floats, SmallMapConvolution.WorkspaceFloats(FlippedGeometry(g)));
        if (DataGradientIsConvolution(g))
            floats = Math.Max(floats, Align((long)g.K * g.C * g.R * g.S) + FastPassFloats(FlippedGeometry(g), g.C));
        else
            floats = Math.Max(floats, ReferenceWorkspaceBytes(g) / sizeof(float));
        return floats * sizeof(float);
    }

    /// <summary>y = conv(x, w) + bias with B packed straight from x; bit-identical to the reference forward.</summary>
    private static void FastConvolutionForward(in ConvolutionGeometry g, float* xp, float* wp, float* bp, float* yp, float* ws)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S, cols = nb * pq;
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        if (nb == 1 || pq >= BatchedMinColumns)
        {
            // One image per GEMM, all images in one parallel job; the bias is added by the GEMM's parts to their
            // finished blocks (bit-identical to adding it after, and the columns' grouping never changes an
            // element's arithmetic).
            var one = Im2ColOperand.Build(g, pq, (int*)ws, xp);
            Gemm.SgemmBatched(false, g.K, pq, crs, 1f, wp, crs, one, inImage, yp, pq, outImage, g.N, bp);
            return;
        }
        var im2col = Im2ColOperand.Build(g, cols, (int*)ws, xp);
        float* staging = ws + Align(Im2ColOperand.TableInts(g, cols));
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0), chunkCols = count * pq;
            var chunk = im2col.ForChunk(xp + n0 * inImage);
            Gemm.Sgemm(false, false, g.K, chunkCols, crs, 1f, wp, crs, chunk, 0f, staging, chunkCols);
            ScatterChunk(staging, yp + n0 * outImage, bp, g.K, count, pq);
        }
    }

    /// <summary>
    /// Whether the filter gradient packs im2col^T from a channels-last copy of the images
    /// (see <see cref="FastConvolutionBackwardFilter"/>): for maps of at least 256 outputs and 16 channels. Measured
    /// (`conv-profile`, 2 threads, alternating): 8-10% faster at 44 x 44 and 22 x 22; at 11 x 11 even, and at 5 x 5
    /// and 2 x 2 slower (the copy and the final permutation of dW weigh more against fewer columns).
    /// </summary>
    private static bool FilterGradientIsChannelsLast(in ConvolutionGeometry g) => g.C >= 16 && g.P * g.Q >= 256;

    /// <summary>Workspace floats of the channels-last filter gradient: table, staging, channels-last images, dW in (rs, c) order.</summary>
    private static long ChannelsLastFilterFloats(in ConvolutionGeometry g) =>
        FastPassFloats(g, g.K) + Align((long)g.N * g.C * g.H * g.W) + Align((long)g.K * g.C * g.R * g.S);

    /// <summary>
    /// Images [n, C, H*W] to channels-last rows: channel c of position p of image i at xt[i * imageStride + p *
    /// positionStride + c]; eight channels of one image per item. The plain form is [n, H*W, C].
    /// </summary>
    internal readonly struct ToChannelsLastBody(float* x, float* xt, int channels, int hw, long imageStride, long positionStride) : IRangeBody
    {
        public ToChannelsLastBody(float* x, float* xt, int channels, int hw) : this(x, xt, channels, hw, (long)hw * channels, channels) { }

        public void Run(int start, int end)
        {
            int groups = (channels + 7) / 8;
            for (int item = start; item < end; item++)
            {
                int i = item / groups, c0 = item % groups * 8, rows = Math.Min(8, channels - c0);
                float* src = x + ((long)i * channels + c0) * hw, dst = xt + i * imageStride + c0;
                GemmPacking.Transpose(src, hw, rows, hw, dst, positionStride);
            }
        }
    }

    /// <summary>dW [K, RS, C] (columns ordered rs, c) to [K, C, RS].</summary>
    private readonly struct FromKernelMajorBody(float* src, float* dst, int channels, int rs) : IRangeBody
    {
        public void Run(int k0, int k1)
        {
            long crs = (long)channels * rs;
            for (int k = k0; k < k1; k++)
                for (int t = 0; t < rs; t++)
                    for (int c = 0; c < channels; c++) dst[k * crs + c * rs + t] = src[k * crs + t * channels + c];
        }
    }

    /// <summary>
    /// dW = sum over chunks of dy * im2col^T with im2col packed straight from the images; bit-identical to the
    /// reference. Where <see cref="FilterGradientIsChannelsLast"/>, B is packed from a channels-last copy of the images
    /// instead: each image is transposed once ([C, H*W] to [H*W, C], all images in one parallel pass) and every packed
    /// row is a run of channels, where the NCHW packer transposes each of the C * R * S im2col rows (R * S times the
    /// data); the product's columns then come out ordered (rs, c) into a scratch dW, permuted into [K, C, R, S] at the
    /// end. Either way every element's arithmetic is the reference's.
    /// </summary>
    private static void FastConvolutionBackwardFilter(in ConvolutionGeometry g, float* xp, float* dyp, float* dwp, float* ws)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, hw = g.H * g.W, rs = g.R * g.S, crs = g.C * rs, cols = nb * pq;
        float* staging = ws + Align(Im2ColOperand.TableInts(g, cols));
        long inImage = (long)g.C * hw, outImage = (long)g.K * pq;
        bool channelsLast = FilterGradientIsChannelsLast(g);
        float* images = xp, dst = dwp;
        Im2ColOperand operand;
        if (channelsLast)
        {
            images = ws + FastPassFloats(g, g.K);
            dst = images + Align(g.N * inImage);
            CpuParallel.For(g.N * ((g.C + 7) / 8), 8L * hw, new ToChannelsLastBody(xp, images, g.C, hw));
            operand = Im2ColOperand.BuildChannelsLast(g, cols, (int*)ws, images);
        }
        else operand = Im2ColOperand.Build(g, cols, (int*)ws, xp);
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0), chunkCols = count * pq;
            float* dyChunk;
            if (nb == 1) dyChunk = dyp + n0 * outImage;
            else
            {
                GatherChunk(dyp + n0 * outImage, staging, g.K, count, pq);
                dyChunk = staging;
            }
            Gemm.Sgemm(false, true, g.K, crs, chunkCols, 1f, dyChunk, chunkCols, operand.ForChunk(images + n0 * inImage),
                n0 == 0 ? 0f : 1f, dst, crs);
        }
        if (channelsLast) CpuParallel.For(g.K, crs, new FromKernelMajorBody(dst, dwp, g.C, rs));
    }

    /// <summary>wt[c, k, r, s] = w[k, c, R-1-r, S-1-s].</summary>
    private static void FlipWeights(in ConvolutionGeometry g, float* w, float* wt)
    {
        int rs = g.R * g.S;
        var geo = g;
        CpuParallel.For(g.C, (long)g.K * rs, new FlipWeightsBody(w, wt, rs, geo));
    }

    /// <summary>staging [K, count*PQ] -> y [count, K, PQ], adding the bias on the way (the reference's arithmetic).</summary>
    private static void ScatterChunk(float* staging, float* y, float* bias, int k, int count, int pq) =>
        CpuParallel.For(k, (long)count * pq, new ScatterBody(staging, y, bias, k, count, pq));

    private readonly struct ScatterBody(float* staging, float* y, float* bias, int k, int count, int pq) : IRangeBody
    {
        public void Run(int k0, int k1)
        {
            int cols = count * pq;
            for (int kk = k0; kk < k1; kk++)
                for (int i = 0; i < count; i++)
                    AddRow(staging + (long)kk * cols + (long)i * pq, y + ((long)i * k + kk) * pq, bias == null ? 0f : bias[kk], pq);
        }
    }

    /// <summary>dst[j] = src[j] + b.</summary>
    private static void AddRow(float* src, float* dst, float b, int count)
    {
        int j = 0;
        var vb = Vector256.Create(b);
        for (; j + 8 <= count; j += 8) Vector256.Store(Vector256.Load(src + j) + vb, dst + j);
        for (; j < count; j++) dst[j] = src[j] + b;
    }

    /// <summary>sums[k] = sum over n and spatial positions of t[n, k, :], in float: 8 lanes in a fixed order, then a fixed tree.</summary>
    private static void SumPerChannelFast(float* t, int n, int k, int spatial, float* sums)
    {
        CpuParallel.For(k, (long)n * spatial, new SumPerChannelFastBody(t, n, k, spatial, sums));
    }

    // ---- reference path ----------------------------------------------------------------------------

    private static long ReferenceWorkspaceBytes(in ConvolutionGeometry g)
    {
        long nb = ChunkImages(g), pq = (long)g.P * g.Q;
        long col = (long)g.C * g.R * g.S * nb * pq;
        long staging = nb > 1 ? g.K * nb * pq : 0; // [K, nb*PQ] GEMM output / gathered dy
        return (col + staging) * sizeof(float);
    }

    private void ReferenceConvolutionForward(in ConvolutionGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S;
        float* ws = Workspace(ReferenceWorkspaceBytes(g) / sizeof(float));
        float* col = ws, staging = ws + (long)crs * nb * pq;
        float* xp = F(x), wp = F(w), yp = F(y);
        float* bp = bias is null ? null : F(bias);
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0);
            int cols = count * pq;
            Im2Col(g, xp + n0 * inImage, count, col, cols);
            if (count == 1 && nb == 1)
            {
                Gemm.Sgemm(false, false, g.K, pq, crs, 1f, wp, crs, col, cols, 0f, yp + n0 * outImage, pq);
                if (bp != null) AddBias(yp + n0 * outImage, bp, g.K, pq);
                continue;
            }
            Gemm.Sgemm(false, false, g.K, cols, crs, 1f, wp, crs, col, cols, 0f, staging, cols);
            // staging [K, count, PQ] -> y [count, K, PQ], adding the bias on the way.
            for (int i = 0; i < count; i++)
                for (int k = 0; k < g.K; k++)
                {
                    float* src = staging + (long)k * cols + (long)i * pq;
                    float* dst = yp + (n0 + i) * outImage + (long)k * pq;
                    float b = bp == null ? 0f : bp[k];
                    for (int j = 0; j < pq; j++) dst[j] = src[j] + b;
                }
        }
    }

    private void ReferenceConvolutionBackwardData(in ConvolutionGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S;
        float* ws = Workspace(ReferenceWorkspaceBytes(g) / sizeof(float));
        float* col = ws, staging = ws + (long)crs * nb * pq;
        float* dyp = F(dy), wp = F(w), dxp = F(dx);
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0);
            int cols = count * pq;
            float* dyChunk;
            if (nb == 1) dyChunk = dyp + n0 * outImage;
            else
            {
                GatherChunk(dyp + n0 * outImage, staging, g.K, count, pq);
                dyChunk = staging;
            }
            // col = W^T [CRS, K] * dy [K, cols]
            Gemm.Sgemm(true, false, crs, cols, g.K, 1f, wp, crs, dyChunk, cols, 0f, col, cols);
            Col2Im(g, col, count, cols, dxp + n0 * inImage);
        }
    }

    private void ReferenceConvolutionBackwardFilter(in ConvolutionGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        int nb = ChunkImages(g);
        int pq = g.P * g.Q, crs = g.C * g.R * g.S;
        float* ws = Workspace(ReferenceWorkspaceBytes(g) / sizeof(float));
        float* col = ws, staging = ws + (long)crs * nb * pq;
        float* xp = F(x), dyp = F(dy), dwp = F(dw);
        long inImage = (long)g.C * g.H * g.W, outImage = (long)g.K * pq;
        for (int n0 = 0; n0 < g.N; n0 += nb)
        {
            int count = Math.Min(nb, g.N - n0);
            int cols = count * pq;
            Im2Col(g, xp + n0 * inImage, count, col, cols);
            float* dyChunk;
            if (nb == 1) dyChunk = dyp + n0 * outImage;
            else
            {
                GatherChunk(dyp + n0 * outImage, staging, g.K, count, pq);
                dyChunk = staging;
            }
            // dW [K, CRS] (+)= dy [K, cols] * col^T [cols, CRS]
            Gemm.Sgemm(false, true, g.K, crs, cols, 1f, dyChunk, cols, col, cols, n0 == 0 ? 0f : 1f, dwp, crs);
        }
        if (dbias is not null) SumPerChannel(dyp, g.N, g.K, pq, F(dbias));
    }

    /// <summary>col[(c*R + r)*S + s, i*PQ + p*Q + q] = x[i, c, p*sh - ph + r, q*sw - pw + s] (0 outside).</summary>
    private static void Im2Col(ConvolutionGeometry g, float* x, int count, float* col, int cols)
    {
        int rows = g.C * g.R * g.S;
        CpuParallel.For(rows, (long)cols, new Im2ColBody(g, x, count, col, cols));
    }

    /// <summary>The adjoint of <see cref="Im2Col"/>: dx = sum of col entries into their input positions.</summary>
    private static void Col2Im(ConvolutionGeometry g, float* col, int count, int cols, float* dx)
    {
        // Parallel over (image, channel): each owns its dx plane, so no two threads write the same value,
        // and the summation order is fixed.
        CpuParallel.For(count * g.C, (long)g.R * g.S * g.P * g.Q, new Col2ImBody(g, col, cols, dx));
    }

    /// <summary>[count, K, PQ] -> [K, count*PQ].</summary>
    private static void GatherChunk(float* src, float* dst, int k, int count, int pq) =>
        CpuParallel.For(k, (long)count * pq, new GatherBody(src, dst, k, count, pq));

    private readonly struct GatherBody(float* src, float* dst, int k, int count, int pq) : IRangeBody
    {
        public void Run(int k0, int k1)
        {
            for (int kk = k0; kk < k1; kk++)
                for (int i = 0; i < count; i++)
                    new ReadOnlySpan<float>(src + ((long)i * k + kk) * pq, pq)
                        .CopyTo(new Span<float>(dst + (long)kk * count * pq + (long)i * pq, pq));
        }
    }

    private static void AddBias(float* y, float* bias, int k, int pq)
    {
        for (int kk = 0; kk < k; kk++) AddRow(y + (long)kk * pq, y + (long)kk * pq, bias[kk], pq);
    }

    /// <summary>sums[k] = sum over n and spatial positions of t[n, k, :].</summary>
    private static void SumPerChannel(float* t, int n, int k, int spatial, float* sums)
    {
        CpuParallel.For(k, (long)n * spatial, new SumPerChannelBody(t, n, k, spatial, sums));
    }

    // ---- loop bodies (structs, so a parallel loop allocates nothing) ----------------------------------

    private readonly struct FlipWeightsBody(float* w, float* wt, int rs, ConvolutionGeometry geo) : IRangeBody
    {
        // A blocked transpose of rs-float kernels: a block of 16 k's reads 16 contiguous runs of this range's
        // channels and writes contiguous runs of 16 kernels, instead of one kernel per C * rs floats of w (a cache
        // line and often a page per kernel read; it cost about as much as a 5 x 5 layer's input-gradient product).
        public void Run(int c0, int c1)
        {
            const int KBlock = 16;
            var reverse = Vector256.Create(7, 6, 5, 4, 3, 2, 1, 0);
            for (int kb = 0; kb < geo.K; kb += KBlock)
            {
                int kEnd = Math.Min(geo.K, kb + KBlock);
                for (int c = c0; c < c1; c++)
                    for (int k = kb; k < kEnd; k++)
                    {
                        float* src = w + ((long)k * geo.C + c) * rs, dst = wt + ((long)c * geo.K + k) * rs;
                        if (rs == 9 && Avx2.IsSupported)
                        {
                            // dst[0..7] = src[8..1], dst[8] = src[0]
                            Vector256.Store(Avx2.PermuteVar8x32(Vector256.Load(src + 1), reverse), dst);
                            dst[8] = src[0];
                        }
                        else for (int t = 0; t < rs; t++) dst[t] = src[rs - 1 - t];
                    }
            }
        }
    }

    private readonly struct SumPerChannelFastBody(float* t, int n, int k, int spatial, float* sums) : IRangeBody
    {
        public void Run(int k0, int k1)
        {
            for (int kk = k0; kk < k1; kk++)
            {
                var acc = Vector256<float>.Zero;
                float tail = 0f;
                for (int i = 0; i < n; i++)
                {
                    float* row = t + ((long)i * k + kk) * spatial;
                    int j = 0;
                    for (; j + 8 <= spatial; j += 8) acc += Vector256.Load(row + j);
                    for (; j < spatial; j++) tail += row[j];
                }
                sums[kk] = Vector256.Sum(acc) + tail;
            }
        }
    }

    private readonly struct Im2ColBody(ConvolutionGeometry g, float* x, int count, float* col, int cols) : IRangeBody
    {
        public void Run(int r0, int r1)
        {
            for (int row = r0; row < r1; row++)
            {
                int s = row % g.S, r = row / g.S % g.R, c = row / (g.R * g.S);
                float* dstRow = col + (long)row * cols;
                for (int i = 0; i < count; i++)
                {
                    float* src = x + ((long)i * g.C + c) * g.H * g.W;
                    float* dst = dstRow + (long)i * g.P * g.Q;
                    for (int p = 0; p < g.P; p++)
                    {
                        int h = p * g.StrideH - g.PadH + r;
                        float* d = dst + p * g.Q;
                        if ((uint)h >= (uint)g.H) { new Span<float>(d, g.Q).Clear(); continue; }
                        float* srow = src + (long)h * g.W;
                        if (g.StrideW == 1)
                        {
                            // w = q - pw + s runs over a contiguous range; zero the edges, copy the middle.
                            int qStart = Math.Max(0, g.PadW - s), qEnd = Math.Min(g.Q, g.W + g.PadW - s);
                            for (int q = 0; q < qStart; q++) d[q] = 0f;
                            if (qEnd > qStart)
                                new ReadOnlySpan<float>(srow + qStart - g.PadW + s, qEnd - qStart).CopyTo(new Span<float>(d + qStart, qEnd - qStart));
                            for (int q = Math.Max(qEnd, qStart); q < g.Q; q++) d[q] = 0f;
                        }
                        else
                        {
                            for (int q = 0; q < g.Q; q++)
                            {
                                int w = q * g.StrideW - g.PadW + s;
                                d[q] = (uint)w < (uint)g.W ? srow[w] : 0f;
                            }
                        }
                    }
                }
            }
        }
    }

    private readonly struct Col2ImBody(ConvolutionGeometry g, float* col, int cols, float* dx) : IRangeBody
    {
        public void Run(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                int i = t / g.C, c = t % g.C;
                float* plane = dx + ((long)i * g.C + c) * g.H * g.W;
                new Span<float>(plane, g.H * g.W).Clear();
                for (int r = 0; r < g.R; r++)
                    for (int s = 0; s < g.S; s++)
                    {
                        float* src = col + ((long)(c * g.R + r) * g.S + s) * cols + (long)i * g.P * g.Q;
                        for (int p = 0; p < g.P; p++)
                        {
                            int h = p * g.StrideH - g.PadH + r;
                            if ((uint)h >= (uint)g.H) continue;
                            float* drow = plane + (long)h * g.W;
                            float* srow = src + p * g.Q;
                            for (int q = 0; q < g.Q; q++)
                            {
                                int w = q * g.StrideW - g.PadW + s;
                                if ((uint)w < (uint)g.W) drow[w] += srow[q];
                            }
                        }
                    }
            }
        }
    }

    private readonly struct SumPerChannelBody(float* t, int n, int k, int spatial, float* sums) : IRangeBody
    {
        public void Run(int k0, int k1)
        {
            for (int kk = k0; kk < k1; kk++)
            {
                double acc = 0;
                for (int i = 0; i < n; i++)
                {
                    float* row = t + ((long)i * k + kk) * spatial;
                    for (int j = 0; j < spatial; j++) acc += row[j];
                }
                sums[kk] = (float)acc;
            }
        }
    }
}
