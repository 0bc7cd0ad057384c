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
/// The table holds, for each kernel position rs = r * S + s and column j, the offset of the value from
/// <see cref="X"/> + c * <see cref="PlaneStride"/> (computed as if no padding applied) and whether it lies inside
/// the image. Eight consecutive columns whose offsets are consecutive (every column of a stride-1 "same"
/// convolution within one image) are read with one masked load; others are gathered.
/// </remarks>
internal readonly unsafe struct Im2ColOperand(float* x, long planeStride, int kernelArea, int columns, int* offsets, int* valid)
{
    /// <summary>Channel 0 of the chunk's first image.</summary>
    public readonly float* X = x;

    /// <summary>Floats from one channel plane to the next (H * W).</summary>
    public readonly long PlaneStride = planeStride;

    /// <summary>R * S: im2col rows per channel.</summary>
    public readonly int KernelArea = kernelArea;

    /// <summary>Columns of the table (those of a full chunk; a last, smaller chunk uses a prefix).</summary>
    public readonly int Columns = columns;

    /// <summary>[R*S, Columns] offsets from X + c * PlaneStride.</summary>
    public readonly int* Offsets = offsets;

    /// <summary>[R*S, Columns]: -1 (all bits set) inside the image, 0 in the padding.</summary>
    public readonly int* Valid = valid;

    /// <summary>The same chunk layout for images starting at <paramref name="x"/> (another chunk).</summary>
    public Im2ColOperand ForChunk(float* x) => new(x, PlaneStride, KernelArea, Columns, Offsets, Valid);

    /// <summary>Ints the table of <paramref name="columns"/> columns takes (offsets and validity).</summary>
    public static long TableInts(in ConvolutionGeometry g, int columns) => 2L * g.R * g.S * columns;

    /// <summary>Fills the table for a chunk of <paramref name="columns"/> columns (whole images) in <paramref name="table"/>.</summary>
    public static Im2ColOperand Build(in ConvolutionGeometry g, int columns, int* table, float* x)
    {
        int rsCount = g.R * g.S, pq = g.P * g.Q;
        long image = (long)g.C * g.H * g.W;
        int* offsets = table, valid = table + (long)rsCount * columns;
        for (int j = 0; j < columns; j++)
        {
            int i = j / pq, o = j - i * pq, p = o / g.Q, q = o - p * g.Q;
            for (int r = 0; r < g.R; r++)
            {
                int h = p * g.StrideH - g.PadH + r;
                for (int s = 0; s < g.S; s++)
                {
                    int w = q * g.StrideW - g.PadW + s;
                    long at = (long)(r * g.S + s) * columns + j;
                    offsets[at] = checked((int)(i * image + (long)h * g.W + w));
                    valid[at] = (uint)h < (uint)g.H && (uint)w < (uint)g.W ? -1 : 0;
                }
            }
        }
        return new Im2ColOperand(x, g.H * g.W, rsCount, columns, offsets, valid);
    }

    /// <summary>Element (row, column) of the operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float At(int row, int column)
    {
        int c = row / KernelArea;
        long at = (long)(row - c * KernelArea) * Columns + column;
        return Valid[at] != 0 ? X[c * PlaneStride + Offsets[at]] : 0f;
    }

    /// <summary>
    /// Columns [j, j + 16) of one im2col row (AVX-512): one masked load where the offsets run on (every column
    /// of a stride-1 "same" convolution within one image), else one masked load per run of consecutive offsets.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(float* plane, int* offsets, int* valid, int j)
    {
        var index = Vector512.Load(offsets + j);
        var mask = Vector512.Load(valid + j);
        int first = offsets[j];
        var runs = Vector512.Equals(index, Vector512.Create(first) + Vector512<int>.Indices);
        if (runs == Vector512<int>.AllBitsSet) return Avx512F.MaskLoad(plane + first, mask.AsSingle(), Vector512<float>.Zero);
        return LoadRuns(plane, index, mask, runs, first);
    }

    /// <summary>The lanes of <see cref="Load16"/> that span images (or a strided geometry), run by run.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<float> LoadRuns(float* plane, Vector512<int> index, Vector512<int> mask, Vector512<int> runs, int first)
    {
        var result = Vector512<float>.Zero;
        var pending = Vector512<int>.AllBitsSet;
        int lane = 0;
        while (true)
        {
            // Lanes whose offset continues lane `lane`'s run load from one base address.
            result = Avx512F.MaskLoad(plane + first - lane, (runs & pending & mask).AsSingle(), result);
            pending &= ~runs;
            ulong left = pending.ExtractMostSignificantBits();
            if (left == 0) return result;
            lane = System.Numerics.BitOperations.TrailingZeroCount(left);
            first = index.GetElement(lane);
            runs = Vector512.Equals(index, Vector512.Create(first - lane) + Vector512<int>.Indices);
        }
    }

    /// <summary>Columns [j, j + 8) of one row (AVX2): a masked load where the offsets run on, else a gather.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(float* plane, int* offsets, int* valid, int j)
    {
        var index = Avx.LoadVector256(offsets + j);
        var mask = Avx.LoadVector256(valid + j).AsSingle();
        int first = offsets[j];
        if (Vector256.EqualsAll(index, Vector256.Create(first) + Vector256<int>.Indices))
            return Avx.MaskLoad(plane + first, mask);
        return Avx2.GatherMaskVector256(Vector256<float>.Zero, plane, index, mask, 4);
    }

    /// <summary>dst[u] = row[j + u] for u in [0, count): columns of one im2col row, vectorised where the CPU allows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyRow(int row, int j, int count, float* dst)
    {
        int c = row / KernelArea;
        long at = (long)(row - c * KernelArea) * Columns;
        float* plane = X + c * PlaneStride;
        int* offsets = Offsets + at, valid = Valid + at;
        int u = 0;
        if (Avx512F.IsSupported)
            for (; u + 16 <= count; u += 16) Vector512.Store(Load16(plane, offsets, valid, j + u), dst + u);
        else if (Avx2.IsSupported)
            for (; u + 8 <= count; u += 8) Vector256.Store(Load8(plane, offsets, valid, j + u), dst + u);
        for (; u < count; u++) dst[u] = valid[j + u] != 0 ? plane[offsets[j + u]] : 0f;
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
        long sliver = GemmPacking.SliverStride(kc, nr);
        int full = nc / nr, rest = nc - full * nr;
        for (int q = 0; q < kc; q++)
        {
            float* d = dst + (long)q * nr;
            for (int t = 0; t < full; t++, d += sliver) o.CopyRow(pc + q, jc + t * nr, nr, d);
            if (rest > 0)
            {
                o.CopyRow(pc + q, jc + full * nr, rest, d);
                new Span<float>(d + rest, nr - rest).Clear();
            }
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
}
