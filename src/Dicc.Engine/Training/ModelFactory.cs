using Dicc.Engine.Backends;
using Dicc.Engine.Clustering;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Models;

namespace Dicc.Engine.Training;

/// <summary>Builds the model a <see cref="TrainingOptions"/> describes.</summary>
public static class ModelFactory
{
    /// <param name="backend">Where the model lives.</param>
    /// <param name="options">Architecture, method, rule and optimiser settings.</param>
    /// <param name="classes">C, the number of true classes.</param>
    /// <param name="trainCounts">Training images per class: resolves <c>auto</c> subclass numbers and reweight weights.</param>
    /// <param name="subclassCounts">Already resolved subclass numbers (from a run's config.json), overriding <c>auto</c>.</param>
    public static ExpressionModel Create(Backend backend, TrainingOptions options, int classes, ReadOnlySpan<int> trainCounts,
        int[]? subclassCounts = null)
    {
        var vgg = new VggOptions { Depth = options.Arch, InputSize = options.Crop, Width = options.Width, Dropout = options.Dropout, Head = options.Head };
        var weights = options.Rule.LossWeights(trainCounts)?.Select(w => (float)w).ToArray();
        var training = new ModelTrainingOptions
        {
            Sgd = options.Sgd, ClassWeights = weights, Seed = options.Seed, Loss = options.LossOptions,
            ClassCounts = trainCounts.IsEmpty ? null : trainCounts.ToArray(),
            FreezeBackbone = options.Freeze == FreezeKind.Backbone,
            PosthocOffsets = options.PosthocTau == 0 ? null : [.. ClassificationLoss.LogPriors(trainCounts).Select(v => (float)(-options.PosthocTau * v))],
        };
        if (options.Method == TrainingMethod.Baseline) return new BaselineModel(backend, vgg, classes, training);
        var plan = subclassCounts is not null ? SubclassPlan.FromCounts(subclassCounts) : Plan(options, classes, trainCounts);
        var dicc = new DiccOptions
        {
            Clustering = new ClusteringConfig(plan, Vgg.FeatureSize(vgg), options.Partition, options.EmaDecay), Mapping = options.Mapping,
            MappingHidden = options.MappingHidden, MappingLearningRateScale = options.MappingLrScale, MappingInput = options.MappingInput,
            WarmupEpochs = options.WarmupEpochs, JointWeight = options.JointWeight,
        };
        return new DiccModel(backend, vgg, classes, dicc, training);
    }

    /// <summary>The subclass numbers a DICC model of <paramref name="options"/> gets (what config.json records); null for other methods.</summary>
    public static int[]? SubclassCounts(TrainingOptions options, int classes, ReadOnlySpan<int> trainCounts) =>
        options.Method == TrainingMethod.Dicc ? Plan(options, classes, trainCounts).Counts.ToArray() : null;

    private static SubclassPlan Plan(TrainingOptions options, int classes, ReadOnlySpan<int> trainCounts) =>
        SubclassPlan.Parse(options.Subclasses, classes, trainCounts);
}
