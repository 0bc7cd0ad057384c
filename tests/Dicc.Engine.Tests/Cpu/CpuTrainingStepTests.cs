using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Clustering;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Cpu;

/// <summary>
/// Whole VGG training steps on the CPU backend: no allocation once memory is planned, the same bits on any
/// thread count, and the fast path within float rounding of the reference path.
/// </summary>
public class CpuTrainingStepTests
{
    private static readonly VggOptions Small = new() { Depth = VggDepth.Vgg11, Width = 0.25, InputSize = 44 };

    private static ModelTrainingOptions Training => new() { Sgd = new SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }, Seed = 3 };

    private static (Tensor Images, Tensor Labels) Batch(CpuBackend backend, int n)
    {
        var random = new RandomStream(11);
        var images = backend.Create(new Shape(n, 1, 44, 44));
        var labels = backend.Create(new Shape(n), DType.Int32);
        backend.CopyIn<float>(images, Enumerable.Range(0, (int)images.ElementCount).Select(_ => random.NextFloat()).ToArray());
        backend.CopyIn<int>(labels, Enumerable.Range(0, n).Select(_ => random.NextInt(7)).ToArray());
        return (images, labels);
    }

    private static ExpressionModel Create(CpuBackend backend, bool dicc) => dicc
        ? new DiccModel(backend, Small, 7, new DiccOptions { Clustering = new ClusteringConfig(SubclassPlan.Preset("fer2013-b10"), Vgg.FeatureSize(Small)) }, Training)
        : new BaselineModel(backend, Small, 7, Training);

    [Test]
    public void DiccSteps_AreBitIdenticalOnAnyThreadCount()
    {
        float[] Run()
        {
            using var backend = new CpuBackend();
            var (images, labels) = Batch(backend, 12);
            var model = (DiccModel)Create(backend, dicc: true);
            for (int i = 0; i < 3; i++) model.TrainStep(images, labels, 0.01f);
            return backend.ToArray(model.Main.Parameters.Values);
        }
        var all = Run();
        using (CpuParallel.LimitThreads(1))
            Assert.That(Run(), Is.EqualTo(all), $"1 thread differs from {CpuParallel.Threads}.");
    }

    /// <summary>
    /// The CPU backend allocates nothing inside a baseline step. The only allocations left are the Shape objects
    /// that the backend contract's argument checks build from a geometry (Backend.cs: three shapes for every
    /// convolution op, two for a pooling forward pass, four for its backward pass); the step may allocate at most
    /// those, and nothing once they are gone. (A DICC step also allocates two tensor views in DiccModel.TrainStep.)
    /// </summary>
    [Test]
    public void Step_AllocatesNothingBeyondTheContractsShapeChecks()
    {
        using var backend = new CpuBackend();
        var (images, labels) = Batch(backend, 12);
        var model = Create(backend, dicc: false);
        // Plans memory, fills the workers' buffers, and lets the JIT's background tiering settle.
        for (int i = 0; i < 6; i++) model.TrainStep(images, labels, 0.01f);
        Thread.Sleep(200);
        // The least of three windows of three steps: a one-time allocation inside the runtime (a lazily created
        // lock, a method promoted by the JIT) may land in one window, a per-step allocation would be in all.
        long allocated = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 3; i++) model.TrainStep(images, labels, 0.01f);
            allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
        }

        var geometry = new Dicc.Engine.Backends.ConvolutionGeometry(1, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1);
        long start = GC.GetTotalAllocatedBytes(precise: true);
        _ = geometry.InputShape;
        long perShape = GC.GetTotalAllocatedBytes(precise: true) - start;
        var backbone = Vgg.Backbone(Small);
        int convolutions = backbone.Layers.OfType<Dicc.Engine.Layers.Conv2d>().Count();
        int pools = backbone.Layers.OfType<Dicc.Engine.Layers.MaxPool2d>().Count();
        // forward, filter and data gradients (none for the first layer), each checking three shapes; pools 2 + 4.
        long checks = 3 * perShape * ((3L * convolutions - 1) * 3 + 6L * pools);
        Assert.That(allocated, Is.LessThanOrEqualTo(checks),
            $"three steps allocated {allocated} bytes; the contract's shape checks account for {checks}.");
    }

    [Test]
    public void Steps_AreBitIdenticalOnAnyThreadCount()
    {
        float[] Run()
        {
            using var backend = new CpuBackend();
            var (images, labels) = Batch(backend, 10);
            var model = new BaselineModel(backend, Small, 7, Training);
            for (int i = 0; i < 3; i++) model.TrainStep(images, labels, 0.01f);
            return backend.ToArray(model.Network.Parameters.Values);
        }
        var all = Run();
        using (CpuParallel.LimitThreads(1))
        {
            var one = Run();
            Assert.That(one, Is.EqualTo(all), $"1 thread differs from {CpuParallel.Threads}.");
        }
    }

    /// <summary>
    /// Three steps from the same weights on both paths. The paths differ by float rounding in the input
    /// gradients and BatchNorm statistics (bounded op by op in CpuFastPathTests); after three steps at lr 0.01 the
    /// weights may differ by a few 1e-6 of their scale, and the loss likewise (measured: 5e-7 relative); the
    /// tolerances are 1e-5 of the weights' RMS and of the loss.
    /// </summary>
    [Test]
    public void FastPath_StaysWithinRoundingOfTheReferenceOverSteps()
    {
        (float[] Weights, float Loss) Run(CpuPath path)
        {
            using var backend = new CpuBackend(path);
            var (images, labels) = Batch(backend, 10);
            var model = new BaselineModel(backend, Small, 7, Training);
            for (int i = 0; i < 3; i++) model.TrainStep(images, labels, 0.01f);
            return (backend.ToArray(model.Network.Parameters.Values), model.ReadLosses().Main);
        }
        var fast = Run(CpuPath.Fast);
        var reference = Run(CpuPath.Reference);
        Assert.That(fast.Loss, Is.EqualTo(reference.Loss).Within(1e-3).Percent);
        double scale = Math.Sqrt(reference.Weights.Average(w => (double)w * w));
        double worst = fast.Weights.Zip(reference.Weights, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(worst, Is.LessThanOrEqualTo(1e-5 * scale), $"largest weight difference {worst:E2} (weight RMS {scale:E2}).");
    }
}
