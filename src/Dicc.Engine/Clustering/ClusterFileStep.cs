using Dicc.Engine.IO;

namespace Dicc.Engine.Clustering;

/// <summary>The options of <c>dicc cluster</c> (docs/method.md, ".npy files and dicc cluster"): one DICC step on arrays stored as <c>.npy</c> files.</summary>
public sealed record ClusterFileOptions
{
    /// <summary><c>--features</c>: [N, M] float32 or float64 (float64 is rounded to float32).</summary>
    public required string FeaturesPath { get; init; }

    /// <summary><c>--labels</c>: [N] integers in [0, C) (int64 as NumPy saves them, int32 or uint8).</summary>
    public required string LabelsPath { get; init; }

    /// <summary><c>--subclasses</c>: a list, a preset name, or <c>auto</c> (counted from the labels file).</summary>
    public required string Subclasses { get; init; }

    /// <summary><c>--out</c>: where the pseudo-labels go, [N] int64.</summary>
    public required string OutPath { get; init; }

    /// <summary><c>--partition</c>.</summary>
    public PartitionMode Partition { get; init; } = ClusteringConfig.DefaultPartition;

    /// <summary><c>--centers</c>: [C, M] centres to start from; every class then counts as seen.</summary>
    public string? CentersPath { get; init; }

    /// <summary><c>--ema-decay</c>.</summary>
    public double EmaDecay { get; init; } = ClusteringConfig.DefaultEmaDecay;

    /// <summary><c>--centers-out</c>: where the updated centres go, [C, M] float32.</summary>
    public string? CentersOutPath { get; init; }
}

/// <summary>What <see cref="ClusterFileStep.Run"/> did, for the command's summary line.</summary>
public sealed record ClusterFileResult(
    SubclassPlan Plan, int SampleCount, int FeatureDim, int[] ClassCounts, int[] PseudoLabels, float[] Centers);

/// <summary>
/// The library side of <c>dicc cluster</c>: reads features, labels and optional centres, runs one
/// <see cref="IntraClassClustering"/> step, writes the pseudo-labels (and centres). Without centres the
/// state starts empty (each present class's centre becomes its batch mean). Bad input throws
/// <see cref="NpyFormatException"/> (a file), <see cref="SubclassPlanException"/> (the plan) or
/// <see cref="ClusterInputException"/> (files that disagree), each with a message naming the culprit.
/// </summary>
public static class ClusterFileStep
{
    /// <summary>Runs one clustering step on the .npy files the options name and writes the results (<c>dicc cluster</c>).</summary>
    public static ClusterFileResult Run(ClusterFileOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var featureArray = Npy.Read(options.FeaturesPath);
        if (featureArray.DType is not (NpyDType.Float32 or NpyDType.Float64))
            throw new NpyFormatException(options.FeaturesPath, $"features must be float32 or float64, got {NpyDTypes.Name(featureArray.DType)}.");
        var (n, m) = featureArray.RequireMatrix("features");
        var labelArray = Npy.Read(options.LabelsPath);
        int labelCount = labelArray.RequireVector("labels");
        if (labelCount != n)
            throw new ClusterInputException($"{options.LabelsPath} holds {labelCount} labels but {options.FeaturesPath} holds {n} feature rows.");
        if (m < 1) throw new NpyFormatException(options.FeaturesPath, $"features have no columns (shape {featureArray.ShapeText}).");
        int[] labels = labelArray.ToInt32Array();

        float[]? initialCenters = null;
        int centerRows = 0;
        if (options.CentersPath is not null)
        {
            var centerArray = Npy.Read(options.CentersPath);
            if (centerArray.DType is not (NpyDType.Float32 or NpyDType.Float64))
                throw new NpyFormatException(options.CentersPath, $"centres must be float32 or float64, got {NpyDTypes.Name(centerArray.DType)}.");
            (centerRows, int centerColumns) = centerArray.RequireMatrix("centres");
            if (centerColumns != m)
                throw new ClusterInputException($"{options.CentersPath} has {centerColumns} columns but the features in {options.FeaturesPath} have {m}.");
            initialCenters = centerArray.ToSingleArray();
            for (int k = 0; k < initialCenters.Length; k++)
                if (!float.IsFinite(initialCenters[k]))
                    throw new NpyFormatException(options.CentersPath, $"centre {k / m}, feature {k % m} is not finite ({initialCenters[k]}).");
        }

        int maxLabel = -1;
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] < 0) throw new ClusterInputException($"{options.LabelsPath}: label {i} is {labels[i]}; labels must be >= 0.");
            maxLabel = Math.Max(maxLabel, labels[i]);
        }

        var plan = ResolvePlan(options.Subclasses, centerRows, maxLabel, labels, options);
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= plan.ClassCount)
                throw new ClusterInputException(
                    $"{options.LabelsPath}: label {i} is {labels[i]}, but the subclass plan '{options.Subclasses}' has {plan.ClassCount} classes.");
        if (initialCenters is not null && centerRows != plan.ClassCount)
            throw new ClusterInputException(
                $"{options.CentersPath} has {centerRows} centres but the subclass plan '{options.Subclasses}' has {plan.ClassCount} classes.");

        float[] features = featureArray.ToSingleArray();
        for (int k = 0; k < features.Length; k++)
            if (!float.IsFinite(features[k]))
                throw new NpyFormatException(options.FeaturesPath, $"row {k / m}, column {k % m} is not finite ({features[k]}) after conversion to float32.");

        var clustering = new IntraClassClustering(new ClusteringConfig(plan, m, options.Partition, options.EmaDecay), n);
        if (initialCenters is not null) clustering.SetCenters(initialCenters);
        var pseudo = new int[n];
        clustering.Assign(features, labels, pseudo);

        var pseudo64 = Array.ConvertAll(pseudo, static p => (long)p);
        Npy.Write<long>(options.OutPath, pseudo64, n);
        float[] centers = clustering.Centers.ToArray();
        if (options.CentersOutPath is not null)
            Npy.Write<float>(options.CentersOutPath, centers, plan.ClassCount, m);
        return new ClusterFileResult(plan, n, m, clustering.LastClassCounts.ToArray(), pseudo, centers);
    }

    // The class count: the plan's length (a list or preset); for auto, the centres' rows when given, else
    // the largest label + 1.
    private static SubclassPlan ResolvePlan(string text, int centerRows, int maxLabel, int[] labels, ClusterFileOptions options)
    {
        int? declared = SubclassPlan.DeclaredClassCount(text);
        int classCount = declared ?? (centerRows > 0 ? centerRows : maxLabel + 1);
        if (classCount < 1) throw new ClusterInputException($"{options.LabelsPath} holds no labels, so 'auto' has no classes to count.");

        if (declared is not null) return SubclassPlan.Parse(text, classCount);
        var counts = new int[classCount];
        foreach (int label in labels)
            if (label < classCount) counts[label]++;
        return SubclassPlan.Parse(text, classCount, counts);
    }
}

/// <summary>Inputs of <c>dicc cluster</c> that disagree with each other; the message names the files.</summary>
public sealed class ClusterInputException(string message) : InputException(message);
