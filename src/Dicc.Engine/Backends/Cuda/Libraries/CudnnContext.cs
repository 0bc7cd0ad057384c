using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Libraries;

/// <summary>
/// The descriptors and algorithms of one convolution geometry, chosen while planning: heuristically
/// (cudnnGet*Algorithm_v7, preferring deterministic algorithms within the workspace limit) or by measuring
/// (<see cref="CudnnContext.MeasureAlgorithms"/>). <see cref="WorkspaceBytes"/> is what the three passes need.
/// </summary>
internal sealed class CudnnConvolutionPlan : IDisposable
{
    internal CudnnConvolutionPlan(ConvolutionGeometry geometry, CudnnMathType mathType, CudnnTensorDescriptor x, CudnnFilterDescriptor w,
        CudnnTensorDescriptor y, CudnnTensorDescriptor bias, CudnnConvolutionDescriptor convolution)
    {
        Geometry = geometry;
        MathType = mathType;
        (X, W, Y, Bias, Convolution) = (x, w, y, bias, convolution);
    }

    public ConvolutionGeometry Geometry { get; }

    /// <summary>The math the convolution descriptor allows (algorithms needing more are not chosen).</summary>
    public CudnnMathType MathType { get; }

    public CudnnTensorDescriptor X { get; }
    public CudnnFilterDescriptor W { get; }
    public CudnnTensorDescriptor Y { get; }
    public CudnnTensorDescriptor Bias { get; }
    public CudnnConvolutionDescriptor Convolution { get; }

    /// <summary>cudnnConvolutionFwdAlgo_t chosen.</summary>
    public int ForwardAlgorithm { get; internal set; }

    /// <summary>cudnnConvolutionBwdDataAlgo_t chosen.</summary>
    public int BackwardDataAlgorithm { get; internal set; }

    /// <summary>cudnnConvolutionBwdFilterAlgo_t chosen.</summary>
    public int BackwardFilterAlgorithm { get; internal set; }

    public long ForwardWorkspaceBytes { get; internal set; }
    public long BackwardDataWorkspaceBytes { get; internal set; }
    public long BackwardFilterWorkspaceBytes { get; internal set; }

    public long WorkspaceBytes => Math.Max(ForwardWorkspaceBytes, Math.Max(BackwardDataWorkspaceBytes, BackwardFilterWorkspaceBytes));

    /// <summary>Frees the descriptors now (the context frees them otherwise).</summary>
    public void Dispose()
    {
        Convolution.Dispose();
        Bias.Dispose();
        Y.Dispose();
        W.Dispose();
        X.Dispose();
    }

    public override string ToString() =>
        $"{Geometry}: fwd algo {ForwardAlgorithm} ({ForwardWorkspaceBytes} B), bwd-data algo {BackwardDataAlgorithm} ({BackwardDataWorkspaceBytes} B), " +
        $"bwd-filter algo {BackwardFilterAlgorithm} ({BackwardFilterWorkspaceBytes} B)";
}

/// <summary>
/// A cuDNN 9 handle bound to a stream, with the float32 NCHW convolutions of a VGG training step: forward,
/// backward-data and backward-filter (+ bias). Batch normalisation, pooling and ReLU are our own kernels
/// (docs/gpu.md says why). Plans (descriptors, algorithms) are made while planning; the operations allocate
/// nothing and do not synchronise. Workspaces are the caller's device memory.
/// </summary>
internal sealed unsafe class CudnnContext : CudaResource
{
    private nint _handle;
    private CudaStream _stream;

    public CudnnContext(CudaContext context, CudaStream? stream = null) : base(RequireCudnn(context))
    {
        context.Bind();
        try
        {
            ThrowIfFailed(Cudnn.cudnnCreate(out _handle));
            _stream = stream ?? context.Stream;
            ThrowIfFailed(Cudnn.cudnnSetStream(_handle, _stream.Handle));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static CudaContext RequireCudnn(CudaContext context)
    {
        CudaLibraries.Require(CudaLibrary.Cudnn);
        return context;
    }

    /// <summary>cuDNN's version as the library encodes it (major * 10000 + minor * 100 + patch for cuDNN 9), without a device.</summary>
    public static long Version
    {
        get
        {
            CudaLibraries.Require(CudaLibrary.Cudnn);
            return (long)Cudnn.cudnnGetVersion();
        }
    }

    /// <summary>"9.10.2" from 91002.</summary>
    public static string FormatVersion(long version) => $"{version / 10000}.{version % 10000 / 100}.{version % 100}";

    public nint Handle
    {
        get
        {
            ThrowIfDisposed();
            return _handle;
        }
    }

    public CudaStream Stream
    {
        get => _stream;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Context.Bind();
            ThrowIfFailed(Cudnn.cudnnSetStream(Handle, value.Handle));
            _stream = value;
        }
    }

    // ---- planning -----------------------------------------------------------------------------------

    public CudnnTensorDescriptor CreateTensorDescriptor(int n, int c, int h, int w) => new(Context, n, c, h, w);

    /// <summary>
    /// Descriptors and heuristic algorithms for a convolution; each algorithm is the first cuDNN ranks that
    /// fits <paramref name="workspaceLimitBytes"/>, deterministic ones first when <paramref name="preferDeterministic"/>.
    /// The default math is full float32 (<see cref="CudnnMathType.Fma"/>): cuDNN's own default may use TF32
    /// tensor cores on Ampere and later, which is faster and rounds inputs to 10 mantissa bits
    /// (<see cref="CudnnMathType.TensorOpAllowConversion"/> asks for that explicitly).
    /// </summary>
    public CudnnConvolutionPlan PlanConvolution(in ConvolutionGeometry g, long workspaceLimitBytes = 256L << 20,
        CudnnMathType mathType = CudnnMathType.Fma, bool preferDeterministic = true)
    {
        g.Validate();
        Context.Bind();
        var plan = new CudnnConvolutionPlan(g, mathType,
            new CudnnTensorDescriptor(Context, g.N, g.C, g.H, g.W),
            new CudnnFilterDescriptor(Context, g.K, g.C, g.R, g.S),
            new CudnnTensorDescriptor(Context, g.N, g.K, g.P, g.Q),
            new CudnnTensorDescriptor(Context, 1, g.K, 1, 1),
            new CudnnConvolutionDescriptor(Context, g.PadH, g.PadW, g.StrideH, g.StrideW, mathType));
        ThrowIfFailed(Cudnn.cudnnGetConvolution2dForwardOutputDim(plan.Convolution.Handle, plan.X.Handle, plan.W.Handle,
            out int n, out int k, out int p, out int q));
        if (n != g.N || k != g.K || p != g.P || q != g.Q)
            throw new InvalidOperationException($"cuDNN computes output [{n},{k},{p},{q}] for {g}, the engine {g.OutputShape}.");

        var perf = stackalloc CudnnConvolutionAlgoPerf[Cudnn.ForwardAlgorithmCount];
        ThrowIfFailed(Cudnn.cudnnGetConvolutionForwardAlgorithm_v7(Handle, plan.X.Handle, plan.W.Handle, plan.Convolution.Handle,
            plan.Y.Handle, Cudnn.ForwardAlgorithmCount, out int count, perf));
        (plan.ForwardAlgorithm, plan.ForwardWorkspaceBytes) = Choose(perf, count, workspaceLimitBytes, plan.MathType, preferDeterministic, "forward", g);
        ThrowIfFailed(Cudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(Handle, plan.W.Handle, plan.Y.Handle, plan.Convolution.Handle,
            plan.X.Handle, Cudnn.BackwardDataAlgorithmCount, out count, perf));
        (plan.BackwardDataAlgorithm, plan.BackwardDataWorkspaceBytes) = Choose(perf, count, workspaceLimitBytes, plan.MathType, preferDeterministic, "backward-data", g);
        ThrowIfFailed(Cudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(Handle, plan.X.Handle, plan.Y.Handle, plan.Convolution.Handle,
            plan.W.Handle, Cudnn.BackwardFilterAlgorithmCount, out count, perf));
        (plan.BackwardFilterAlgorithm, plan.BackwardFilterWorkspaceBytes) = Choose(perf, count, workspaceLimitBytes, plan.MathType, preferDeterministic, "backward-filter", g);
        RefreshWorkspaceSizes(plan);
        return plan;
    }

    /// <summary>
    /// Times every algorithm on real buffers (cudnnFind*AlgorithmEx) and keeps the fastest that fits the
    /// workspace (deterministic ones first when asked). Writes into y, dx and dw (scratch here). Synchronises.
    /// </summary>
    public void MeasureAlgorithms(CudnnConvolutionPlan plan, DevicePointer x, DevicePointer w, DevicePointer y,
        DevicePointer dx, DevicePointer dw, DevicePointer workspace, long workspaceBytes, bool preferDeterministic = true)
    {
        Context.Bind();
        var perf = stackalloc CudnnConvolutionAlgoPerf[Cudnn.ForwardAlgorithmCount];
        ThrowIfFailed(Cudnn.cudnnFindConvolutionForwardAlgorithmEx(Handle, plan.X.Handle, x.Address, plan.W.Handle, w.Address,
            plan.Convolution.Handle, plan.Y.Handle, y.Address, Cudnn.ForwardAlgorithmCount, out int count, perf, workspace.Address, (nuint)workspaceBytes));
        (plan.ForwardAlgorithm, _) = Choose(perf, count, workspaceBytes, plan.MathType, preferDeterministic, "forward", plan.Geometry);
        ThrowIfFailed(Cudnn.cudnnFindConvolutionBackwardDataAlgorithmEx(Handle, plan.W.Handle, w.Address, plan.Y.Handle, y.Address,
            plan.Convolution.Handle, plan.X.Handle, dx.Address, Cudnn.BackwardDataAlgorithmCount, out count, perf, workspace.Address, (nuint)workspaceBytes));
        (plan.BackwardDataAlgorithm, _) = Choose(perf, count, workspaceBytes, plan.MathType, preferDeterministic, "backward-data", plan.Geometry);
        ThrowIfFailed(Cudnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(Handle, plan.X.Handle, x.Address, plan.Y.Handle, y.Address,
            plan.Convolution.Handle, plan.W.Handle, dw.Address, Cudnn.BackwardFilterAlgorithmCount, out count, perf, workspace.Address, (nuint)workspaceBytes));
        (plan.BackwardFilterAlgorithm, _) = Choose(perf, count, workspaceBytes, plan.MathType, preferDeterministic, "backward-filter", plan.Geometry);
        RefreshWorkspaceSizes(plan);
    }

    private void RefreshWorkspaceSizes(CudnnConvolutionPlan plan)
    {
        ThrowIfFailed(Cudnn.cudnnGetConvolutionForwardWorkspaceSize(Handle, plan.X.Handle, plan.W.Handle, plan.Convolution.Handle,
            plan.Y.Handle, plan.ForwardAlgorithm, out nuint fwd));
        ThrowIfFailed(Cudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(Handle, plan.W.Handle, plan.Y.Handle, plan.Convolution.Handle,
            plan.X.Handle, plan.BackwardDataAlgorithm, out nuint bwdData));
        ThrowIfFailed(Cudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(Handle, plan.X.Handle, plan.Y.Handle, plan.Convolution.Handle,
            plan.W.Handle, plan.BackwardFilterAlgorithm, out nuint bwdFilter));
        plan.ForwardWorkspaceBytes = (long)fwd;
        plan.BackwardDataWorkspaceBytes = (long)bwdData;
        plan.BackwardFilterWorkspaceBytes = (long)bwdFilter;
    }

    /// <summary>
    /// The first usable algorithm in cuDNN's ranking that fits the workspace and the math type (full float32
    /// excludes tensor-op entries), deterministic ones first when asked.
    /// </summary>
    internal static (int Algorithm, long Workspace) Choose(CudnnConvolutionAlgoPerf* perf, int count, long workspaceLimit,
        CudnnMathType math, bool preferDeterministic, string pass, in ConvolutionGeometry g)
    {
        for (int round = preferDeterministic ? 0 : 1; round < 2; round++)
            for (int i = 0; i < count; i++)
            {
                var p = perf[i];
                if (p.Status != CudnnStatus.Success || (long)p.Memory > workspaceLimit) continue;
                if (math == CudnnMathType.Fma && p.MathType is not (CudnnMathType.Fma or CudnnMathType.Default)) continue;
                if (round == 0 && p.Determinism != CudnnDeterminism.Deterministic) continue;
                return (p.Algorithm, (long)p.Memory);
            }
        throw new InvalidOperationException(
            $"cuDNN offers no {pass} convolution algorithm for {g} with {math} math within a {workspaceLimit}-byte workspace ({count} candidates).");
    }

    // ---- convolution --------------------------------------------------------------------------------

    /// <summary>y = conv(x, w) (+ bias [K] when not null).</summary>
    public void ConvolutionForward(CudnnConvolutionPlan plan, DevicePointer x, DevicePointer w, DevicePointer bias, DevicePointer y,
        DevicePointer workspace, long workspaceBytes)
    {
        RequireWorkspace(plan.ForwardWorkspaceBytes, workspaceBytes);
        float one = 1f, zero = 0f;
        Context.Bind();
        ThrowIfFailed(Cudnn.cudnnConvolutionForward(Handle, &one, plan.X.Handle, x.Address, plan.W.Handle, w.Address,
            plan.Convolution.Handle, plan.ForwardAlgorithm, workspace.Address, (nuint)workspaceBytes, &zero, plan.Y.Handle, y.Address));
        if (!bias.IsNull)
            ThrowIfFailed(Cudnn.cudnnAddTensor(Handle, &one, plan.Bias.Handle, bias.Address, &one, plan.Y.Handle, y.Address));
    }

    /// <summary>dx = dL/dx from dy and w.</summary>
    public void ConvolutionBackwardData(CudnnConvolutionPlan plan, DevicePointer dy, DevicePointer w, DevicePointer dx,
        DevicePointer workspace, long workspaceBytes)
    {
        RequireWorkspace(plan.BackwardDataWorkspaceBytes, workspaceBytes);
        float one = 1f, zero = 0f;
        Context.Bind();
        ThrowIfFailed(Cudnn.cudnnConvolutionBackwardData(Handle, &one, plan.W.Handle, w.Address, plan.Y.Handle, dy.Address,
            plan.Convolution.Handle, plan.BackwardDataAlgorithm, workspace.Address, (nuint)workspaceBytes, &zero, plan.X.Handle, dx.Address));
    }

    /// <summary>dw = dL/dw (overwritten) and, when dbias is not null, dbias = sums of dy over N, P, Q.</summary>
    public void ConvolutionBackwardFilter(CudnnConvolutionPlan plan, DevicePointer x, DevicePointer dy, DevicePointer dw,
        DevicePointer dbias, DevicePointer workspace, long workspaceBytes)
    {
        RequireWorkspace(plan.BackwardFilterWorkspaceBytes, workspaceBytes);
        float one = 1f, zero = 0f;
        Context.Bind();
        ThrowIfFailed(Cudnn.cudnnConvolutionBackwardFilter(Handle, &one, plan.X.Handle, x.Address, plan.Y.Handle, dy.Address,
            plan.Convolution.Handle, plan.BackwardFilterAlgorithm, workspace.Address, (nuint)workspaceBytes, &zero, plan.W.Handle, dw.Address));
        if (!dbias.IsNull)
            ThrowIfFailed(Cudnn.cudnnConvolutionBackwardBias(Handle, &one, plan.Y.Handle, dy.Address, &zero, plan.Bias.Handle, dbias.Address));
    }

    private static void RequireWorkspace(long needed, long given)
    {
        if (given < needed) throw new ArgumentException($"The convolution needs a {needed}-byte workspace; {given} bytes were given.");
    }

    internal override int DisposalRank => 1;

    private protected override void Release()
    {
        if (_handle == 0) return;
        Cudnn.cudnnDestroy(_handle);
        _handle = 0;
    }
}
