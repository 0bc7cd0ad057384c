using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>
/// The im2col matrix of a chunk of images as a GEMM operand that is never written out: element
/// (row = (c * R + r) * S + s, column j) is x[i, c, p*sh - ph + r, q*sw - pw + s] for j = i*P*Q + p*Q + q, or 0
/// in the padding. The GEMM packs its B slivers straight from the images through a per-chunk table, so the
/// shallow layers no longer stream a 9x copy of their input through memory (docs/benchmarks.md).
/// </summary>
/// <remarks>
/// The table (built once per convolution call) holds, per column j, the offset of (r, s) = (0, 0)'s value from
/// <see cref="X"/> + c * <see cref="PlaneStride"/> (as if no padding applied) and how many columns from j on
/// continue it one by one; per kernel position rs the shift r * W + s; and per (rs, j) whether the value lies
/// inside the image. In a stride-1 "same" convolution every column of an image continues the previous one,
/// so a row of im2col is read with one masked load per 16 (or 8) columns; where columns jump (from one image to
/// the next, or with a stride) each run of consecutive offsets gets its own masked load.
/// </remarks>
internal readonly unsafe struct Im2ColOperand
{
    /// <summary>Channel 0 of the chunk's first image.</summary>
    public readonly float* X;

    /// <summary>Floats from one channel plane to the next (H * W).</summary>
    public readonly long PlaneStride;

    /// <summary>R * S: im2col rows per channel.</summary>
    public readonly int KernelArea;

    /// <summary>Columns of the table (those of a full chunk; a last, smaller chunk uses a prefix).</summary>
    public readonly int Columns;

    /// <summary>[Columns]: offset of column j's (r, s) = (0, 0) value from X + c * PlaneStride.</summary>
    private readonly int* _base;

    /// <summary>[Columns]: columns from j on (j included) whose offsets step by exactly one.</summary>
    private readonly int* _run;

    /// <summary>[R*S]: r * W + s.</summary>
    private readonly int* _shift;

    /// <summary>[R*S, Columns]: -1 (all bits set) inside the image, 0 in the padding.</summary>
    private readonly int* _valid;

    /// <summary>
    /// 0 for images in NCHW. Otherwise the images are channels-last ([image, H*W, C], <see cref="X"/> the chunk's
    /// first pixel), offsets count pixels, and rows are ordered kernel position first: row = rs * C + c.
    /// </summary>
    public readonly int ChannelsLast;

    private Im2ColOperand(float* x, long planeStride, int kernelArea, int columns, int* table, int channelsLast = 0)
    {
        X = x;
        PlaneStride = planeStride;
        KernelArea = kernelArea;
        Columns = columns;
        ChannelsLast = channelsLast;
        _base = table;
        _run = table + columns;
        _shift = table + 2L * columns;
        _valid = _shift + kernelArea;
    }

    /// <summary>The same chunk layout for images starting at <paramref name="x"/> (another chunk).</summary>
    public Im2ColOperand ForChunk(float* x) => new(x, PlaneStride, KernelArea, Columns, _base, ChannelsLast);

    /// <summary>
    /// The operand over channels-last copies of the images ([image, H*W, C] at <paramref name="xt"/>), rows ordered
    /// (rs, c): element (rs * C + c, j) is im2col's element (c * R * S + rs, j). As the transposed B of a filter
    /// gradient it packs by copying runs of channels, where the NCHW operand transposes every im2col row.
    /// </summary>
    public static Im2ColOperand BuildChannelsLast(in ConvolutionGeometry g, int columns, int* table, float* xt)
    {
        var o = Build(g, columns, table, xt, (long)g.H * g.W);
        return new Im2ColOperand(xt, 1, o.KernelArea, columns, table, g.C);
    }

    /// <summary>Ints the table of <paramref name="columns"/> columns takes.</summary>
    public static long TableInts(in ConvolutionGeometry g, int columns) => (2L + g.R * g.S) * columns + g.R * g.S;

    /// <summary>Fills the table for a chunk of <paramref name="columns"/> columns (whole images) in <paramref name="table"/>.</summary>
    public static Im2ColOperand Build(in ConvolutionGeometry g, int columns, int* table, float* x) =>
        Build(g, columns, table, x, (long)g.C * g.H * g.W);

    private static Im2ColOperand Build(in ConvolutionGeometry g, int columns, int* table, float* x, long image)
    {
        int rsCount = g.R * g.S, pq = g.P * g.Q;
        var o = new Im2ColOperand(x, (long)g.H * g.W, rsCount, columns, table);
        for (int r = 0; r < g.R; r++)
            for (int s = 0; s < g.S; s++) o._shift[r * g.S + s] = r * g.W + s;
        for (int j = 0; j < columns; j++)
        {
            int i = j / pq, at = j - i * pq, p = at / g.Q, q = at - p * g.Q;
            int h0 = p * g.StrideH - g.PadH, w0 = q * g.StrideW - g.PadW;
            o._base[j] = checked((int)(i * image + (long)h0 * g.W + w0));
            for (int r = 0; r < g.R; r++)
                for (int s = 0; s < g.S; s++)
                    o._valid[(long)(r * g.S + s) * columns + j] = (uint)(h0 + r) < (uint)g.H && (uint)(w0 + s) < (uint)g.W ? -1 : 0;
        }
        for (int j = columns - 1; j >= 0; j--)
            o._run[j] = j + 1 < columns && o._base[j + 1] == o._base[j] + 1 ? o._run[j + 1] + 1 : 1;
        return o;
    }

    /// <summary>Columns from j on (j included) whose offsets step by exactly one.</summary>
    public int RunFrom(int j) => _run[j];

    /// <summary>Column j's offset of (r, s) = (0, 0) (in pixels for a channels-last operand).</summary>
    public int Base(int j) => _base[j];

    /// <summary>r * W + s of kernel position rs.</summary>
    public int Shift(int rs) => _shift[rs];

    /// <summary>The validity of kernel position rs for every column.</summary>
    public int* ValidRow(int rs) => _valid + (long)rs * Columns;

    /// <summary>dst[u] = im2col[row, j + u] for u in [0, count), vectorised where the CPU allows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyRow(int row, int j, int count, float* dst)
    {
        int c = row / KernelArea, rs = row - c * KernelArea;
        CopyRow(X + c * PlaneStride + _shift[rs], _valid + (long)rs * Columns, j, count, dst);
    }

    /// <summary>
    /// dst[u] = valid[j + u] ? plane[base[j + u]] : 0 for u in [0, count): one row of im2col, where plane already
    /// includes the row's channel and kernel shift.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyRow(float* plane, int* valid, int j, int count, float* dst)
    {
        int u = 0;
        if (Avx512F.IsSupported)
        {
            for (; u + 16 <= count; u += 16)
            {
                int at = j + u;
                if (_run[at] >= 16)
                    Vector512.Store(Avx512F.MaskLoad(plane + _base[at], Vector512.Load(valid + at).AsSingle(), Vector512<float>.Zero), dst + u);
                else
                    CopyRuns16(plane, valid, at, dst + u);
            }
        }
        else if (Avx2.IsSupported)
        {
            for (; u + 8 <= count; u += 8)
            {
                int at = j + u;
                if (_run[at] >= 8) Vector256.Store(Avx.MaskLoad(plane + _base[at], Vector256.Load(valid + at).AsSingle()), dst + u);
                else for (int t = 0; t < 8; t++) dst[u + t] = valid[at + t] != 0 ? plane[_base[at + t]] : 0f;
            }
        }
        for (; u < count; u++) dst[u] = valid[j + u] != 0 ? plane[_base[j + u]] : 0f;
    }

    /// <summary>Sixteen columns that span runs (images, or a strided geometry): one masked load per run.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CopyRuns16(float* plane, int* valid, int j, float* dst)
    {
        var result = Vector512<float>.Zero;
        var mask = Vector512.Load(valid + j);
        for (int lane = 0; lane < 16;)
        {
            int end = Math.Min(16, lane + _run[j + lane]);
            var lanes = Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(lane)) &
                        Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(end));
            // Lane t of this run reads plane[base[j + lane] + t - lane].
            result = Avx512F.MaskLoad(plane + _base[j + lane] - lane, (lanes & mask).AsSingle(), result);
            lane = end;
        }
        Vector512.Store(result, dst);
    }
}

/// <summary>Packing of an <see cref="Im2ColOperand"/> into the GEMM's B slivers (the layout of <see cref="GemmPacking"/>).</summary>
internal static unsafe class Im2ColPacking
{
    /// <summary>
    /// B = im2col (rows are the K dimension): rows [pc, pc + kc), columns [jc, jc + nc) into slivers of
    /// <paramref name="nr"/> columns, zero past nc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(in Im2ColOperand o, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        if (o.ChannelsLast > 0) throw new NotSupportedException("A channels-last im2col operand is only packed transposed (filter gradients).");
        long sliver = GemmPacking.SliverStride(kc, nr);
        int full = nc / nr, rest = nc - full * nr;
        int c = pc / o.KernelArea, rs = pc - c * o.KernelArea;
        if (Avx512F.IsSupported && nr % 16 == 0 && o.RunFrom(jc) >= nc)
        {
            PackOneRun(o, pc, kc, jc, nc, nr, dst);
            return;
        }
        for (int q = 0; q < kc; q++)
        {
            float* plane = o.X + c * o.PlaneStride + o.Shift(rs);
            int* valid = o.ValidRow(rs);
            float* d = dst + (long)q * nr;
            for (int t = 0; t < full; t++, d += sliver) o.CopyRow(plane, valid, jc + t * nr, nr, d);
            if (rest > 0)
            {
                o.CopyRow(plane, valid, jc + full * nr, rest, d);
                new Span<float>(d + rest, nr - rest).Clear();
            }
            if (++rs == o.KernelArea) { rs = 0; c++; }
        }
    }

    /// <summary>
    /// <see cref="Pack"/> where columns [jc, jc + nc) continue one another one by one (a stride-1 image's columns):
    /// each im2col row is one masked copy of consecutive floats, 16 at a time, with no per-column run checks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackOneRun(in Im2ColOperand o, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        long sliver = GemmPacking.SliverStride(kc, nr);
        int c = pc / o.KernelArea, rs = pc - c * o.KernelArea, slivers = (nc + nr - 1) / nr;
        for (int q = 0; q < kc; q++)
        {
            float* src = o.X + c * o.PlaneStride + o.Shift(rs) + o.Base(jc);
            int* valid = o.ValidRow(rs) + jc;
            float* d = dst + (long)q * nr;
            int u = 0;
            for (int t = 0; t < slivers; t++, d += sliver)
                for (int x = 0; x < nr; x += 16, u += 16)
                {
                    if (u + 16 <= nc)
                    {
                        Vector512.Store(Avx512F.MaskLoad(src + u, Vector512.Load(valid + u).AsSingle(), Vector512<float>.Zero), d + x);
                        continue;
                    }
                    // Past nc: zeros (and no reads past the table's columns).
                    var inside = LaneMasks.First512(nc - u);
                    var mask = Avx512F.MaskLoad((float*)(valid + u), inside, Vector512<float>.Zero);
                    Vector512.Store(Avx512F.MaskLoad(src + u, mask, Vector512<float>.Zero), d + x);
                }
            if (++rs == o.KernelArea) { rs = 0; c++; }
        }
    }

    /// <summary>
    /// B = im2col^T (columns of im2col are the K dimension): op(B) rows [pc, pc + kc) (im2col columns) and
    /// columns [jc, jc + nc) (im2col rows) into slivers of <paramref name="nr"/>, zero past nc. A sliver's
    /// im2col rows are first copied side by side into an L1-sized block, then transposed 8 x 8 at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackTransposed(in Im2ColOperand o, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        if (o.ChannelsLast > 0)
        {
            PackTransposedChannelsLast(o, pc, kc, jc, nc, nr, dst);
            return;
        }
        long sliver = GemmPacking.SliverStride(kc, nr);
        int ld = (kc + 15) & ~15;
        float* block = stackalloc float[nr * ld];
        for (int t = 0; t < nc; t += nr, dst += sliver)
        {
            int width = Math.Min(nr, nc - t);
            for (int u = 0; u < width; u++) o.CopyRow(jc + t + u, pc, kc, block + u * ld);
            for (int u = width; u < nr; u++) new Span<float>(block + u * ld, kc).Clear();
            GemmPacking.Transpose(block, ld, nr, kc, dst, nr);
        }
    }

    /// <summary>
    /// <see cref="PackTransposed"/> for a channels-last operand: packed row q of a sliver is, for each run of its
    /// columns within one kernel position rs, a run of consecutive channels of pixel base[j] + shift[rs] (or zeros
    /// in the padding): plain copies, no transpose.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTransposedChannelsLast(in Im2ColOperand o, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        long sliver = GemmPacking.SliverStride(kc, nr);
        int channels = o.ChannelsLast;
        for (int t = 0; t < nc; t += nr, dst += sliver)
        {
            int width = Math.Min(nr, nc - t);
            for (int u = 0; u < width;)
            {
                int n = jc + t + u, rs = n / channels, c = n - rs * channels;
                int run = Math.Min(width - u, channels - c);
                int* valid = o.ValidRow(rs);
                float* src = o.X + (long)o.Shift(rs) * channels + c;
                for (int q = 0; q < kc; q++)
                {
                    int j = pc + q;
                    float* d = dst + (long)q * nr + u;
                    if (valid[j] != 0) CopyFloats(src + (long)o.Base(j) * channels, d, run);
                    else new Span<float>(d, run).Clear();
                }
                u += run;
            }
            if (width < nr)
                for (int q = 0; q < kc; q++) new Span<float>(dst + (long)q * nr + width, nr - width).Clear();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyFloats(float* src, float* dst, int count)
    {
        int x = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; x + 16 <= count; x += 16) Vector512.Store(Vector512.Load(src + x), dst + x);
        for (; x + 8 <= count; x += 8) Vector256.Store(Vector256.Load(src + x), dst + x);
        for (; x < count; x++) dst[x] = src[x];
    }
}
