using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/pooling.cu: max pooling and its gradient (first maximum in row-major window order, NaN wins; the CPU's bits).</summary>
internal sealed class PoolingKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "pooling.cu";

    private readonly CudaKernel _forward = resolve(ModuleFile, "maxpool_forward_f32");
    private readonly CudaKernel _backward = resolve(ModuleFile, "maxpool_backward_f32");

    public override IReadOnlyDictionary<string, int> BlockThreads { get; } = new Dictionary<string, int>
    {
        ["maxpool_forward_f32"] = 256, ["maxpool_backward_f32"] = 256,
    };

    /// <summary>y [N, C, P, Q] = max over each window of x [N, C, H, W] (first maximum, NaN wins, padding never).</summary>
    public void MaxPoolForward(CudaStream? stream, DevicePointer x, DevicePointer y, in PoolGeometry g) =>
        _forward.Launch(Elements(g.OutputShape.ElementCount), stream, x, y, PoolShape.Of(g));

    /// <summary>dx [N, C, H, W] = the gradients dy [N, C, P, Q] routed to each window's first maximum in x (summed where windows overlap).</summary>
    public void MaxPoolBackward(CudaStream? stream, DevicePointer x, DevicePointer dy, DevicePointer dx, in PoolGeometry g) =>
        _backward.Launch(Elements(g.InputShape.ElementCount), stream, x, dy, dx, PoolShape.Of(g));
}
