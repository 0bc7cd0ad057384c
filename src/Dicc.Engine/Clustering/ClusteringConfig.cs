namespace Dicc.Engine.Clustering;

/// <summary>
/// Everything that defines a DICC clustering step (docs/method.md, "One DICC step"): the subclass plan
/// (Ns per class, hence C and K), the feature width M, the partition mode and the EMA decay m of the class
/// centres. Checked once, here; immutable afterwards. Training options, the DICC model, <c>dicc cluster</c>,
/// the CPU reference and the GPU module all take this one record.
/// </summary>
public sealed record ClusteringConfig
{
    /// <summary>m = 0.99: the old centre keeps 99% per batch (docs/method.md explains the paper's two readings).</summary>
    public const double DefaultEmaDecay = 0.99;

    /// <summary>The paper's equations (equal distance intervals).</summary>
    public const PartitionMode DefaultPartition = PartitionMode.Interval;

    /// <summary>A clustering configuration; throws an <see cref="InputException"/> naming the parameter (featureDim, partition, emaDecay) when a value is out of range.</summary>
    /// <param name="plan">Subclasses per class.</param>
    /// <param name="featureDim">M, the width of the features.</param>
    /// <param name="partition">Interval (the paper's equations) or rank (its Algorithm 1).</param>
    /// <param name="emaDecay">m in [0, 1]: the share of the old centre kept per batch.</param>
    public ClusteringConfig(SubclassPlan plan, int featureDim, PartitionMode partition = DefaultPartition, double emaDecay = DefaultEmaDecay)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (featureDim < 1)
            throw new InputException($"featureDim must be at least 1, got {featureDim}.") { Parameter = "featureDim" };
        if (!Enum.IsDefined(partition))
            throw new InputException($"partition {(int)partition} is not a partition mode (interval or rank).") { Parameter = "partition" };
        ValidateEmaDecay(emaDecay);
        Plan = plan;
        FeatureDim = featureDim;
        Partition = partition;
        EmaDecay = emaDecay;
    }

    /// <summary>Subclass numbers Ns per class.</summary>
    public SubclassPlan Plan { get; }

    /// <summary>M, the feature width (512 for the VGG backbones at width 1).</summary>
    public int FeatureDim { get; }

    /// <summary>How a class's samples are split into its subclasses by distance.</summary>
    public PartitionMode Partition { get; }

    /// <summary>m in <c>mu = m * mu + (1 - m) * y</c>, in [0, 1].</summary>
    public double EmaDecay { get; }

    /// <summary>C.</summary>
    public int ClassCount => Plan.ClassCount;

    /// <summary>K, the number of pseudo-labels.</summary>
    public int SubclassCount => Plan.TotalSubclasses;

    /// <summary>The one check of an EMA decay, for settings that hold one before a plan exists (training options).</summary>
    public static void ValidateEmaDecay(double emaDecay)
    {
        if (!(emaDecay >= 0 && emaDecay <= 1))
            throw new InputException($"emaDecay must be in [0, 1], got {emaDecay.ToString(System.Globalization.CultureInfo.InvariantCulture)}.")
                { Parameter = "emaDecay" };
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"plan {Plan}, {FeatureDim} features, {Partition.Name()} partition, EMA decay {EmaDecay.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
}
