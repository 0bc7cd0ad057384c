using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

// Max pooling with the engine's kernels (kernels/pooling.cu): cuDNN does not document which of several equal
// maxima receives the gradient, and the CPU backend (like PyTorch) routes it to the first in row-major window
// order; these kernels do exactly that, and sum overlapping windows' gradients in the CPU's order.
public sealed partial class CudaBackend
{
    /// <inheritdoc/>
    protected override void MaxPoolForwardCore(in PoolGeometry g, Tensor x, Tensor y) => _kernels.Pooling.MaxPoolForward(_stream, P(x), P(y), g);

    /// <inheritdoc/>
    protected override void MaxPoolBackwardCore(in PoolGeometry g, Tensor x, Tensor y, Tensor dy, Tensor dx) =>
        _kernels.Pooling.MaxPoolBackward(_stream, P(x), P(dy), P(dx), g);
}
