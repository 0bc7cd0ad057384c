using Dicc.Engine.IO;

namespace Dicc.Engine.Evaluation;

/// <summary>
/// One class's figures. Where a ratio is undefined it is 0, as scikit-learn with <c>zero_division=0</c>:
/// precision when the class is never predicted, recall when it has no samples, F1 when both are 0.
/// </summary>
/// <param name="Name">Class name.</param>
/// <param name="Support">Test samples of this class (row sum of the confusion matrix).</param>
/// <param name="Predicted">Test samples predicted as this class (column sum).</param>
/// <param name="TruePositives">Samples of this class predicted as this class (the diagonal entry).</param>
/// <param name="Precision">TP / predicted; 0 when the class is never predicted.</param>
/// <param name="Recall">TP / support; 0 when the class has no test samples.</param>
/// <param name="F1">2 TP / (2 TP + FP + FN), which equals 2 P R / (P + R) wherever that is defined.</param>
/// <param name="AveragePrecision">One-vs-rest AP from the scores; null without scores or without samples of the class.</param>
/// <param name="TrainCount">Training samples of this class, when given.</param>
/// <param name="Group">Many / medium / few-shot group, when training counts were given.</param>
public sealed record ClassReport(
    string Name,
    long Support,
    long Predicted,
    long TruePositives,
    double Precision,
    double Recall,
    double F1,
    double? AveragePrecision,
    long? TrainCount,
    ShotGroup? Group);

/// <summary>Accuracy of one many / medium / few-shot group.</summary>
/// <param name="Group">Which group.</param>
/// <param name="Classes">Names of the classes in the group.</param>
/// <param name="TestSamples">Test samples whose true class is in the group.</param>
/// <param name="Accuracy">Mean recall of the group's classes that have test samples (the long-tail literature's
/// convention); null when none has.</param>
/// <param name="SampleAccuracy">Correct / test samples over the group, which weights classes by test support.</param>
public sealed record ShotGroupResult(ShotGroup Group, string[] Classes, long TestSamples, double? Accuracy, double? SampleAccuracy);

/// <summary>The many / medium / few-shot split used and each group's accuracy.</summary>
public sealed record ShotGroupReport(string Rule, ShotGroupResult[] Groups);

/// <summary>
/// Everything <c>report.json</c> holds about one evaluation. All ratios are fractions in [0, 1].
/// </summary>
/// <param name="ClassNames">Class names in label order.</param>
/// <param name="SampleCount">Samples evaluated.</param>
/// <param name="Accuracy">Top-1 accuracy: correct / samples.</param>
/// <param name="BalancedAccuracy">Mean recall over the classes that have test samples (scikit-learn's balanced_accuracy_score).</param>
/// <param name="MacroPrecision">Mean precision over the classes that occur in the truth or the predictions
/// (scikit-learn's default label set); a class in neither is left out.</param>
/// <param name="MacroRecall">Mean recall over the same classes as <paramref name="MacroPrecision"/>.</param>
/// <param name="MacroF1">Mean F1 over the same classes as <paramref name="MacroPrecision"/>.</param>
/// <param name="MeanAveragePrecision">Mean AP over the classes with test samples; null without scores.</param>
/// <param name="Classes">Per-class figures in label order.</param>
/// <param name="ConfusionMatrix">Counts, rows = true class, columns = predicted class.</param>
/// <param name="PrecisionRecallCurves">One per class, when scores were given.</param>
/// <param name="ShotGroups">Group accuracies, when training counts were given.</param>
/// <param name="Calibration">Expected calibration error over 15 confidence bins and the bins (a reliability diagram's
/// data), when scores were given; null in reports written before it existed.</param>
public sealed record EvaluationReport(
    string[] ClassNames,
    long SampleCount,
    double Accuracy,
    double BalancedAccuracy,
    double MacroPrecision,
    double MacroRecall,
    double MacroF1,
    double? MeanAveragePrecision,
    ClassReport[] Classes,
    long[][] ConfusionMatrix,
    PrecisionRecallCurve[]? PrecisionRecallCurves,
    ShotGroupReport? ShotGroups,
    CalibrationReport? Calibration = null)
{
    /// <summary>
    /// Evaluates one set of predictions. <paramref name="scores"/> (row-major [N, C], e.g. softmax
    /// probabilities) are optional and give PR curves and AP; <paramref name="trainCounts"/> (per class)
    /// are optional and give the shot groups, by <paramref name="shotRule"/> (default: rank thirds).
    /// </summary>
    public static EvaluationReport Compute(
        IReadOnlyList<string> classNames,
        ReadOnlySpan<int> labels,
        ReadOnlySpan<int> predictions,
        ReadOnlySpan<float> scores = default,
        IReadOnlyList<long>? trainCounts = null,
        ShotGroupRule? shotRule = null)
    {
        var accumulator = new EvaluationAccumulator(classNames, keepScores: !scores.IsEmpty, expectedSamples: labels.Length);
        if (scores.IsEmpty) accumulator.AddPredictions(labels, predictions);
        else accumulator.Add(labels, predictions, scores);
        return accumulator.ToReport(trainCounts, shotRule);
    }

    /// <summary>The report as indented JSON (camelCase names; undefined values are null).</summary>
    public string ToJson() => EvaluationJson.Serialize(this);

    /// <summary>Reads a report written by <see cref="ToJson"/>; <paramref name="source"/> names the file in errors.</summary>
    public static EvaluationReport FromJson(string json, string source = "report.json") =>
        EvaluationJson.DeserializeReport(json, source);

    /// <summary>Writes the report to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>Reads a report from <paramref name="path"/>.</summary>
    public static EvaluationReport Load(string path) => FromJson(File.ReadAllText(path), path);
}
