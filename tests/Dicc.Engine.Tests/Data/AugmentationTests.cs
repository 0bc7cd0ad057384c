using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Data;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Data;

public class AugmentationTests
{
    /// <summary>Two 48x48 images whose pixel (y, x) is known: image 0 holds 2x + y, image 1 holds 255 - (2x + y).</summary>
    private static ImageDataset KnownImages()
    {
        var pixels = new byte[2 * 48 * 48];
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 48; x++)
            {
                pixels[y * 48 + x] = (byte)(2 * x + y);
                pixels[48 * 48 + y * 48 + x] = (byte)(255 - (2 * x + y));
            }
        return new ImageDataset(pixels, [0, 1], EmotionClasses.Canonical);
    }

    private static float At(Span<float> views, int view, int y, int x, int crop = 44) => views[view * crop * crop + y * crop + x];

    [Test]
    public void CenterCrop_StartsAtOffsetTwo_AndScalesBy255()
    {
        var images = KnownImages();
        var batch = new float[2 * 44 * 44];
        Augmentation.CenterCrop(images, [1, 0], batch);
        // View 0 is image 1: value 255 - (2(x+2) + (y+2)).
        Assert.That(At(batch, 0, 0, 0), Is.EqualTo((255 - 6) / 255f));
        Assert.That(At(batch, 0, 43, 43), Is.EqualTo((255 - (2 * 45 + 45)) / 255f));
        Assert.That(At(batch, 1, 10, 3), Is.EqualTo((2 * 5 + 12) / 255f));
        Assert.That(Augmentation.PixelDivisor, Is.EqualTo(255f));
    }

    [Test]
    public void TenCrop_IsCornersCentreThenTheirMirrors_InTorchvisionOrder()
    {
        var images = KnownImages();
        var views = new float[10 * 44 * 44];
        Augmentation.TenCrop(images, [0], views);
        float Pixel(int y, int x) => (2 * x + y) / 255f;
        (int Top, int Left)[] origins = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)];
        for (int k = 0; k < 5; k++)
        {
            var (top, left) = origins[k];
            Assert.That(At(views, k, 0, 0), Is.EqualTo(Pixel(top, left)), $"view {k} top-left");
            Assert.That(At(views, k, 43, 43), Is.EqualTo(Pixel(top + 43, left + 43)), $"view {k} bottom-right");
            // View 5 + k is crop k of the mirrored image: mirrored(y, x) = original(y, 47 - x).
            Assert.That(At(views, 5 + k, 0, 0), Is.EqualTo(Pixel(top, 47 - left)), $"view {5 + k} top-left");
            Assert.That(At(views, 5 + k, 7, 43), Is.EqualTo(Pixel(top + 7, 47 - (left + 43))), $"view {5 + k}");
        }
        // The mirrored top-left crop is the mirror of the original top-right crop.
        for (int x = 0; x < 44; x++) Assert.That(At(views, 5, 3, x), Is.EqualTo(At(views, 1, 3, 43 - x)));
    }

    [Test]
    public void RandomCropFlip_PlacesEachSampleAtItsDraw()
    {
        var images = KnownImages();
        var batch = new float[6 * 44 * 44];
        int[] indices = [0, 1, 0, 0, 1, 0];
        Augmentation.RandomCropFlip(images, indices, batch, seed: 11, firstSampleCounter: 100);
        for (int j = 0; j < indices.Length; j++)
        {
            var draw = Augmentation.DrawCrop(11, 100 + (ulong)j, 48, 48, 44);
            for (int y = 0; y < 44; y += 7)
                for (int x = 0; x < 44; x += 5)
                {
                    int sx = draw.Left + (draw.Flip ? 43 - x : x), sy = draw.Top + y;
                    int value = 2 * sx + sy;
                    if (indices[j] == 1) value = 255 - value;
                    Assert.That(At(batch, j, y, x), Is.EqualTo(value / 255f), $"sample {j} ({draw}) at ({y}, {x})");
                }
        }
    }

    [Test]
    public void DrawCrop_IsDeterministicAndCoversEveryOffsetAndFlipEvenly()
    {
        Assert.That(Augmentation.DrawCrop(5, 42, 48, 48, 44), Is.EqualTo(Augmentation.DrawCrop(5, 42, 48, 48, 44)));
        var counts = new int[5, 5, 2];
        const int n = 50_000;
        for (ulong k = 0; k < n; k++)
        {
            var d = Augmentation.DrawCrop(7, k, 48, 48, 44);
            counts[d.Top, d.Left, d.Flip ? 1 : 0]++;
        }
        // 50 cells of expected 1000 each; 5 standard deviations is about 160.
        foreach (int c in counts) Assert.That(c, Is.InRange(840, 1160));
        Assert.That(Enumerable.Range(0, 100).Select(k => Augmentation.DrawCrop(8, (ulong)k, 48, 48, 44)),
            Is.Not.EqualTo(Enumerable.Range(0, 100).Select(k => Augmentation.DrawCrop(7, (ulong)k, 48, 48, 44))), "the seed matters");
    }

    [Test]
    public void TensorOverloads_WriteIntoACpuTensor_AndCheckTheShape()
    {
        using var cpu = new CpuBackend();
        var images = KnownImages();
        var batch = cpu.Create(Shape.Nchw(2, 1, 44, 44));
        Augmentation.CenterCrop(images, [0, 1], batch);
        var expected = new float[2 * 44 * 44];
        Augmentation.CenterCrop(images, [0, 1], expected);
        Assert.That(cpu.ToArray(batch), Is.EqualTo(expected));
        Assert.Throws<ShapeMismatchException>(() => Augmentation.TenCrop(images, [0, 1], batch));
        Assert.Throws<ArgumentException>(() => Augmentation.CenterCrop(images, [0], new float[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Augmentation.CenterCrop(images, [2], new float[44 * 44]));
    }

    [Test]
    public void RandomCropFlip_AllocatesNothing()
    {
        var images = KnownImages();
        var batch = new float[128 * 44 * 44];
        var indices = Enumerable.Range(0, 128).Select(i => i % 2).ToArray();
        Augmentation.RandomCropFlip(images, indices, batch, 1, 0); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        Augmentation.RandomCropFlip(images, indices, batch, 1, 128);
        Augmentation.TenCrop(images, indices.AsSpan(0, 12), batch.AsSpan(0, 120 * 44 * 44));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
