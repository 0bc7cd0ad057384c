using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Backends.Cuda.Libraries;
using Dicc.Engine.Backends.Cuda.Interop;
using Dicc.Engine.Backends.Cuda.Runtime;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

// Convolutions: cuDNN with full float32 math (CUDNN_FMA_MATH, so no TF32) and deterministic algorithms, chosen
// once per geometry and cached; one workspace, grown while planning, serves every layer. The bias and its
// gradient are the engine's kernels (a per-channel add, and a sum in double like the CPU's).
public sealed partial class CudaBackend
{
    /// <summary>The cuDNN plan (descriptors and algorithms) of a geometry, made on first use and cached.</summary>
    internal CudnnConvolutionPlan PlanConvolution(in ConvolutionGeometry g)
    {
        if (_convolutionPlans.TryGetValue(g, out var plan)) return plan;
        plan = Dnn.PlanConvolution(g, _workspaceLimit, CudnnMathType.Fma, preferDeterministic: true);
        if (Options.ConvolutionSearch == ConvolutionSearch.Measure) Measure(plan);
        _convolutionPlans.Add(g, plan);
        return plan;
    }

    /// <summary>Times the algorithms on scratch buffers of the geometry's size (planning time; synchronises).</summary>
    private void Measure(CudnnConvolutionPlan plan)
    {
        var g = plan.Geometry;
        _stream.Synchronize();
        // Scratch outside the pool (it is freed at once, and the pool never returns memory to the device).
        CudaDeviceVariable<T> Scratch<T>(long count) where T : unmanaged
        {
            try { return _context.Allocate<T>(count); }
            catch (CudaException e) when (e.StatusCode == (int)CuResult.OutOfMemory)
            {
                var (free, total) = _context.MemoryInfo();
                throw new GpuOutOfMemoryException(_context.Device.ToString(), count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>(),
                    free, total, _pool.ReservedBytes, e);
            }
        }
        using var x = Scratch<float>(g.InputShape.ElementCount);
        using var w = Scratch<float>(g.WeightShape.ElementCount);
        using var y = Scratch<float>(g.OutputShape.ElementCount);
        using var dx = Scratch<float>(g.InputShape.ElementCount);
        using var dw = Scratch<float>(g.WeightShape.ElementCount);
        long bytes = Math.Max(_workspaceLimit, 1);
        using var workspace = Scratch<byte>(bytes);
        // Finite inputs: the timings of some algorithms depend on the data only through NaN paths, but avoid them.
        x.Memset(0);
        w.Memset(0);
        Dnn.MeasureAlgorithms(plan, x.DevicePointer, w.DevicePointer, y.DevicePointer, dx.DevicePointer, dw.DevicePointer,
            workspace.DevicePointer, bytes, preferDeterministic: true);
        _context.Synchronize();
    }

    /// <inheritdoc/>
    protected override long ConvolutionWorkspaceBytesCore(in ConvolutionGeometry g) => PlanConvolution(g).WorkspaceBytes;

    /// <summary>Grows the one convolution workspace to at least this size (planning time).</summary>
    public override void ReserveWorkspace(long sizeInBytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Scratch(_workspace, sizeInBytes);
    }

    private (DevicePointer Pointer, long Bytes) Workspace(long needed)
    {
        var pointer = Scratch(_workspace, needed); // a no-op when the layer reserved it while planning
        return (pointer, _workspace.Bytes);
    }

    /// <inheritdoc/>
    protected override void ConvolutionForwardCore(in ConvolutionGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        var plan = PlanConvolution(g);
        var (ws, bytes) = Workspace(plan.WorkspaceBytes);
        Dnn.ConvolutionForward(plan, P(x), P(w), DevicePointer.Null, P(y), ws, bytes);
        if (bias is not null) _kernels.Bias.AddChannelBias(_stream, P(y), P(bias), g.N, g.K, g.P * g.Q);
    }

    /// <inheritdoc/>
    protected override void ConvolutionBackwardDataCore(in ConvolutionGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        var plan = PlanConvolution(g);
        var (ws, bytes) = Workspace(plan.WorkspaceBytes);
        Dnn.ConvolutionBackwardData(plan, P(dy), P(w), P(dx), ws, bytes);
    }

    /// <inheritdoc/>
    protected override void ConvolutionBackwardFilterCore(in ConvolutionGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        var plan = PlanConvolution(g);
        var (ws, bytes) = Workspace(plan.WorkspaceBytes);
        Dnn.ConvolutionBackwardFilter(plan, P(x), P(dy), P(dw), DevicePointer.Null, ws, bytes);
        if (dbias is null) return;
        var scratch = Scratch(_biasScratch, BiasKernels.ChannelSumsWorkspaceBytes(g.N, g.K, g.P * g.Q));
        _kernels.Bias.ChannelSums(_stream, P(dy), P(dbias), g.N, g.K, g.P * g.Q, scratch);
    }
}
