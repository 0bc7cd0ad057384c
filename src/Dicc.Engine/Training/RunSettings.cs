using System.Globalization;
using Dicc.Engine.Clustering;

namespace Dicc.Engine.Training;

/// <summary>One setting of a run as a comparison table names it: <c>mapping=sum</c>.</summary>
/// <param name="Name">The setting's name (the <c>dicc train</c> option without its dashes).</param>
/// <param name="Value">Its value as text.</param>
/// <param name="DiccOnly">Whether only DICC runs use it (a baseline run is never labelled with it).</param>
/// <param name="Plain">For a setting that makes the baseline another method (a loss, a head, a frozen backbone), its
/// plain value (<c>ce</c>, <c>linear</c>; "" for settings that only exist when set): a table names the setting whenever
/// a run differs from it, even when all runs compared share that value, so that a table of focal runs alone does not
/// read as the plain baseline. Null for the other settings, which are named only where they tell runs apart.</param>
public sealed record RunSetting(string Name, string Value, bool DiccOnly, string? Plain = null)
{
    /// <summary><c>name=value</c>, as a table's label shows it.</summary>
    public override string ToString() => $"{Name}={Value}";
}

/// <summary>
/// The settings that define what a run computed, as named values, so that a comparison of runs can say which
/// settings tell two configurations apart (docs/evaluation.md, "Comparing variants"). The seed, the method, the
/// rule and the data are not among them (a table shows those already), nor settings that do not change results
/// (logging, evaluation batch size) or only name a bundle of others (the preset).
/// </summary>
public static class RunSettings
{
    /// <summary>The settings of <paramref name="o"/>; <paramref name="subclassCounts"/>, when known, is shown beside a named plan.</summary>
    public static IReadOnlyList<RunSetting> Of(TrainingOptions o, int[]? subclassCounts = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        static string N(double v) => v.ToString("G", CultureInfo.InvariantCulture);
        static string Lower<T>(T v) where T : struct, Enum => v.ToString().ToLowerInvariant();
        string plan = subclassCounts is null || o.Subclasses.Contains(',', StringComparison.Ordinal)
            ? o.Subclasses : $"{o.Subclasses} ({string.Join(",", subclassCounts)})";
        var loss = new List<RunSetting> { new("loss", o.Loss.Name(), false, "ce"), new("cb-weights", o.CbWeights ? "yes" : "no", false, "no"),
            new("drw-epoch", o.DrwEpoch.ToString(CultureInfo.InvariantCulture), false, "0"), new("posthoc-tau", N(o.PosthocTau), false, "0") };
        // A loss's own settings only where that loss reads them (a cross-entropy run is not labelled with a focal gamma).
        if (o.Loss == LossKind.Focal) loss.Add(new("focal-gamma", N(o.FocalGamma), false));
        if (o.Loss == LossKind.Ldam) { loss.Add(new("ldam-scale", N(o.LdamScale), false)); loss.Add(new("ldam-max-margin", N(o.LdamMaxMargin), false)); }
        if (o.Loss == LossKind.LogitAdjusted) loss.Add(new("tau", N(o.Tau), false));
        var model = new List<RunSetting> { new("head", Lower(o.Head), false, "linear") };
        // Where the weights came from is shown as whether they did (the run directory differs from seed to seed).
        if (o.InitFrom is not null)
        {
            model.Add(new("init-from", "run", false, ""));
            model.Add(new("freeze", Lower(o.Freeze), false, ""));
            model.Add(new("reset-head", o.ResetHead ? "yes" : "no", false, ""));
        }
        return
        [
            .. loss,
            .. model,
            new("arch", Lower(o.Arch), false),
            new("width", N(o.Width), false),
            new("dropout", N(o.Dropout), false),
            new("crop", o.Crop.ToString(CultureInfo.InvariantCulture), false),
            new("epochs", o.Epochs.ToString(CultureInfo.InvariantCulture), false),
            new("batch", o.BatchSize.ToString(CultureInfo.InvariantCulture), false),
            new("lr", N(o.LearningRate), false),
            new("momentum", N(o.Momentum), false),
            new("wd", N(o.WeightDecay), false),
            new("schedule", o.Schedule, false),
            new("ten-crop", o.TenCropTest ? "yes" : "no", false),
            new("shot-groups", o.ShotGroups, false),
            new("select-on", o.SelectOn.Name(), false),
            new("subclasses", plan, true),
            new("partition", o.Partition.Name(), true),
            new("ema-decay", N(o.EmaDecay), true),
            new("mapping", Lower(o.Mapping), true),
            new("mapping-hidden", o.MappingHidden.ToString(CultureInfo.InvariantCulture), true),
            new("mapping-input", Lower(o.MappingInput), true),
            new("mapping-lr-scale", N(o.MappingLrScale), true),
            new("warmup-epochs", o.WarmupEpochs.ToString(CultureInfo.InvariantCulture), true),
            new("joint-weight", N(o.JointWeight), true),
        ];
    }
}
