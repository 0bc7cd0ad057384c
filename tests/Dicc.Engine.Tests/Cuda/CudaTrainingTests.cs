using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Backends.Cuda;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>Whole training steps on the GPU: against the CPU from the same weights and data, repeatability, and memory.</summary>
[Category("Gpu")]
public class CudaTrainingTests
{
    private static TrainingOptions Vgg19(TrainingMethod method, int batch) => new()
    {
        Arch = VggDepth.Vgg19, Width = 1.0, Method = method, Subclasses = "2,1,2,3,2,1,3", BatchSize = batch,
        LearningRate = 0.01, WeightDecay = 5e-4, Seed = 11, Dropout = 0.5f,
    };

    /// <summary>
    /// Steps of a model on one backend: the same synthetic faces, crops (Philox draws), dropout masks and initial
    /// weights (drawn on the host from the seed) on every backend. Returns the main and mapping loss of each step.
    /// </summary>
    private static List<(float Main, float Mapping)> Train(Backend backend, ImageDataset train, TrainingOptions options, int steps)
    {
        var model = ModelFactory.Create(backend, options, train.ClassCount, train.ClassCounts());
        var resident = new DeviceDataset(backend, train);
        var images = backend.Create(new Shape(options.BatchSize, 1, 44, 44));
        var labels = backend.Create(new Shape(options.BatchSize), DType.Int32);
        var indices = backend.Create(new Shape(options.BatchSize), DType.Int32);
        var losses = new List<(float, float)>();
        var order = new int[options.BatchSize];
        for (int s = 0; s < steps; s++)
        {
            for (int j = 0; j < order.Length; j++) order[j] = (s * order.Length + j * 7) % train.Count;
            backend.CopyIn<int>(indices, order);
            backend.CropImages(resident.Images, indices, images, CropMode.Random, 44, options.Seed, (ulong)(s * order.Length));
            backend.Gather(resident.Labels, indices, labels);
            model.TrainStep(images, labels, (float)options.LearningRate);
            losses.Add(model.ReadLosses());
        }
        return losses;
    }

    [TestCase(TrainingMethod.Baseline)]
    [TestCase(TrainingMethod.Dicc)]
    public void TwentyVgg19Steps_FollowTheCpusLossTrajectory(TrainingMethod method)
    {
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 12, ValidationPerClass = 0, TestPerClass = 0, Seed = 4 });
        var options = Vgg19(method, batch: 8);
        using var gpu = TestBackends.Create("cuda");
        using var cpu = new CpuBackend(CpuPath.Reference); // the oracle: the kernels follow its arithmetic (docs/architecture.md)
        var g = Train(gpu, data.Train, options, 20);
        var c = Train(cpu, data.Train, options, 20);
        for (int s = 0; s < g.Count; s++)
            TestContext.Out.WriteLine($"step {s,2}: gpu {g[s].Main:F6} {g[s].Mapping:F6}  cpu {c[s].Main:F6} {c[s].Mapping:F6}");
        Parity.AssertClose([g[0].Main], [c[0].Main], Tolerances.FirstStepLoss, "first step's loss");
        Parity.AssertClose(g.Select(l => l.Main).ToArray(), c.Select(l => l.Main).ToArray(), Tolerances.TwentyStepLosses, "20-step trajectory");
        if (method == TrainingMethod.Dicc)
            Parity.AssertClose(g.Select(l => l.Mapping).ToArray(), c.Select(l => l.Mapping).ToArray(), Tolerances.TwentyStepLosses, "20-step mapping losses");
    }

    [Test]
    public void TheSameSeed_GivesBitIdenticalGpuRuns()
    {
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 12, ValidationPerClass = 0, TestPerClass = 0, Seed = 4 });
        var options = Vgg19(TrainingMethod.Dicc, batch: 16) with { Width = 0.5 };
        using var first = TestBackends.Create("cuda");
        var a = Train(first, data.Train, options, 6);
        using var second = TestBackends.Create("cuda");
        var b = Train(second, data.Train, options, 6);
        Assert.That(b, Is.EqualTo(a), "deterministic algorithms and fixed reduction orders: the same losses to the bit");
    }

    private sealed class AllocationWatch(CudaBackend backend) : ITrainingObserver
    {
        public readonly List<(long Device, long Blocks)> AfterStep = [];

        public void StepCompleted(int epoch, int batch, int batches, float? loss, double imagesPerSecond)
        {
            if (epoch == 0) AfterStep.Add((backend.DeviceAllocationCount, backend.AllocationCount));
        }
    }

    [TestCase(TrainingMethod.Baseline)]
    [TestCase(TrainingMethod.Dicc)]
    public void AnEpochOnGpuResidentData_AllocatesNothingAfterItsFirstStep(TrainingMethod method)
    {
        // 7 classes x 32 images = 7 full batches of 32 (a last partial batch would be a new shape to plan).
        using var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 32, ValidationPerClass = 4, TestPerClass = 0, Seed = 9 });
        var options = Vgg19(method, batch: 32) with { Epochs = 1, LogEvery = 3, Dropout = 0.5f };
        using var gpu = (CudaBackend)TestBackends.Create("cuda");
        string dir = Directory.CreateTempSubdirectory("dicc-gpu-epoch-").FullName;
        try
        {
            var watch = new AllocationWatch(gpu);
            var trainer = new Trainer(gpu, data, options, new RunDirectory(dir)) { Observer = watch };
            Assert.That(trainer.BatchesPerEpoch, Is.EqualTo(7));
            trainer.Run();
            TestContext.Out.WriteLine(string.Join(", ", watch.AfterStep.Select(a => $"{a.Device} chunks / {a.Blocks} blocks")));
            TestContext.Out.WriteLine($"{gpu.ReservedBytes / (1 << 20)} MiB reserved");
            Assert.That(watch.AfterStep, Has.Count.EqualTo(7));
            Assert.That(watch.AfterStep.Skip(1), Has.All.EqualTo(watch.AfterStep[0]), "no cuMemAlloc and no pool block after the first step");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
