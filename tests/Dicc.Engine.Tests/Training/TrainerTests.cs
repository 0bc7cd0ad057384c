using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Imbalance;
using Dicc.Engine.IO;
using Dicc.Engine.Models;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Training;

/// <summary>End-to-end training on the built-in synthetic faces with a narrow VGG11 (fast on two cores).</summary>
public class TrainerTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("dicc-trainer-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>Long-tailed synthetic train split (head 160, beta 10), balanced validation and test.</summary>
    internal static DatasetSplits SmallLongTailedFaces(ulong seed = 3) => SyntheticFaces.Generate(new SyntheticFaceOptions
    {
        TrainPerClass = 160, Beta = 10, ValidationPerClass = 20, TestPerClass = 40, Seed = seed,
    });

    internal static TrainingOptions Small(TrainingMethod method, ImbalanceRule rule = ImbalanceRule.None, int epochs = 8) => new()
    {
        Arch = VggDepth.Vgg11, Width = 0.125, Dropout = 0.2f, Method = method, Rule = rule, Partition = Dicc.Engine.Clustering.PartitionMode.Rank,
        Subclasses = "auto", Epochs = epochs, BatchSize = 32, LearningRate = 0.02, WeightDecay = 5e-4, Seed = 5, LogEvery = 1,
        EvalBatchSize = 64,
    };

    private TrainingOutcome Train(DatasetSplits data, TrainingOptions options, string name, bool resume = false,
        CancellationToken cancel = default, ITrainingObserver? observer = null)
    {
        using var backend = new CpuBackend();
        var trainer = new Trainer(backend, data, options, new RunDirectory(Path.Combine(_root, name))) { Observer = observer };
        return trainer.Run(resume, cancel);
    }

    [TestCase(ImbalanceRule.None)]
    [TestCase(ImbalanceRule.Resample)]
    [TestCase(ImbalanceRule.Reweight)]
    public void DiccTrainsBothPhasesAndBeatsChanceOnTheBalancedTestSplit(ImbalanceRule rule)
    {
        using var data = SmallLongTailedFaces();
        var outcome = Train(data, Small(TrainingMethod.Dicc, rule), "dicc-" + rule);
        var metrics = outcome.Run.ReadMetrics();
        TestContext.Out.WriteLine(string.Join("\n", metrics.Select(m => $"{m.Epoch}: loss {m.TrainLoss:F3} mapping {m.MappingLoss:F3} val {m.ValidationAccuracy:F3}")));
        TestContext.Out.WriteLine($"test accuracy {outcome.Test!.Accuracy:F3}, balanced {outcome.Test.BalancedAccuracy:F3}");
        Assert.That(metrics, Has.Count.EqualTo(8));
        Assert.That(metrics.All(m => m.MappingLoss is double l && double.IsFinite(l)), "phase 2 ran every epoch");
        Assert.That(metrics[^1].MappingLoss!.Value, Is.LessThan(metrics[0].MappingLoss!.Value), "the mapping MLP learns");
        Assert.That(metrics[^1].TrainLoss, Is.LessThan(metrics[0].TrainLoss), "the subclass loss falls");
        // Chance on the balanced 7-class test split is 1/7 = 0.143.
        Assert.That(outcome.Test.BalancedAccuracy, Is.GreaterThan(0.30), "well above chance");
        Assert.That(File.Exists(outcome.Run.ReportFile) && File.Exists(outcome.Run.ResultFile) && File.Exists(outcome.Run.BestCheckpoint));
    }
}
