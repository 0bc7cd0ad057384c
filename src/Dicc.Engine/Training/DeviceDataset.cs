using Dicc.Engine.Backends;
using Dicc.Engine.Data;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>
/// A dataset split uploaded to a backend once: uint8 images [count, H, W] and int32 labels [count]. Batches
/// are then cut on the device (<see cref="Backend.CropImages"/>, <see cref="Backend.Gather"/>); per step only
/// the batch's indices travel. Disposing frees the device copy.
/// </summary>
public sealed class DeviceDataset : IDisposable
{
    /// <summary>Uploads <paramref name="data"/>'s images and labels to <paramref name="backend"/>.</summary>
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

    /// <summary>The split that was uploaded.</summary>
    public ImageDataset Source { get; }

    /// <summary>The images, uint8 [count, H, W] (one image of zeros for an empty split).</summary>
    public Tensor Images { get; }

    /// <summary>The labels, int32 [count].</summary>
    public Tensor Labels { get; }

    /// <summary>The number of images.</summary>
    public int Count => Source.Count;

    /// <summary>Frees the device memory of the images and labels.</summary>
    public void Dispose()
    {
        Images.Storage.Dispose();
        Labels.Storage.Dispose();
    }
}
