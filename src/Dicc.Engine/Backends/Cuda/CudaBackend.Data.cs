using Dicc.Engine.Backends.Cuda.Kernels;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cuda;

// Batches cut from a dataset resident on the GPU: the crop draws are Data.Augmentation's (Philox at the sample
// counter), so a GPU batch equals the CPU batch value for value. Bad indices are reported at the next sync.
public sealed partial class CudaBackend
{
    /// <inheritdoc/>
    protected override void CropImagesCore(Tensor images, Tensor indices, Tensor output, CropMode mode, int crop, ulong seed, ulong firstSample)
    {
        int count = images.Shape[0], height = images.Shape[1], width = images.Shape[2], n = checked((int)indices.ElementCount);
        if (n == 0) return;
        _kernels.Data.CheckIndices(_stream, P(indices), n, count, DeviceStatusKind.CropIndex, _status.Record);
        _kernels.Data.CropImages(_stream, P(images), P(indices), P(output), count, height, width, n, mode, crop, seed, firstSample);
    }

    /// <inheritdoc/>
    protected override void GatherCore(Tensor values, Tensor indices, Tensor output) =>
        _kernels.Data.Gather(_stream, P(values), checked((int)values.ElementCount), P(indices), P(output), checked((int)indices.ElementCount), _status.Record);
}
