using Dicc.Engine.Backends.Cuda.Runtime;

namespace Dicc.Engine.Backends.Cuda.Kernels;

/// <summary>kernels/elementwise.cu: fill, ReLU and its gradient, product (bit for bit the CPU backend's).</summary>
internal sealed class ElementwiseKernels(KernelResolver resolve, int multiprocessors)
    : KernelLaunchers(ModuleFile, resolve, multiprocessors)
{
    public const string ModuleFile = "elementwise.cu";

    private readonly CudaKernel _fill = resolve(ModuleFile, "fill_f32");
    private readonly CudaKernel _reluForward = resolve(ModuleFile, "relu_forward_f32");
    private readonly CudaKernel _reluBackward = resolve(ModuleFile, "relu_backward_f32");
    private readonly CudaKernel _multiply = resolve(ModuleFile, "multiply_f32");

    /// <summary>x [n] = value.</summary>
    public void Fill(CudaStream? stream, DevicePointer x, float value, long n)
    {
        if (IsEmpty(n)) return;
        _fill.Launch(Elements(n), stream, x, value, n);
    }

    /// <summary>y [n] = max(x, 0); in place allowed.</summary>
    public void ReluForward(CudaStream? stream, DevicePointer x, DevicePointer y, long n)
    {
        if (IsEmpty(n)) return;
        _reluForward.Launch(Elements(n), stream, x, y, n);
    }

    /// <summary>dx [n] = y &gt; 0 ? dy : 0 (y is the forward output).</summary>
    public void ReluBackward(CudaStream? stream, DevicePointer y, DevicePointer dy, DevicePointer dx, long n)
    {
        if (IsEmpty(n)) return;
        _reluBackward.Launch(Elements(n), stream, y, dy, dx, n);
    }

    /// <summary>c [n] = a * b.</summary>
    public void Multiply(CudaStream? stream, DevicePointer a, DevicePointer b, DevicePointer c, long n)
    {
        if (IsEmpty(n)) return;
        _multiply.Launch(Elements(n), stream, a, b, c, n);
    }

    internal static bool IsEmpty(long n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        return n == 0;
    }
}
