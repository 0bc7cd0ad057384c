using Dicc.Engine.Backends;
using Dicc.Engine.Data;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>
/// A dataset split uploaded to a backend once: uint8 images [count, H, W] and int32 labels [count]. Batches
/// are then cut on the device (<see cref="Backend.CropImages"/>, <see cref="Backend.Gather"/>); per step only
/// the batch's indices travel.
/// </summary>
public sealed class DeviceDataset
{
    public DeviceDataset(Backend backend, ImageDataset data)
    {
        Source = data;
        int count = Math.Max(1, data.Count);
        Images = backend.Create(new Shape(count, data.Height, data.Width), DType.UInt8);
        Labels = backend.Create(new Shape(count), DType.Int32);
        if (data.Count == 0) return;
        backend.CopyIn(Images, data.Pixels.Span);
        backend.CopyIn(Labels, data.Labels);
    }

    public ImageDataset Source { get; }
    public Tensor Images { get; }
    public Tensor Labels { get; }
    public int Count => Source.Count;
}
