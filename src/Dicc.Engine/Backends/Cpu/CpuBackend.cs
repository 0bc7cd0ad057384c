using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

/// <summary>Which implementation of its ops a <see cref="CpuBackend"/> runs.</summary>
public enum CpuPath
{
    /// <summary>
    /// The default: implicit-GEMM convolutions (no im2col buffer), BatchNorm statistics in float, vectorised
    /// pooling. Deterministic and bit-identical across thread counts, like the reference; where its arithmetic
    /// differs from the reference, tests bound the difference (tests/Dicc.Engine.Tests/Cpu).
    /// </summary>
    Fast,

    /// <summary>The original path: materialised im2col and col2im, double-precision BatchNorm statistics (the oracle).</summary>
    Reference,
}

/// <summary>
/// The reference backend: plain host memory, a cache-blocked SIMD GEMM on all cores, and straightforward
/// loops for everything else. Reductions use a fixed split and double accumulators, so results are
/// deterministic and are the oracle that GPU results are checked against.
/// </summary>
public sealed unsafe partial class CpuBackend : Backend
{
    private readonly GrowOnlyBuffer _workspace;
    private readonly List<CpuStorage> _owned = [];

    /// <param name="path">The fast path (default) or the reference path that tests check it against.</param>
    public CpuBackend(CpuPath path = CpuPath.Fast)
    {
        if (!Enum.IsDefined(path)) throw new ArgumentOutOfRangeException(nameof(path), path, "Unknown CPU path.");
        Path = path;
        _workspace = new GrowOnlyBuffer(this);
    }

    /// <summary>Which implementation of the ops this backend runs.</summary>
    public CpuPath Path { get; }

    /// <inheritdoc/>
    public override string Name => "cpu";

    /// <inheritdoc/>
    public override string Description =>
        $"CPU, {CpuParallel.Threads} threads, {Gemm.BestKernel} GEMM kernel{(Path == CpuPath.Reference ? ", reference path" : "")}";

    /// <inheritdoc/>
    public override Storage Allocate(long sizeInBytes)
    {
        var s = new CpuStorage(this, sizeInBytes);
        lock (_owned) _owned.Add(s);
        return s;
    }

    /// <inheritdoc/>
    public override void Synchronize() { }

    /// <inheritdoc/>
    public override void ReserveWorkspace(long sizeInBytes) => _workspace.Ensure(sizeInBytes);

    private float* Workspace(long floats) => (float*)((CpuStorage)_workspace.Ensure(floats * sizeof(float))).Pointer;

    /// <inheritdoc/>
    public override void Dispose()
    {
        lock (_owned)
        {
            foreach (var s in _owned) s.Dispose();
            _owned.Clear();
        }
        _workspace.Dispose();
        base.Dispose();
    }

    /// <summary>Pointer to a tensor's first element (host memory).</summary>
    internal static T* Ptr<T>(Tensor t) where T : unmanaged =>
        (T*)((byte*)((CpuStorage)t.Storage).Pointer + t.Offset * t.DType.SizeInBytes());

    private static float* F(Tensor t) => Ptr<float>(t);

    /// <summary>A span over a CPU tensor's elements (for tests and host-side code).</summary>
    public static Span<T> Span<T>(Tensor t) where T : unmanaged
    {
        if (t.Storage is not CpuStorage) throw new ArgumentException($"{t} is not in host memory.");
        t.RequireDType(DTypeExtensions.Of<T>());
        return new Span<T>(Ptr<T>(t), checked((int)t.ElementCount));
    }

    // ---- memory -----------------------------------------------------------------------------------

    /// <inheritdoc/>
    protected override void CopyInCore(Tensor dst, ReadOnlySpan<byte> src) =>
        src.CopyTo(new Span<byte>(BytePtr(dst), src.Length));

    /// <inheritdoc/>
    protected override void CopyOutCore(Tensor src, Span<byte> dst) =>
        new ReadOnlySpan<byte>(BytePtr(src), dst.Length).CopyTo(dst);

    /// <inheritdoc/>
    protected override void CopyCore(Tensor src, Tensor dst) =>
        Buffer.MemoryCopy(BytePtr(src), BytePtr(dst), ByteCount(dst), ByteCount(src));

    /// <inheritdoc/>
    protected override void FillCore(Tensor dst, float value) =>
        new Span<float>(F(dst), checked((int)dst.ElementCount)).Fill(value);

    private static byte* BytePtr(Tensor t) => (byte*)((CpuStorage)t.Storage).Pointer + t.Offset * t.DType.SizeInBytes();
    private static long ByteCount(Tensor t) => t.ElementCount * t.DType.SizeInBytes();

    // ---- elementwise ------------------------------------------------------------------------------

    /// <inheritdoc/>
    protected override void ReluForwardCore(Tensor x, Tensor y)
    {
        float* xp = F(x), yp = F(y);
        int n = checked((int)x.ElementCount);
        CpuParallel.For(n, 1, new ReluForwardBody(xp, yp));
    }

    /// <inheritdoc/>
    protected override void ReluBackwardCore(Tensor y, Tensor dy, Tensor dx)
    {
        float* yp = F(y), gp = F(dy), dp = F(dx);
        int n = checked((int)y.ElementCount);
        CpuParallel.For(n, 1, new ReluBackwardBody(yp, gp, dp));
    }

    /// <inheritdoc/>
    protected override void DropoutForwardCore(Tensor x, Tensor y, Tensor mask, float p, ulong seed, ulong offset)
    {
        float* xp = F(x), yp = F(y), mp = F(mask);
        int n = checked((int)x.ElementCount);
        float scale = 1f / (1f - p);
        CpuParallel.For(n, 16, new DropoutBody(xp, yp, mp, p, scale, seed, offset));
    }

    /// <inheritdoc/>
    protected override void MultiplyCore(Tensor a, Tensor b, Tensor result)
    {
        float* ap = F(a), bp = F(b), rp = F(result);
        int n = checked((int)a.ElementCount);
        CpuParallel.For(n, 1, new MultiplyBody(ap, bp, rp));
    }

    // ---- optimiser --------------------------------------------------------------------------------

    /// <inheritdoc/>
    protected override void SgdStepCore(Tensor weights, Tensor grads, Tensor momentum, float learningRate,
        float momentumFactor, float weightDecay, bool nesterov)
    {
        float* w = F(weights), g = F(grads), v = F(momentum);
        int n = checked((int)weights.ElementCount);
        CpuParallel.For(n, 4, new SgdBody(w, g, v, learningRate, momentumFactor, weightDecay, nesterov));
    }

    // ---- loop bodies (structs, so a parallel loop allocates nothing) ----------------------------------

    private readonly struct ReluForwardBody(float* xp, float* yp) : IRangeBody
    {
        public void Run(int s, int e)
        {
            int i = s;
            var zero = Vector256<float>.Zero;
            // x < 0 ? 0 : x lets NaN through, as PyTorch does, in the vector loop and the tail alike.
            for (; i + 8 <= e; i += 8)
            {
                var v = Vector256.Load(xp + i);
                Vector256.Store(Vector256.ConditionalSelect(Vector256.LessThan(v, zero), zero, v), yp + i);
            }
            for (; i < e; i++) yp[i] = xp[i] < 0f ? 0f : xp[i];
        }
    }

    private readonly struct ReluBackwardBody(float* yp, float* gp, float* dp) : IRangeBody
    {
        public void Run(int s, int e)
        {
            int i = s;
            var zero = Vector256<float>.Zero;
            for (; i + 8 <= e; i += 8)
            {
                var mask = Vector256.GreaterThan(Vector256.Load(yp + i), zero);
                Vector256.Store(Vector256.BitwiseAnd(Vector256.Load(gp + i), mask), dp + i);
            }
            for (; i < e; i++) dp[i] = yp[i] > 0f ? gp[i] : 0f;
        }
    }

    private readonly struct DropoutBody(float* xp, float* yp, float* mp, float p, float scale, ulong seed, ulong offset) : IRangeBody
    {
        // One Philox block gives the words of four consecutive elements (the same words Philox.Word would).
        public void Run(int s, int e)
        {
            int i = s;
            for (; i < e && ((offset + (ulong)i) & 3) != 0; i++) One(i, Philox.Word(seed, 0, offset + (ulong)i));
            for (; i + 4 <= e; i += 4)
            {
                var (w0, w1, w2, w3) = Philox.Block(seed, 0, (offset + (ulong)i) >> 2);
                One(i, w0); One(i + 1, w1); One(i + 2, w2); One(i + 3, w3);
            }
            for (; i < e; i++) One(i, Philox.Word(seed, 0, offset + (ulong)i));
        }

        private void One(int i, uint word)
        {
            float m = Philox.ToUniform(word) >= p ? scale : 0f;
            mp[i] = m;
            yp[i] = xp[i] * m;
        }
    }

    private readonly struct MultiplyBody(float* ap, float* bp, float* rp) : IRangeBody
    {
        public void Run(int s, int e)
        {
            int i = s;
            for (; i + 8 <= e; i += 8) Vector256.Store(Vector256.Load(ap + i) * Vector256.Load(bp + i), rp + i);
            for (; i < e; i++) rp[i] = ap[i] * bp[i];
        }
    }

    private readonly struct SgdBody(float* w, float* g, float* v, float learningRate, float momentumFactor, float weightDecay, bool nesterov) : IRangeBody
    {
        public void Run(int s, int e)
        {
            int i = s;
            // The same operations as the scalar loop (no fused multiply-adds), so both give the same bits.
            var wd = Vector256.Create(weightDecay);
            var mu = Vector256.Create(momentumFactor);
            var lr = Vector256.Create(learningRate);
            for (; i + 8 <= e; i += 8)
            {
                var wi = Vector256.Load(w + i);
                var gi = Vector256.Load(g + i) + wd * wi;
                var vi = mu * Vector256.Load(v + i) + gi;
                Vector256.Store(vi, v + i);
                Vector256.Store(wi - lr * (nesterov ? gi + mu * vi : vi), w + i);
            }
            for (; i < e; i++)
            {
                float gi = g[i] + weightDecay * w[i];
                float vi = momentumFactor * v[i] + gi;
                v[i] = vi;
                w[i] -= learningRate * (nesterov ? gi + momentumFactor * vi : vi);
            }
        }
    }
}
