using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

// Batch normalisation with the engine's kernels (kernels/normalization.cu) rather than cuDNN's: the CPU
// backend's semantics by construction (running variance unbiased, running = (1 - momentum) running + momentum
// batch, the CPU's float operations in its order), statistics in double, and a fixed reduction order.
public sealed partial class CudaBackend
{
    private static (int N, int C, int Spatial) NormalizationDims(Tensor x) =>
        (x.Shape[0], x.Shape[1], x.Shape.Rank == 4 ? checked(x.Shape[2] * x.Shape[3]) : 1);

    /// <inheritdoc/>
    protected override void BatchNormTrainingForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
        Tensor runningVar, float momentum, float epsilon, Tensor saveMean, Tensor saveInvStd)
    {
        var (n, c, spatial) = NormalizationDims(x);
        var scratch = Scratch(_normalizationScratch, NormalizationKernels.WorkspaceBytes(n, c, spatial));
        _kernels.Normalization.TrainingForward(_stream, P(x), P(y), P(gamma), P(beta), P(runningMean), P(runningVar), P(saveMean), P(saveInvStd),
            n, c, spatial, momentum, epsilon, scratch);
    }

    /// <inheritdoc/>
    protected override void BatchNormInferenceForwardCore(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        float epsilon, Tensor y)
    {
        var (n, c, spatial) = NormalizationDims(x);
        if (n == 0) return;
        var scratch = Scratch(_normalizationScratch, NormalizationKernels.WorkspaceBytes(n, c, spatial));
        _kernels.Normalization.InferenceForward(_stream, P(x), P(y), P(gamma), P(beta), P(runningMean), P(runningVar), n, c, spatial, epsilon, scratch);
    }

    /// <inheritdoc/>
    protected override void BatchNormBackwardCore(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
        Tensor dgamma, Tensor dbeta)
    {
        var (n, c, spatial) = NormalizationDims(x);
        var scratch = Scratch(_normalizationScratch, NormalizationKernels.WorkspaceBytes(n, c, spatial));
        _kernels.Normalization.Backward(_stream, P(x), P(dy), P(gamma), P(saveMean), P(saveInvStd), P(dx), P(dgamma), P(dbeta), n, c, spatial, scratch);
    }
}
