using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Layers;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Models;

/// <summary>cRT's pieces (docs/method.md, "Long-tail losses"): a frozen backbone, the head-only update, and initialisation from another run.</summary>
public class FrozenBackboneTests
{
    private static readonly VggOptions Vgg = new() { Depth = VggDepth.Vgg11, Width = 0.125, InputSize = 32 };

    private static (Tensor Images, Tensor Labels) Batch(CpuBackend backend)
    {
        var images = backend.Create(new Shape(8, 1, 32, 32));
        backend.CopyIn<float>(images, Enumerable.Range(0, 8 * 32 * 32).Select(i => (i * 13 % 29) / 29f).ToArray());
        var labels = backend.Create(new Shape(8), DType.Int32);
        backend.CopyIn<int>(labels, [0, 1, 2, 0, 1, 2, 0, 1]);
        return (images, labels);
    }

    private static Dictionary<string, float[]> Snapshot(CpuBackend backend, BaselineModel model) =>
        model.Network.Parameters.Parameters.Select(p => (p.Name, Value: p.Value))
            .Concat(model.Network.State.Select(s => (s.Name, Value: s.Tensor)))
            .ToDictionary(t => t.Name, t => backend.ToArray(t.Value));

    [Test]
    public void TrainingSteps_ChangeTheHeadOnly_AndLeaveTheBackbonesStatisticsAlone()
    {
        using var backend = new CpuBackend();
        var model = new BaselineModel(backend, Vgg, 3, new ModelTrainingOptions
        {
            Seed = 4, FreezeBackbone = true, Sgd = new Engine.Optim.SgdOptions { WeightDecay = 5e-4f },
        });
        Assert.That(((Sequential)model.Network.Root)[0], Is.InstanceOf<Frozen>());
        var before = Snapshot(backend, model);
        var (images, labels) = Batch(backend);
        for (int i = 0; i < 3; i++) model.TrainStep(images, labels, 0.05f);
        var after = Snapshot(backend, model);
        var head = model.Head.Parameters.Select(p => p.Name).ToHashSet();
        Assert.That(head, Is.EquivalentTo(new[] { "1.1.weight", "1.1.bias" }));
        foreach (var (name, values) in before)
        {
            if (head.Contains(name)) Assert.That(after[name], Is.Not.EqualTo(values), $"{name} trains");
            else Assert.That(after[name], Is.EqualTo(values), $"{name} is frozen (weight decay and BatchNorm's running statistics included)");
        }
    }

    [Test]
    public void TheFrozenBackbone_ComputesWhatTheEvaluationModeBackboneComputes()
    {
        using var backend = new CpuBackend();
        var frozen = new BaselineModel(backend, Vgg, 3, new ModelTrainingOptions { Seed = 4, FreezeBackbone = true });
        var plain = new BaselineModel(backend, Vgg, 3, new ModelTrainingOptions { Seed = 4 });
        var (images, _) = Batch(backend);
        // Same names and initial values: the wrapper changes neither.
        Assert.That(frozen.Network.Parameters.Parameters.Select(p => p.Name), Is.EqualTo(plain.Network.Parameters.Parameters.Select(p => p.Name)));
        Assert.That(backend.ToArray(frozen.Network.Parameters.Values), Is.EqualTo(backend.ToArray(plain.Network.Parameters.Values)));
        var features = ((Sequential)frozen.Network.Root)[0];
        var training = new StepContext { Training = true, Seed = 4 };
        var y = backend.Create(new Shape(8, Engine.Models.Vgg.FeatureSize(Vgg)));
        var expected = backend.Create(y.Shape);
        features.Prepare(images.Shape, backend);
        features.Forward(images, y, training);
        var plainFeatures = ((Sequential)plain.Network.Root)[0];
        plainFeatures.Prepare(images.Shape, backend);
        plainFeatures.Forward(images, expected, StepContext.Evaluation(4));
        Assert.That(backend.ToArray(y), Is.EqualTo(backend.ToArray(expected)), "a training-mode pass runs the backbone in evaluation mode");
    }

    [Test]
    public void InitializeFrom_LoadsTheBackbone_AndWithResetHeadKeepsTheFreshHead()
    {
        using var backend = new CpuBackend();
        using var dir = new Support.TempDirectory();
        var source = new BaselineModel(backend, Vgg, 3, new ModelTrainingOptions { Seed = 1 });
        var (images, labels) = Batch(backend);
        source.TrainStep(images, labels, 0.05f);
        var writer = new CheckpointWriter();
        source.Save(writer);
        writer.Save(dir["source.safetensors"]);

        foreach (bool resetHead in new[] { false, true })
        {
            var target = new BaselineModel(backend, Vgg, 3, new ModelTrainingOptions { Seed = 2 });
            var fresh = Snapshot(backend, target);
            target.InitializeFrom(new CheckpointReader(dir["source.safetensors"]), resetHead);
            var loaded = Snapshot(backend, target);
            var expected = Snapshot(backend, source);
            foreach (var name in loaded.Keys)
            {
                bool keepsFresh = resetHead && name.StartsWith("1.", StringComparison.Ordinal);
                Assert.That(loaded[name], Is.EqualTo(keepsFresh ? fresh[name] : expected[name]), $"reset head {resetHead}: {name}");
            }
            Assert.That(target.Steps, Is.Zero, "the optimiser state is not read");
        }
    }
}
