using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/optimizer.cu: the SGD step over the whole parameter arena in one launch.</summary>
internal sealed class OptimizerKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "optimizer.cu";

    private readonly CudaKernel _sgd = resolve(ModuleFile, "sgd_step_f32");

    /// <summary>SGD step over [n] weights, gradients and momentum buffers (PyTorch semantics, as <c>CpuBackend.SgdStep</c>, bit for bit).</summary>
    public void SgdStep(CudaStream? stream, DevicePointer weights, DevicePointer grads, DevicePointer momentum, long n,
        float learningRate, float momentumFactor, float weightDecay, bool nesterov)
    {
        if (ElementwiseKernels.IsEmpty(n)) return;
        _sgd.Launch(Elements(n), stream, weights, grads, momentum, n, learningRate, momentumFactor, weightDecay, nesterov ? 1 : 0);
    }
}
