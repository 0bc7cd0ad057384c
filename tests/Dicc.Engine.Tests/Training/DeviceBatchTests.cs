using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Training;

/// <summary>The backend's batch ops equal the host augmentation they are defined by.</summary>
public class DeviceBatchTests
{
    [TestCase(CropMode.Random)]
    [TestCase(CropMode.Center)]
    [TestCase(CropMode.TenCrop)]
    public void CropImagesEqualsTheHostAugmentation(CropMode mode)
    {
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 3, ValidationPerClass = 0, TestPerClass = 0, Seed = 1 });
        using var backend = new CpuBackend();
        var resident = new DeviceDataset(backend, data.Train);
        int[] picks = [5, 0, 20, 5];
        var indices = backend.Create(new Shape(picks.Length), DType.Int32);
        backend.CopyIn<int>(indices, picks);
        int views = mode == CropMode.TenCrop ? 10 : 1;
        var output = backend.Create(new Shape(picks.Length * views, 1, 44, 44));
        backend.CropImages(resident.Images, indices, output, mode, 44, seed: 9, firstSample: 1234);

        var expected = new float[output.ElementCount];
        if (mode == CropMode.Random) Augmentation.RandomCropFlip(data.Train, picks, expected, 9, 1234);
        else if (mode == CropMode.Center) Augmentation.CenterCrop(data.Train, picks, expected);
        else Augmentation.TenCrop(data.Train, picks, expected);
        Assert.That(backend.ToArray(output), Is.EqualTo(expected));
    }

    [Test]
    public void GatherPicksLabelsAndRejectsABadIndex()
    {
        using var backend = new CpuBackend();
        var values = backend.Create(new Shape(4), DType.Int32);
        backend.CopyIn<int>(values, [10, 11, 12, 13]);
        var indices = backend.Create(new Shape(3), DType.Int32);
        backend.CopyIn<int>(indices, [3, 0, 3]);
        var output = backend.Create(new Shape(3), DType.Int32);
        backend.Gather(values, indices, output);
        Assert.That(backend.ToArray<int>(output), Is.EqualTo(new[] { 13, 10, 13 }));
        backend.CopyIn<int>(indices, [3, 4, 0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.Gather(values, indices, output));
    }
}
