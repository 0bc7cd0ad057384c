using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/dropout.cu: inverted dropout with Philox masks (the CPU backend's mask for the same seed and offset).</summary>
internal sealed class DropoutKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "dropout.cu";

    private readonly CudaKernel _dropout = resolve(ModuleFile, "dropout_forward_f32");

    /// <summary>
    /// Inverted dropout on [n] values: mask = 1/(1-p) where the Philox uniform of (seed, offset + i) is &gt;= p,
    /// else 0; y = x * mask. The same mask as <c>CpuBackend.DropoutForward</c> for the same seed and offset.
    /// </summary>
    public void Forward(CudaStream? stream, DevicePointer x, DevicePointer y, DevicePointer mask, long n, float p, ulong seed, ulong offset)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        if (ElementwiseKernels.IsEmpty(n)) return;
        float scale = 1f / (1f - p); // computed here as on the CPU, so both use the same float
        long blocks = (long)(((offset + (ulong)n - 1) >> 2) - (offset >> 2) + 1); // one thread per Philox block of four words
        _dropout.Launch(Elements(blocks), stream, x, y, mask, n, p, scale, seed, offset);
    }
}
