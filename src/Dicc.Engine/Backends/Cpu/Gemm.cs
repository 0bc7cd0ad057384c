using System.Runtime.CompilerServices;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>Which micro-kernel family <see cref="Gemm"/> runs (the best supported one unless a test asks).</summary>
internal enum GemmKernelKind
{
    Scalar,
    Avx2,
    Avx512,
}

/// <summary>
/// Single-precision GEMM on row-major matrices: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C,
/// where op(A) = A or A^T (A stored [k,m] when transposed) and likewise for B. Leading dimensions are
/// row strides in elements. beta = 0 ignores whatever C held (NaN included); alpha = 0 or k = 0 reads
/// neither A nor B.
/// </summary>
/// <remarks>
/// The structure is the BLIS one: for each NC-wide panel of B and KC-deep slice of K, B is packed into
/// NR-wide slivers, then each MC-tall block of A into MR-tall slivers, and a register-blocked MR x NR
/// micro-kernel runs over the packed data. Every element of C is computed by the same sequence of
/// operations (one FMA chain over each KC slice, then c = alpha * acc [+ beta * c] in one FMA), whichever
/// thread or tile (full or edge) produces it, so results are bit-identical for any thread count.
/// </remarks>
internal static unsafe class Gemm
{
    /// <summary>The kernel family this machine runs.</summary>
    public static GemmKernelKind BestKernel { get; } =
        Avx512Kernel.IsSupported ? GemmKernelKind.Avx512 :
        Avx2Kernel.IsSupported ? GemmKernelKind.Avx2 : GemmKernelKind.Scalar;

    /// <summary>Whether <paramref name="kind"/> can run on this machine.</summary>
    public static bool IsSupported(GemmKernelKind kind) => kind switch
    {
        GemmKernelKind.Avx512 => Avx512Kernel.IsSupported,
        GemmKernelKind.Avx2 => Avx2Kernel.IsSupported,
        _ => true,
    };

    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc) =>
        Sgemm(BestKernel, CpuParallel.Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>
    /// The same product with B an im2col matrix that is packed straight from the images (implicit GEMM):
    /// op(B) = im2col [k, n] when <paramref name="transB"/> is false, im2col^T [k, n] when true. The result is
    /// bit-identical to materialising im2col and calling <see cref="Sgemm(bool, bool, int, int, int, float, float*, int, float*, int, float, float*, int)"/>.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        in Im2ColOperand b, float beta, float* c, int ldc, float* rowBias = null) =>
        Sgemm(BestKernel, CpuParallel.Threads, transA, transB, m, n, k, alpha, a, lda, b, beta, c, ldc, rowBias);

    /// <summary>
    /// A batch of implicit-im2col products that share A: C_i = alpha * op(A) * im2col_i (+ rowBias) for i in
    /// [0, count), where im2col_i is <paramref name="b"/> over images <paramref name="xStride"/> floats on per item
    /// and C_i starts <paramref name="cStride"/> floats on. One parallel job runs every item (A packed once), with
    /// the same arithmetic per element as <paramref name="count"/> separate calls.
    /// </summary>
    public static void SgemmBatched(bool transA, int m, int n, int k, float alpha, float* a, int lda, in Im2ColOperand b,
        long xStride, float* c, int ldc, long cStride, int count, float* rowBias = null)
    {
        if (m == 0 || n == 0 || count <= 0) return;
        if (k == 0 || alpha == 0f)
        {
            for (int i = 0; i < count; i++) ScaleC(m, n, 0f, c + i * cStride, ldc);
            return;
        }
        if (lda < (transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda), lda, $"lda must be at least {(transA ? "m" : "k")} = {(transA ? m : k)}.");
        if (ldc < n) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"ldc must be at least n = {n}.");
        var p = new GemmProblem(transA, false, m, n, k, alpha, a, lda, null, 0, 0f, c, ldc) { Im2Col = b, RowBias = rowBias };
        switch (BestKernel)
        {
            case GemmKernelKind.Avx512: GemmDriver<Avx512Kernel>.RunBatched(p, count, xStride, cStride, CpuParallel.Threads); break;
            case GemmKernelKind.Avx2: GemmDriver<Avx2Kernel>.RunBatched(p, count, xStride, cStride, CpuParallel.Threads); break;
            default: GemmDriver<ScalarKernel>.RunBatched(p, count, xStride, cStride, CpuParallel.Threads); break;
        }
    }

    /// <summary>The implicit-im2col product with a chosen kernel family and thread cap (tests, benchmarks).</summary>
    public static void Sgemm(GemmKernelKind kind, int maxThreads, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, in Im2ColOperand b, float beta, float* c, int ldc, float* rowBias = null)
    {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        if (lda < (transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda), lda, $"lda must be at least {(transA ? "m" : "k")} = {(transA ? m : k)}.");
        if (ldc < n) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"ldc must be at least n = {n}.");
        Run(kind, new GemmProblem(transA, transB, m, n, k, alpha, a, lda, null, 0, beta, c, ldc) { Im2Col = b, RowBias = rowBias }, maxThreads);
    }

    /// <summary>The same product with a chosen kernel family and at most <paramref name="maxThreads"/> threads (tests, benchmarks).</summary>
    public static void Sgemm(GemmKernelKind kind, int maxThreads, bool transA, bool transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (m == 0 || n == 0) return;
        if (ldc < n) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"ldc must be at least n = {n}.");
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        if (lda < (transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda), lda, $"lda must be at least {(transA ? "m" : "k")} = {(transA ? m : k)}.");
        if (ldb < (transB ? k : n)) throw new ArgumentOutOfRangeException(nameof(ldb), ldb, $"ldb must be at least {(transB ? "k" : "n")} = {(transB ? k : n)}.");
        Run(kind, new GemmProblem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), maxThreads);
    }

    private static void Run(GemmKernelKind kind, in GemmProblem p, int maxThreads)
    {
        if (!IsSupported(kind)) throw new PlatformNotSupportedException($"The {kind} GEMM kernel needs instructions this CPU lacks.");
        if (kind == GemmKernelKind.Avx512 && SmallGemm.Handles(p))
        {
            SmallGemm.Run(p);
            return;
        }
        switch (kind)
        {
            case GemmKernelKind.Avx512: GemmDriver<Avx512Kernel>.Run(p, maxThreads); break;
            case GemmKernelKind.Avx2: GemmDriver<Avx2Kernel>.Run(p, maxThreads); break;
            default: GemmDriver<ScalarKernel>.Run(p, maxThreads); break;
        }
    }

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            float* ci = c + (long)i * ldc;
            if (beta == 0f) new Span<float>(ci, n).Clear();
            else for (int j = 0; j < n; j++) ci[j] *= beta;
        }
    }
}

/// <summary>One GEMM call's arguments (row-major, as in <see cref="Gemm.Sgemm(bool, bool, int, int, int, float, float*, int, float*, int, float, float*, int)"/>).</summary>
internal readonly unsafe struct GemmProblem(bool transA, bool transB, int m, int n, int k, float alpha,
    float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, bool transposedC = false)
{
    public readonly bool TransA = transA, TransB = transB;
    public readonly int M = m, N = n, K = k;
    public readonly float Alpha = alpha, Beta = beta;
    public readonly float* A = a, B = b, C = c;
    public readonly int Lda = lda, Ldb = ldb, Ldc = ldc;

    /// <summary>When set, element (i, j) of the product lives at C[j * Ldc + i] (see <see cref="Transposed"/>).</summary>
    public readonly bool TransposedC = transposedC;

    /// <summary>When its table is set, B is this implicit im2col operand (and <see cref="B"/> is unused).</summary>
    public Im2ColOperand Im2Col { get; init; }

    public bool ImplicitB => Im2Col.Columns > 0;

    /// <summary>When set, C[i, j] += RowBias[i] after the product (one rounding, as adding it afterwards would be).</summary>
    public float* RowBias { get; init; }

    /// <summary>The same product for another item of a batch: im2col <paramref name="xOffset"/> floats on, C <paramref name="cOffset"/>.</summary>
    public GemmProblem ForItem(long xOffset, long cOffset) =>
        new(TransA, TransB, M, N, K, Alpha, A, Lda, B, Ldb, Beta, C + cOffset, Ldc, TransposedC)
        {
            Im2Col = Im2Col.ForChunk(Im2Col.X + xOffset), RowBias = RowBias,
        };

    /// <summary>
    /// The same computation as C^T = op(B)^T * op(A)^T: op(B)^T is op'(A') with A' = B stored the other way
    /// round, and the product is written back transposed. Used when n is much thinner than a micro-tile.
    /// </summary>
    public GemmProblem Transposed() =>
        new(!TransB, !TransA, N, M, K, Alpha, B, Ldb, A, Lda, Beta, C, Ldc, !TransposedC);
}

/// <summary>An MR x NR register-blocked micro-kernel over packed slivers.</summary>
internal unsafe interface IGemmKernel
{
    static abstract int MR { get; }
    static abstract int NR { get; }
    static abstract bool IsSupported { get; }

    /// <summary>
    /// acc[i, j] = sum over p of a[p * MR + i] * b[p * NR + j] (one FMA chain per element, p ascending), then
    /// c[i * ldc + j] = alpha * acc (beta = 0, c not read) or fma(beta, c, alpha * acc).
    /// </summary>
    static abstract void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta);

    /// <summary>The same with B's rows <paramref name="bStep"/> floats apart (B read in place, not packed; any alignment).</summary>
    static abstract void RunStrided(int kc, float* a, float* b, nint bStep, float* c, nint ldc, float alpha, float beta);

    /// <summary>The kernel's final step for one element, used to merge edge tiles: fma(beta, c, scaled) or its unfused twin.</summary>
    static abstract float Combine(float beta, float c, float scaled);
}

/// <summary>The blocked GEMM for one micro-kernel: partitioning, packing loops and edge tiles.</summary>
internal static unsafe class GemmDriver<TKernel> where TKernel : struct, IGemmKernel
{
    private static int MR => TKernel.MR;
    private static int NR => TKernel.NR;

    // Cache blocking: an MC x KC block of A stays in L2 while NR-wide slivers of the KC x NC panel of B
    // stream past it; the MR x KC sliver of A and the KC x NR sliver of B being multiplied sit in L1.
    // Measured on Zen 5 (48 KiB L1, 1 MiB L2): KC from 256 to 512, MC from 96 to 384 and NC from 2048 to
    // 4096 are within noise of each other; NC = 1024 and below lose ~10% to repacking A.
    private const int KC = 384;
    private const int MC = 144;
    private const int NC = 2048;

    /// <summary>Below this many multiply-adds a call runs on the calling thread alone.</summary>
    private const long SerialWork = 1L << 20;

    /// <summary>Parts per thread for large products (measured on a busy 2-core machine: 4 beats 1).</summary>
    private const int PartsPerThread = 4;

    public static void Run(in GemmProblem problem, int maxThreads)
    {
        // A thin product (n well below NR) wastes most of each micro-tile on padding; computing C^T instead
        // puts the thin side on the MR side of the tile.
        // (Not with an implicit B: only B has an im2col packer.)
        var p = !problem.ImplicitB && PaddedArea(problem.N, problem.M) * 4 < PaddedArea(problem.M, problem.N) * 3
            ? problem.Transposed() : problem;
        int tilesM = (p.M + MR - 1) / MR, tilesN = (p.N + NR - 1) / NR;
        long work = (long)p.M * p.N * p.K;
        int threads = (int)Math.Clamp(work / SerialWork, 1, Math.Max(1, maxThreads));
        // A few parts per thread, claimed by whichever thread is free, so that one thread losing its core
        // to another process does not hold up the whole product. The split depends only on the shape and
        // maxThreads, and each part's arithmetic is fixed, so the result does not depend on who ran what.
        int parts = threads <= 1 ? 1 : (int)Math.Min(Math.Min(threads * PartsPerThread, work / SerialWork), (long)tilesM * tilesN);
        if (parts <= 1)
        {
            RunBlock(p, 0, p.M, 0, p.N);
            return;
        }
        // When one operand packs small, all parts share one packed copy of it (packed once, in parallel, before
        // the parts run) and split the other operand's blocks between them: nothing is packed twice.
        // (Otherwise, with a grid of blocks, an im2col B would be gathered from the images once per block row.)
        long aFloats = (long)RoundUp(p.M, MR) * p.K, bFloats = (long)RoundUp(p.N, NR) * p.K;
        bool canShareA = aFloats <= SharedPackFloats && tilesN >= parts, canShareB = bFloats <= SharedPackFloats && tilesM >= parts;
        if (canShareA && (aFloats <= bFloats || !canShareB))
        {
            RunShared(p, shareA: true, SharedParts(parts, threads, aFloats, tilesN), threads, tilesM, tilesN);
            return;
        }
        if (canShareB)
        {
            RunShared(p, shareA: false, SharedParts(parts, threads, bFloats, tilesM), threads, tilesM, tilesN);
            return;
        }
        // Split C into a tm x tn grid of tile-aligned blocks. A block of rows packs its own A and each block
        // of columns its own B, so prefer the grid that packs the least twice.
        int bestTm = 1, bestTn = parts;
        double bestCost = double.MaxValue;
        for (int tm = 1; tm <= parts; tm++)
        {
            if (parts % tm != 0) continue;
            int tn = parts / tm;
            if (tm > tilesM || tn > tilesN) continue;
            double cost = (double)tn * p.M + (double)tm * p.N;
            if (cost < bestCost) { bestCost = cost; bestTm = tm; bestTn = tn; }
        }
        if (bestCost == double.MaxValue)
        {
            // parts has no factorisation that fits the tile grid (e.g. a prime count on a thin matrix).
            if (tilesN >= tilesM) { bestTm = 1; bestTn = Math.Min(parts, tilesN); }
            else { bestTm = Math.Min(parts, tilesM); bestTn = 1; }
        }
        var job = Jobs.Value!;
        job.Set(p, bestTm, bestTn, tilesM, tilesN, default);
        CpuWorkers.Run(job, bestTm * bestTn, threads);
    }

    /// <summary>
    /// Above this many floats (1 MiB, a Zen 5 core's L2) a shared packed operand comes from L3, and every part
    /// streams all of it past its own slice of the other operand: parts then cost shared-operand traffic, and
    /// each thread runs one part. (Measured on the 2-core development machine, shapes alternating in one process:
    /// the deep layers' forward products, A = 4.7-9.4 MB, went from 247-251 to 305-310 GFLOP/s, the 1024 square
    /// from 291 to 321, conv3_x forward and filter gradients gained 3-14%, and no shape lost beyond noise.)
    /// </summary>
    private const long SharedStreamFloats = 1L << 18;

    /// <summary>Parts for a product whose <paramref name="sharedFloats"/> operand is shared and whose other side has <paramref name="tiles"/> tiles.</summary>
    private static int SharedParts(int parts, int threads, long sharedFloats, int tiles) =>
        sharedFloats > SharedStreamFloats ? Math.Min(parts, Math.Max(1, Math.Min(threads, tiles))) : parts;

    /// <summary>
    /// At most this many floats of packed A or B are shared by all parts (16 MiB). Reading a shared packed copy
    /// costs about what packing it from the source would, so sharing pays whenever it saves packing twice.
    /// </summary>
    private const long SharedPackFloats = 1L << 22;

    /// <summary>
    /// Runs 1 x parts (or parts x 1) blocks that share one packed copy of A (or B) in the caller's buffer: each
    /// block of it is packed by the first part that needs it while the others use it once it is ready, so the
    /// packing is spread over the threads without a job of its own.
    /// </summary>
    private static void RunShared(in GemmProblem p, bool shareA, int parts, int threads, int tilesM, int tilesN)
    {
        var plan = new BlockPlan(p, 0, p.M, 0, p.N);
        int blocks = (shareA ? plan.MBlocks : plan.NBlocks) * plan.KBlocks;
        long floats = blocks * (shareA ? plan.ABlockFloats : plan.BBlockFloats);
        var buffers = GemmBuffers.ForThisThread(0, 0, 0);
        float* shared = (float*)buffers.EnsureShared(floats);
        int* states = buffers.SharedStates(blocks * SharedPack.StateInts);
        var job = Jobs.Value!;
        job.Set(p, shareA ? 1 : parts, shareA ? parts : 1, tilesM, tilesN, new SharedPack(shared, states, shareA, plan));
        CpuWorkers.Run(job, parts, threads);
    }

    /// <summary>
    /// Runs <paramref name="count"/> products that differ only in their im2col images and C (see
    /// Gemm.SgemmBatched) as one job: each item is split into a few column blocks, A is packed once for all.
    /// </summary>
    public static void RunBatched(in GemmProblem p, int count, long xStride, long cStride, int maxThreads)
    {
        int tilesM = (p.M + MR - 1) / MR, tilesN = (p.N + NR - 1) / NR;
        long work = (long)p.M * p.N * p.K * count;
        int threads = (int)Math.Clamp(work / SerialWork, 1, Math.Max(1, maxThreads));
        if (threads <= 1 || (long)RoundUp(p.M, MR) * p.K > SharedPackFloats)
        {
            for (int i = 0; i < count; i++) Run(p.ForItem(i * xStride, i * cStride), maxThreads);
            return;
        }
        int splits = Math.Clamp((threads * PartsPerThread + count - 1) / count, 1, tilesN);
        var plan = new BlockPlan(p, 0, p.M, 0, p.N);
        int blocks = plan.MBlocks * plan.KBlocks;
        var buffers = GemmBuffers.ForThisThread(0, 0, 0);
        float* shared = (float*)buffers.EnsureShared(blocks * plan.ABlockFloats);
        int* states = buffers.SharedStates(blocks * SharedPack.StateInts);
        var job = BatchJobs.Value!;
        job.Set(p, count, xStride, cStride, splits, tilesN, new SharedPack(shared, states, true, plan));
        CpuWorkers.Run(job, count * splits, threads);
    }

    private sealed class BatchJob : ICpuJob
    {
        private GemmProblem _p;
        private int _count, _splits, _tilesN;
        private long _xStride, _cStride;
        private SharedPack _shared;

        public void Set(in GemmProblem p, int count, long xStride, long cStride, int splits, int tilesN, in SharedPack shared)
        {
            _p = p; _count = count; _xStride = xStride; _cStride = cStride; _splits = splits; _tilesN = tilesN; _shared = shared;
        }

        public void RunPart(int part)
        {
            int item = part / _splits, bj = part % _splits;
            int n0 = Math.Min(_p.N, (int)((long)_tilesN * bj / _splits) * NR);
            int n1 = Math.Min(_p.N, (int)((long)_tilesN * (bj + 1) / _splits) * NR);
            if (n1 > n0) RunBlock(_p.ForItem(item * _xStride, item * _cStride), 0, _p.M, n0, n1, _shared);
        }
    }

    private static readonly ThreadLocal<BatchJob> BatchJobs = new(() => new BatchJob());

    // One job object per calling thread, reused across calls, so a call allocates nothing.
    private static readonly ThreadLocal<BlockJob> Jobs = new(() => new BlockJob());

    private sealed class BlockJob : ICpuJob
    {
        private GemmProblem _p;
        private int _tm, _tn, _tilesM, _tilesN;
        private SharedPack _shared;

        public void Set(in GemmProblem p, int tm, int tn, int tilesM, int tilesN, in SharedPack shared)
        {
            _p = p; _tm = tm; _tn = tn; _tilesM = tilesM; _tilesN = tilesN; _shared = shared;
        }

        public void RunPart(int part)
        {
            int bi = part / _tn, bj = part % _tn;
            int m0 = Math.Min(_p.M, (int)((long)_tilesM * bi / _tm) * MR);
            int m1 = Math.Min(_p.M, (int)((long)_tilesM * (bi + 1) / _tm) * MR);
            int n0 = Math.Min(_p.N, (int)((long)_tilesN * bj / _tn) * NR);
            int n1 = Math.Min(_p.N, (int)((long)_tilesN * (bj + 1) / _tn) * NR);
            if (m1 > m0 && n1 > n0) RunBlock(_p, m0, m1, n0, n1, _shared);
        }
    }

    /// <summary>
    /// An operand shared by all parts (none when Data is null): block (row or column block b, K slice kb) at
    /// (b * KBlocks + kb) * block floats, with two counters per block, a cache line apart from the next block's:
    /// chunks of it claimed for packing, and chunks packed.
    /// </summary>
    private readonly struct SharedPack(float* data, int* states, bool isA, in BlockPlan plan)
    {
        public readonly float* Data = data;
        public readonly int* States = states;
        public readonly bool IsA = isA;
        public readonly BlockPlan Plan = plan;
        public bool HoldsA => Data != null && IsA;
        public bool HoldsB => Data != null && !IsA;

        /// <summary>Ints of <see cref="States"/> per block (one cache line).</summary>
        public const int StateInts = 16;

        /// <summary>
        /// Block <paramref name="slot"/>, packed in chunks of whole slivers by the threads that need it: each claims
        /// chunks until none are left, then waits for the others' chunks. (Parts that start together need the same
        /// blocks at the same moment; one packing while the other waited left a core idle for all the packing.)
        /// Each sliver is packed the same way by whoever packs it, so results do not depend on who did.
        /// </summary>
        public float* Acquire(in GemmProblem p, int slot, int start, int size, int pc, int kc)
        {
            int width = IsA ? MR : NR;
            float* block = Data + slot * (IsA ? Plan.ABlockFloats : Plan.BBlockFloats);
            int* claimed = States + slot * StateInts, packed = claimed + 1;
            int slivers = (size + width - 1) / width, perChunk = Math.Max(1, (slivers + 7) / 8);
            int chunks = (slivers + perChunk - 1) / perChunk;
            if (Volatile.Read(ref *packed) == chunks) return block;
            int c;
            while ((c = Interlocked.Increment(ref *claimed) - 1) < chunks)
            {
                int offset = c * perChunk * width, count = Math.Min(size - offset, perChunk * width);
                float* dst = block + c * perChunk * GemmPacking.SliverStride(kc, width);
                if (IsA) GemmPacking.PackA(p, start + offset, count, pc, kc, MR, dst);
                else GemmPacking.PackB(p, pc, kc, start + offset, count, NR, dst);
                Interlocked.Increment(ref *packed);
            }
            var spin = new SpinWait();
            while (Volatile.Read(ref *packed) != chunks) spin.SpinOnce(sleep1Threshold: -1);
            return block;
        }
    }

    /// <summary>The blocking of C[m0:m1, n0:n1]: equal K slices, MC-row blocks of A, NC-column panels of B.</summary>
    private readonly struct BlockPlan
    {
        public readonly int KBlocks, KcMax, Mc, Nc, MBlocks, NBlocks;
        public readonly long ABlockFloats, BBlockFloats;

        public BlockPlan(in GemmProblem p, int m0, int m1, int n0, int n1)
        {
            KBlocks = (p.K + KC - 1) / KC;
            KcMax = (p.K + KBlocks - 1) / KBlocks; // equal slices: no thin last slice
            // Block sizes are whole numbers of slivers (packing pads the last sliver of a block to full width).
            Mc = Math.Min(Math.Max(MR, MC / MR * MR), RoundUp(m1 - m0, MR));
            MBlocks = (m1 - m0 + Mc - 1) / Mc;
            // Columns are split into equal panels (whole slivers), so no thin last panel repacks A for little work.
            NBlocks = (n1 - n0 + NC - 1) / NC;
            Nc = RoundUp((n1 - n0 + NBlocks - 1) / NBlocks, NR);
            NBlocks = (n1 - n0 + Nc - 1) / Nc;
            ABlockFloats = Mc / MR * GemmPacking.SliverStride(KcMax, MR);
            BBlockFloats = Nc / NR * GemmPacking.SliverStride(KcMax, NR);
        }

        public (int Pc, int Kc) Slice(int k, int kb)
        {
            int pc = (int)((long)k * kb / KBlocks);
            return (pc, (int)((long)k * (kb + 1) / KBlocks) - pc);
        }
    }

    /// <summary>C[m0:m1, n0:n1] on the calling thread, packing what <paramref name="shared"/> does not hold.</summary>
    private static void RunBlock(in GemmProblem p, int m0, int m1, int n0, int n1, in SharedPack shared = default)
    {
        // With a shared operand the block spans all of its rows (or columns), so its plan is the shared one.
        var plan = shared.Data != null ? shared.Plan : new BlockPlan(p, m0, m1, n0, n1);
        int mc = plan.Mc, nc = plan.Nc;
        bool direct = !shared.HoldsB && ReadsBInPlace(p);
        var buffers = GemmBuffers.ForThisThread(shared.HoldsA ? 0 : plan.ABlockFloats, shared.HoldsB ? 0 : plan.BBlockFloats, MR * NR);
        float* aPack = buffers.A, bPack = buffers.B, tile = buffers.Tile;
        long rowStride = p.TransposedC ? 1 : p.Ldc, colStride = p.TransposedC ? p.Ldc : 1;

        for (int jc = n0; jc < n1; jc += nc)
        {
            int ncCur = Math.Min(nc, n1 - jc);
            for (int kb = 0; kb < plan.KBlocks; kb++)
            {
                var (pc, kc) = plan.Slice(p.K, kb);
                float beta = kb == 0 ? p.Beta : 1f;
                float* bDirect = null;
                if (shared.HoldsB) bPack = shared.Acquire(p, jc / nc * plan.KBlocks + kb, jc, ncCur, pc, kc);
                else if (direct)
                {
                    // Whole slivers are read from B itself; only a last partial one is packed (zero-padded), into
                    // the first sliver of the buffer.
                    bDirect = p.B + (long)pc * p.Ldb + jc;
                    int whole = ncCur / NR * NR;
                    if (whole < ncCur) GemmPacking.PackB(p, pc, kc, jc + whole, ncCur - whole, NR, bPack);
                }
                else GemmPacking.PackB(p, pc, kc, jc, ncCur, NR, bPack);
                for (int ic = m0; ic < m1; ic += mc)
                {
                    int mcCur = Math.Min(mc, m1 - ic);
                    if (shared.HoldsA) aPack = shared.Acquire(p, ic / mc * plan.KBlocks + kb, ic, mcCur, pc, kc);
                    else GemmPacking.PackA(p, ic, mcCur, pc, kc, MR, aPack);
                    MacroKernel(kc, mcCur, ncCur, aPack, bPack, bDirect, p.Ldb, p.C + ic * rowStride + jc * colStride, rowStride, colStride,
                        p.Alpha, beta, tile);
                    if (p.RowBias != null && kb == plan.KBlocks - 1)
                        AddRowBias(p.C + ic * rowStride + jc * colStride, rowStride, colStride, p.RowBias + ic, mcCur, ncCur);
                }
            }
        }
    }

    /// <summary>c[i, j] += bias[i] over a finished block, while it is still in cache.</summary>
    private static void AddRowBias(float* c, long rowStride, long colStride, float* bias, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            float* ci = c + i * rowStride;
            float b = bias[i];
            int j = 0;
            if (colStride == 1)
            {
                var vb = System.Runtime.Intrinsics.Vector256.Create(b);
                for (; j + 8 <= cols; j += 8)
                    System.Runtime.Intrinsics.Vector256.Store(System.Runtime.Intrinsics.Vector256.Load(ci + j) + vb, ci + j);
            }
            for (; j < cols; j++) ci[j * colStride] += b;
        }
    }

    /// <summary>
    /// The micro-tiles of one block: B from its packed slivers, or, when <paramref name="bDirect"/> is set, whole slivers
    /// read in place from B (rows <paramref name="ldb"/> apart) and a last partial one from the first packed sliver.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MacroKernel(int kc, int mc, int nc, float* aPack, float* bPack, float* bDirect, int ldb, float* c, long rowStride,
        long colStride, float alpha, float beta, float* tile)
    {
        long aStride = GemmPacking.SliverStride(kc, MR), bStride = GemmPacking.SliverStride(kc, NR);
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* bSliver = bDirect == null ? bPack + jr / NR * bStride : nr == NR ? bDirect + jr : bPack;
            nint bStep = bDirect != null && nr == NR ? ldb : NR;
            float* aSliver = aPack;
            for (int ir = 0; ir < mc; ir += MR, aSliver += aStride)
            {
                int mr = Math.Min(MR, mc - ir);
                float* cTile = c + ir * rowStride + jr * colStride;
                if (mr == MR && nr == NR && colStride == 1)
                {
                    TKernel.RunStrided(kc, aSliver, bSliver, bStep, cTile, (nint)rowStride, alpha, beta);
                    continue;
                }
                // Edge tile (or transposed C): the kernel writes alpha * acc into a scratch tile (same
                // arithmetic as a full tile), and the valid part is merged with the same final step.
                TKernel.RunStrided(kc, aSliver, bSliver, bStep, tile, NR, alpha, 0f);
                for (int i = 0; i < mr; i++)
                {
                    float* ci = cTile + i * rowStride, ti = tile + i * NR;
                    if (beta == 0f) for (int j = 0; j < nr; j++) ci[j * colStride] = ti[j];
                    else for (int j = 0; j < nr; j++) ci[j * colStride] = TKernel.Combine(beta, ci[j * colStride], ti[j]);
                }
            }
        }
    }

    /// <summary>Off with <c>DICC_GEMM_B_IN_PLACE=0</c> (or from a test): every B is packed, as before.</summary>
    internal static bool BInPlaceEnabled = Environment.GetEnvironmentVariable("DICC_GEMM_B_IN_PLACE") != "0";

    /// <summary>At most this many rows of C for B to be read in place (each element of B is then used at most this often).</summary>
    private const int InPlaceMaxRows = 64;

    /// <summary>
    /// Whether a block's B is read in place instead of packed: a plain, non-transposed B of a product with few rows, where
    /// packing costs a visible share (each packed element serves only M multiply-adds), and whose row stride spreads a
    /// sliver's rows over the L1 sets (a stride of a multiple of 4 KB puts them all in one set).
    /// </summary>
    internal static bool ReadsBInPlace(in GemmProblem p)
    {
        // (Measured with the AVX-512 kernel only.)
        if (!BInPlaceEnabled || typeof(TKernel) != typeof(Avx512Kernel) || p.ImplicitB || p.TransB || p.M > InPlaceMaxRows || p.N < NR) return false;
        // Distinct L1 sets (64 lines of 64 bytes) touched by the first 64 rows' first lines.
        ulong seen = 0;
        for (long r = 0; r < 64; r++) seen |= 1UL << (int)(r * p.Ldb * sizeof(float) / 64 % 64);
        return System.Numerics.BitOperations.PopCount(seen) >= 32;
    }

    private static long PaddedArea(int m, int n) => (long)RoundUp(m, MR) * RoundUp(n, NR);

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;
}

