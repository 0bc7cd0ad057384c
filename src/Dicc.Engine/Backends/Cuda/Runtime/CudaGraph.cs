using Dicc.Engine.Backends.Cuda.Interop;
using static Dicc.Engine.Backends.Cuda.Runtime.CudaCheck;

namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>
/// Work recorded by stream capture (<see cref="CudaStream.BeginCapture"/>), instantiated once and replayed with
/// a single launch: the kernels, copies and library calls run with their captured arguments and pointers,
/// so a training step captured into a graph must keep its buffers where they were.
/// </summary>
public sealed class CudaGraph : CudaResource
{
    private nint _graph, _exec;

    internal CudaGraph(CudaContext context, nint graph) : base(context)
    {
        _graph = graph;
        try
        {
            ThrowIfFailed(CudaDriver.cuGraphInstantiateWithFlags(out _exec, graph, 0));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Replays the recorded work on <paramref name="stream"/>.</summary>
    public void Launch(CudaStream stream)
    {
        ThrowIfDisposed();
        Context.Bind();
        ThrowIfFailed(CudaDriver.cuGraphLaunch(_exec, stream.Handle));
    }

    internal override int DisposalRank => 0;

    private protected override void Release()
    {
        if (_exec != 0) CudaDriver.cuGraphExecDestroy(_exec);
        if (_graph != 0) CudaDriver.cuGraphDestroy(_graph);
        _exec = _graph = 0;
    }
}
