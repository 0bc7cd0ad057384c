namespace Dicc.Engine.Evaluation;

/// <summary>Names of the metrics a <see cref="RunResult"/> carries (all fractions in [0, 1]; higher is better except for ECE).</summary>
public static class MetricNames
{
    /// <summary>Top-1 accuracy.</summary>
    public const string Accuracy = "accuracy";
    /// <summary>Mean per-class recall.</summary>
    public const string BalancedAccuracy = "balanced_accuracy";
    /// <summary>Mean per-class precision.</summary>
    public const string MacroPrecision = "macro_precision";
    /// <summary>Mean per-class recall (macro).</summary>
    public const string MacroRecall = "macro_recall";
    /// <summary>Mean per-class F1.</summary>
    public const string MacroF1 = "macro_f1";
    /// <summary>Mean one-vs-rest average precision.</summary>
    public const string MeanAveragePrecision = "mean_ap";
    /// <summary>Accuracy over the many-shot classes.</summary>
    public const string ManyShotAccuracy = "many_shot_accuracy";
    /// <summary>Accuracy over the medium-shot classes.</summary>
    public const string MediumShotAccuracy = "medium_shot_accuracy";
    /// <summary>Accuracy over the few-shot classes.</summary>
    public const string FewShotAccuracy = "few_shot_accuracy";

    /// <summary>Expected calibration error over 15 confidence bins (docs/evaluation.md); lower is better.</summary>
    public const string ExpectedCalibrationError = "ece";

    /// <summary>Whether a larger value of <paramref name="metric"/> is better (every metric but <see cref="ExpectedCalibrationError"/>).</summary>
    public static bool HigherIsBetter(string metric) => metric != ExpectedCalibrationError;

    /// <summary>A heading for tables: "test top-1 accuracy" for <see cref="Accuracy"/>, and so on.</summary>
    public static string Describe(string metric) => metric switch
    {
        Accuracy => "test top-1 accuracy",
        BalancedAccuracy => "test balanced accuracy",
        MacroPrecision => "test macro precision",
        MacroRecall => "test macro recall",
        MacroF1 => "test macro-F1",
        MeanAveragePrecision => "test mean average precision",
        ManyShotAccuracy => "test many-shot accuracy",
        MediumShotAccuracy => "test medium-shot accuracy",
        FewShotAccuracy => "test few-shot accuracy",
        ExpectedCalibrationError => "test expected calibration error (15 bins)",
        _ => metric,
    };
}

/// <summary>Well-known values of <see cref="RunResult.Method"/> and <see cref="RunResult.Rule"/>.</summary>
public static class RunLabels
{
    /// <summary>The plain classifier.</summary>
    public const string Baseline = "baseline";
    /// <summary>DICC.</summary>
    public const string Dicc = "dicc";
    /// <summary>No imbalance rule.</summary>
    public const string None = "none";
    /// <summary>Class-balanced resampling.</summary>
    public const string Resample = "resample";
    /// <summary>Class-weighted cross-entropy.</summary>
    public const string Reweight = "reweight";
}

/// <summary>
/// The outcome of one training run, the unit that <see cref="SeedAggregation"/> aggregates over seeds.
/// </summary>
/// <param name="Dataset">Dataset name as it should appear in tables (e.g. "FER2013").</param>
/// <param name="Beta">Imbalance factor n_max / n_min of the training set; null for the full, uncut dataset.</param>
/// <param name="Rule">Rebalancing rule: none, resample, reweight, or another loss/rule name.</param>
/// <param name="Method">baseline or dicc (or another method name).</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Metrics">Metric name (see <see cref="MetricNames"/>) to value.</param>
/// <param name="Settings">What tells this configuration apart from others of the same dataset, beta and rule in one
/// table (e.g. "mapping=sum, warmup-epochs=2"); empty when nothing does. Part of the row's key.</param>
public sealed record RunResult(
    string Dataset,
    double? Beta,
    string Rule,
    string Method,
    long Seed,
    IReadOnlyDictionary<string, double> Metrics,
    string Settings = "")
{
    /// <summary>The fold (counting from 1) when the run is one fold of a k-fold cross-validation, else null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? Fold { get; init; }

    /// <summary>How many folds that cross-validation has (with <see cref="Fold"/>), else null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? Folds { get; init; }

    /// <summary>A run's result with every metric of its test report.</summary>
    public static RunResult FromReport(string dataset, double? beta, string rule, string method, long seed, EvaluationReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var metrics = new Dictionary<string, double>
        {
            [MetricNames.Accuracy] = report.Accuracy,
            [MetricNames.BalancedAccuracy] = report.BalancedAccuracy,
            [MetricNames.MacroPrecision] = report.MacroPrecision,
            [MetricNames.MacroRecall] = report.MacroRecall,
            [MetricNames.MacroF1] = report.MacroF1,
        };
        if (report.MeanAveragePrecision is double map) metrics[MetricNames.MeanAveragePrecision] = map;
        if (report.Calibration is { } calibration) metrics[MetricNames.ExpectedCalibrationError] = calibration.ExpectedCalibrationError;
        foreach (var group in report.ShotGroups?.Groups ?? [])
        {
            if (group.Accuracy is not double a) continue;
            metrics[group.Group switch
            {
                ShotGroup.Many => MetricNames.ManyShotAccuracy,
                ShotGroup.Medium => MetricNames.MediumShotAccuracy,
                _ => MetricNames.FewShotAccuracy,
            }] = a;
        }
        return new RunResult(dataset, beta, rule, method, seed, metrics);
    }
}
