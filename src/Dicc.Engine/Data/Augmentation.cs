using System.Runtime.CompilerServices;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Data;

/// <summary>
/// Host-side augmentation that turns uint8 images into a float batch [N, 1, crop, crop]:
/// training crops (a random crop and a random horizontal flip per sample), the centre crop, and the
/// ten-crop of evaluation. Pixels are scaled by 1/255 into [0, 1] and not otherwise normalised, as FER
/// repositories do with torchvision's ToTensor (the network's first BatchNorm absorbs mean and scale).
/// Everything writes into caller-owned memory and allocates nothing, so it can run inside a training step.
/// <para>The random draws are counter-based, so the GPU version reproduces them exactly: sample number
/// <c>k</c> (the trainer's running sample counter) under seed <c>s</c> takes the Philox4x32-10 block
/// (key s, stream <see cref="CropStream"/>, counter k) = (w0, w1, w2, w3) and uses
/// top = (w0 * range) >> 32, left = (w1 * range) >> 32, flip = w2 >> 31, with range = size - crop + 1
/// (as torchvision's RandomCrop: every offset 0..size-crop equally likely; RandomHorizontalFlip p = 0.5).</para>
/// </summary>
public static class Augmentation
{
    /// <summary>Crop side used in training and testing by the 48x48 FER recipes.</summary>
    public const int CropSize = 44;

    /// <summary>The normalisation: x = pixel / 255, computed as a float division (bit-identical to PyTorch's ToTensor).</summary>
    public const float PixelDivisor = 255f;

    /// <summary>Views per image in <see cref="TenCrop(ImageDataset, ReadOnlySpan{int}, Span{float}, int)"/>.</summary>
    public const int TenCropViews = 10;

    /// <summary>The Philox stream of crop-and-flip draws ("AUGC").</summary>
    public const ulong CropStream = 0x4155_4743_0000_0000;

    /// <summary>Where one sample is cropped and whether it is mirrored.</summary>
    public readonly record struct CropDraw(int Top, int Left, bool Flip);

    /// <summary>The crop and flip of sample <paramref name="sampleCounter"/> under <paramref name="seed"/> (see the class summary).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static CropDraw DrawCrop(ulong seed, ulong sampleCounter, int height, int width, int cropSize)
    {
        var (w0, w1, w2, _) = Philox.Block(seed, CropStream, sampleCounter);
        uint rangeY = (uint)(height - cropSize + 1), rangeX = (uint)(width - cropSize + 1);
        return new CropDraw((int)((ulong)w0 * rangeY >> 32), (int)((ulong)w1 * rangeX >> 32), (w2 >> 31) != 0);
    }

    /// <summary>
    /// Training batch: image <c>indices[j]</c> cropped at the draw of sample <c>firstSampleCounter + j</c>
    /// and maybe flipped, into <paramref name="destination"/> [indices.Length, 1, crop, crop].
    /// </summary>
    public static void RandomCropFlip(ImageDataset source, ReadOnlySpan<int> indices, Span<float> destination,
        ulong seed, ulong firstSampleCounter, int cropSize = CropSize)
    {
        int viewSize = CheckBatch(source, indices, destination, cropSize, 1);
        var pixels = source.Pixels.Span;
        int imageBytes = source.PixelsPerImage;
        for (int j = 0; j < indices.Length; j++)
        {
            var draw = DrawCrop(seed, firstSampleCounter + (ulong)j, source.Height, source.Width, cropSize);
            Crop(pixels.Slice(indices[j] * imageBytes, imageBytes), source.Width, draw.Top, draw.Left, draw.Flip, cropSize,
                destination.Slice(j * viewSize, viewSize));
        }
    }

    /// <summary>Evaluation batch: the centre crop of each image (offset 2 for 44 of 48, as torchvision's CenterCrop).</summary>
    public static void CenterCrop(ImageDataset source, ReadOnlySpan<int> indices, Span<float> destination, int cropSize = CropSize)
    {
        int viewSize = CheckBatch(source, indices, destination, cropSize, 1);
        var pixels = source.Pixels.Span;
        int imageBytes = source.PixelsPerImage;
        int top = CenterOffset(source.Height, cropSize), left = CenterOffset(source.Width, cropSize);
        for (int j = 0; j < indices.Length; j++)
            Crop(pixels.Slice(indices[j] * imageBytes, imageBytes), source.Width, top, left, false, cropSize, destination.Slice(j * viewSize, viewSize));
    }

    /// <summary>
    /// Ten-crop batch [indices.Length * 10, 1, crop, crop], image-major: for each image the top-left,
    /// top-right, bottom-left, bottom-right and centre crops, then the same five crops of the mirrored image
    /// (torchvision's TenCrop order). Average the ten predictions of an image to evaluate it.
    /// </summary>
    public static void TenCrop(ImageDataset source, ReadOnlySpan<int> indices, Span<float> destination, int cropSize = CropSize)
    {
        int viewSize = CheckBatch(source, indices, destination, cropSize, TenCropViews);
        var pixels = source.Pixels.Span;
        int imageBytes = source.PixelsPerImage;
        int h = source.Height, w = source.Width;
        for (int j = 0; j < indices.Length; j++)
            TenCropViewsOf(pixels.Slice(indices[j] * imageBytes, imageBytes), h, w, cropSize,
                destination.Slice(j * TenCropViews * viewSize, TenCropViews * viewSize));
    }

    /// <summary>The ten views of one image [10, crop, crop] in torchvision's TenCrop order.</summary>
    public static void TenCropViewsOf(ReadOnlySpan<byte> image, int height, int width, int cropSize, Span<float> views)
    {
        int viewSize = cropSize * cropSize, h = height, w = width;
        Span<(int Top, int Left)> corners = [(0, 0), (0, w - cropSize), (h - cropSize, 0), (h - cropSize, w - cropSize), (CenterOffset(h, cropSize), CenterOffset(w, cropSize))];
        for (int k = 0; k < 5; k++)
        {
            Crop(image, w, corners[k].Top, corners[k].Left, false, cropSize, views.Slice(k * viewSize, viewSize));
            // Crop (top, left) of the mirrored image is the mirror of crop (top, w - crop - left) of the original.
            Crop(image, w, corners[k].Top, w - cropSize - corners[k].Left, true, cropSize, views.Slice((5 + k) * viewSize, viewSize));
        }
    }

    /// <inheritdoc cref="RandomCropFlip(ImageDataset, ReadOnlySpan{int}, Span{float}, ulong, ulong, int)"/>
    public static void RandomCropFlip(ImageDataset source, ReadOnlySpan<int> indices, Tensor destination, ulong seed, ulong firstSampleCounter, int cropSize = CropSize)
    {
        destination.RequireShape(Shape.Nchw(indices.Length, 1, cropSize, cropSize));
        RandomCropFlip(source, indices, CpuBackend.Span<float>(destination), seed, firstSampleCounter, cropSize);
    }

    /// <inheritdoc cref="CenterCrop(ImageDataset, ReadOnlySpan{int}, Span{float}, int)"/>
    public static void CenterCrop(ImageDataset source, ReadOnlySpan<int> indices, Tensor destination, int cropSize = CropSize)
    {
        destination.RequireShape(Shape.Nchw(indices.Length, 1, cropSize, cropSize));
        CenterCrop(source, indices, CpuBackend.Span<float>(destination), cropSize);
    }

    /// <inheritdoc cref="TenCrop(ImageDataset, ReadOnlySpan{int}, Span{float}, int)"/>
    public static void TenCrop(ImageDataset source, ReadOnlySpan<int> indices, Tensor destination, int cropSize = CropSize)
    {
        destination.RequireShape(Shape.Nchw(indices.Length * TenCropViews, 1, cropSize, cropSize));
        TenCrop(source, indices, CpuBackend.Span<float>(destination), cropSize);
    }

    /// <summary>
    /// One view: rows top..top+crop-1 and columns left..left+crop-1 of a row-major image of the given width,
    /// mirrored left-right when <paramref name="flip"/>, divided by 255.
    /// </summary>
    public static void Crop(ReadOnlySpan<byte> image, int width, int top, int left, bool flip, int cropSize, Span<float> destination)
    {
        for (int y = 0; y < cropSize; y++)
        {
            var row = image.Slice((top + y) * width + left, cropSize);
            var output = destination.Slice(y * cropSize, cropSize);
            if (flip)
                for (int x = 0; x < cropSize; x++) output[x] = row[cropSize - 1 - x] / 255f;
            else
                for (int x = 0; x < cropSize; x++) output[x] = row[x] / 255f;
        }
    }

    // torchvision's CenterCrop: int(round((size - crop) / 2.0)), Python rounding half to even.
    /// <summary>The offset of a centre crop of <paramref name="cropSize"/> in <paramref name="size"/> pixels: torchvision's <c>int(round((size - crop) / 2))</c>, halves to even.</summary>
    public static int CenterOffset(int size, int cropSize) => (int)Math.Round((size - cropSize) / 2.0, MidpointRounding.ToEven);

    private static int CheckBatch(ImageDataset source, ReadOnlySpan<int> indices, Span<float> destination, int cropSize, int views)
    {
        if (cropSize < 1 || cropSize > source.Height || cropSize > source.Width)
            throw new ArgumentOutOfRangeException(nameof(cropSize), $"Crop {cropSize} does not fit {source.Height}x{source.Width} images.");
        int viewSize = cropSize * cropSize;
        if (destination.Length != (long)indices.Length * views * viewSize)
            throw new ArgumentException($"A batch of {indices.Length} x {views} views of {cropSize}x{cropSize} needs {(long)indices.Length * views * viewSize} floats; got {destination.Length}.", nameof(destination));
        foreach (int i in indices)
            if ((uint)i >= (uint)source.Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Image {i} of {source.Count}.");
        return viewSize;
    }
}
