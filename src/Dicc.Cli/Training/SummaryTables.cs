using System.Text.Json;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Training;
using Spectre.Console;

namespace Dicc.Cli.Training;

/// <summary>Tables printed at the end of training and evaluation.</summary>
public static class SummaryTables
{
    private static string F(double v) => TrainingDisplay.F(v);
    private static string P(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + "%";

    public static void PrintOutcome(IAnsiConsole console, OutputMode mode, TrainingOutcome outcome, TrainingOptions options)
    {
        if (mode == OutputMode.Json)
        {
            var t = outcome.Test;
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["event"] = "result", ["run"] = outcome.Run.Path, ["status"] = outcome.Status.ToString().ToLowerInvariant(),
                ["best_epoch"] = outcome.BestEpoch, ["select_on"] = options.SelectOn.Name(),
                ["best_val_score"] = double.IsFinite(outcome.BestValidationScore) ? outcome.BestValidationScore : null,
                ["test_accuracy"] = t?.Accuracy, ["test_balanced_accuracy"] = t?.BalancedAccuracy, ["test_macro_f1"] = t?.MacroF1,
                ["test_mean_ap"] = t?.MeanAveragePrecision, ["test_ece"] = t?.Calibration?.ExpectedCalibrationError,
            }, CliJsonObjects.Options));
            return;
        }
        if (outcome.Status != RunStatus.Completed) return;
        var table = new Table().Title($"[bold]{Markup.Escape(Path.GetFileName(outcome.Run.Path))}[/]").AddColumn("").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("method / rule", $"{options.Method.ToString().ToLowerInvariant()} / {options.Rule.ToString().ToLowerInvariant()}");
        table.AddRow($"selected epoch (validation {options.SelectOn.Name()})",
            options.SelectOn == ModelSelection.Last ? $"{outcome.BestEpoch} (last)" : $"{outcome.BestEpoch} ({P(outcome.BestValidationScore)})");
        if (outcome.Test is { } test)
        {
            table.AddRow("test top-1 accuracy" + (options.TenCropTest ? " (ten-crop)" : ""), P(test.Accuracy));
            table.AddRow("test balanced accuracy", P(test.BalancedAccuracy));
            table.AddRow("test macro-F1", P(test.MacroF1));
            if (test.MeanAveragePrecision is double map) table.AddRow("test mean AP", P(map));
            if (test.Calibration is { } calibration)
                table.AddRow($"test ECE ({calibration.Bins.Length} bins; lower is better)", P(calibration.ExpectedCalibrationError));
            foreach (var g in test.ShotGroups?.Groups ?? [])
                if (g.Accuracy is double a) table.AddRow($"test {g.Group.ToString().ToLowerInvariant()}-shot accuracy", P(a));
        }
        table.AddRow("run directory", Markup.Escape(outcome.Run.Path));
        console.Write(table);
        if (outcome.Test is { } report) console.Write(PerClass(report));
    }

    /// <summary>
    /// Precision, recall, F1 and AP per class of a split; "-" where a figure is undefined: recall, F1 and AP of a
    /// class with no images in the split, precision of a class that was never predicted.
    /// </summary>
    public static Table PerClass(EvaluationReport report, string split = "test")
    {
        var t = new Table().Title($"per class ({split})").AddColumn("class");
        foreach (var h in new[] { "samples", "precision", "recall", "F1", "AP" }) t.AddColumn(new TableColumn(h).RightAligned());
        for (int i = 0; i < report.Classes.Length; i++)
        {
            var c = report.Classes[i];
            long predicted = report.ConfusionMatrix.Sum(row => row[i]);
            bool present = c.Support > 0;
            t.AddRow(Markup.Escape(c.Name), c.Support.ToString(System.Globalization.CultureInfo.InvariantCulture),
                predicted > 0 ? P(c.Precision) : "-", present ? P(c.Recall) : "-", present ? P(c.F1) : "-",
                present && c.AveragePrecision is double ap ? P(ap) : "-");
        }
        return t;
    }

    /// <summary>A k-fold cross-validation's folds (a row each), mean ± std; a column per cross-validation (<see cref="FoldAggregation"/>).</summary>
    public static Table FoldTable(FoldTable table, int decimals = 2)
    {
        var (headers, rows) = FoldAggregation.ToLayout(table, decimals);
        // (The caption goes below as a line of its own: as a table caption it would wrap to the table's width.)
        var t = new Table().Title($"[bold]{Markup.Escape(char.ToUpperInvariant(MetricNames.Describe(table.Metric)[0]) + MetricNames.Describe(table.Metric)[1..])} (%) per fold[/]");
        for (int i = 0; i < headers.Length; i++)
        {
            var column = new TableColumn(Markup.Escape(headers[i]));
            t.AddColumn(i == 0 ? column : column.RightAligned());
        }
        foreach (var row in rows) t.AddRow(row.Select(Markup.Escape).ToArray());
        return t;
    }

    /// <summary>The paper's layout from <see cref="SeedAggregation"/>: rule x baseline / DICC, mean +- std, best of seeds.</summary>
    public static Table ResultTable(ResultTable table)
    {
        var layout = ResultTableFormat.ToLayout(table);
        var t = new Table();
        if (!string.IsNullOrEmpty(layout.Caption)) t.Caption(Markup.Escape(layout.Caption));
        for (int i = 0; i < layout.Headers.Length; i++)
        {
            var column = new TableColumn(Markup.Escape(layout.Headers[i]));
            if (layout.NumericColumns[i]) column.RightAligned();
            t.AddColumn(column);
        }
        foreach (var row in layout.Rows) t.AddRow(row.Select(Markup.Escape).ToArray());
        return t;
    }
}
