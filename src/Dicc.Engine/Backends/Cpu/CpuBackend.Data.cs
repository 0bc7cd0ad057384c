using Dicc.Engine.Data;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void CropImagesCore(Tensor images, Tensor indices, Tensor output, CropMode mode, int crop, ulong seed, ulong firstSample)
    {
        int count = images.Shape[0], h = images.Shape[1], w = images.Shape[2], pixels = crop * crop;
        var source = Span<byte>(images);
        var idx = Span<int>(indices);
        var dst = Span<float>(output);
        int views = mode == CropMode.TenCrop ? Augmentation.TenCropViews : 1;
        for (int j = 0; j < idx.Length; j++)
        {
            int i = idx[j];
            if ((uint)i >= (uint)count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"Image index {i} at batch position {j} is outside [0, {count}).");
            var image = source.Slice(i * h * w, h * w);
            var view = dst.Slice(j * views * pixels, views * pixels);
            switch (mode)
            {
                case CropMode.Random:
                    var draw = Augmentation.DrawCrop(seed, firstSample + (ulong)j, h, w, crop);
                    Augmentation.Crop(image, w, draw.Top, draw.Left, draw.Flip, crop, view);
                    break;
                case CropMode.Center:
                    Augmentation.Crop(image, w, Augmentation.CenterOffset(h, crop), Augmentation.CenterOffset(w, crop), false, crop, view);
                    break;
                default:
                    Augmentation.TenCropViewsOf(image, h, w, crop, view);
                    break;
            }
        }
    }

    /// <inheritdoc/>
    protected override void GatherCore(Tensor values, Tensor indices, Tensor output)
    {
        var v = Span<int>(values);
        var idx = Span<int>(indices);
        var o = Span<int>(output);
        for (int j = 0; j < idx.Length; j++)
        {
            if ((uint)idx[j] >= (uint)v.Length)
                throw new ArgumentOutOfRangeException(nameof(indices), idx[j], $"Index {idx[j]} at position {j} is outside [0, {v.Length}).");
            o[j] = v[idx[j]];
        }
    }
}
