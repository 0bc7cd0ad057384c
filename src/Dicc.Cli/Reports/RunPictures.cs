using System.Globalization;
using Dicc.Engine;
using Dicc.Engine.Evaluation;
using Dicc.Engine.IO;
using Dicc.Engine.Training;
using ScottPlot;

namespace Dicc.Cli.Reports;

/// <summary>
/// The pictures of a run directory (docs/cli.md, "Run pictures"): <c>confusion.png</c> (row-normalised confusion matrix of the
/// test split), <c>pr.png</c> (one-vs-rest precision-recall curve per class with its AP) and <c>curves.png</c>
/// (training loss and validation metrics per epoch, the selected epoch marked) and, for DICC runs, <c>dicc.png</c> (the
/// per-epoch instruments: pseudo-label churn, mapping loss against the prior's entropy, subclass occupancy and the
/// validation prediction histogram). Drawn with ScottPlot; each file is written atomically.
/// </summary>
public static class RunPictures
{
    public const string ConfusionFile = "confusion.png";
    public const string PrecisionRecallFile = "pr.png";
    public const string CurvesFile = "curves.png";
    public const string InstrumentsFile = "dicc.png";
    public const string ReliabilityFile = "reliability.png";

    /// <summary>
    /// Writes every picture the run has data for: confusion and PR from report.json (PR only when it holds
    /// curves), curves from metrics.jsonl (when it has a line). Returns the files written.
    /// </summary>
    public static IReadOnlyList<string> Write(RunDirectory run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var written = new List<string>();
        string context = Describe(run);
        if (File.Exists(run.ReportFile))
        {
            var report = ReadReport(run.ReportFile);
            string confusion = Path.Combine(run.Path, ConfusionFile);
            WriteConfusion(report, confusion, context);
            written.Add(confusion);
            if (report.PrecisionRecallCurves is { Length: > 0 } && report.PrecisionRecallCurves.Any(c => c.Positives > 0))
            {
                string pr = Path.Combine(run.Path, PrecisionRecallFile);
                WritePrecisionRecall(report, pr, context);
                written.Add(pr);
            }
            if (report.Calibration is not null)
            {
                string reliability = Path.Combine(run.Path, ReliabilityFile);
                WriteReliability(report, reliability, context);
                written.Add(reliability);
            }
        }
        var metrics = run.ReadMetrics();
        var config = File.Exists(run.ConfigFile) ? run.ReadConfig() : null;
        if (metrics.Count > 0)
        {
            string curves = Path.Combine(run.Path, CurvesFile);
            WriteCurves(metrics, curves, context, config?.Options.SelectOn ?? ModelSelection.Accuracy);
            written.Add(curves);
        }
        if (metrics.Any(m => m.Dicc is not null))
        {
            string instruments = Path.Combine(run.Path, InstrumentsFile);
            var classNames = config?.Dataset.ClassNames ?? Enumerable.Range(0, metrics.First(m => m.Dicc is not null).Dicc!.Occupancy.Length)
                .Select(c => c.ToString(CultureInfo.InvariantCulture)).ToArray();
            long[]? support = File.Exists(run.ValidationReportFile) ? ReadReport(run.ValidationReportFile).Classes.Select(c => c.Support).ToArray() : null;
            WriteInstruments(metrics, classNames, support, instruments, context);
            written.Add(instruments);
        }
        return written;
    }

    /// <summary>
    /// The confusion matrix as a heat map: each row divided by its true class's count (so the diagonal is
    /// per-class recall), cells labelled with the percentage and the count, a colour bar in percent.
    /// </summary>
    public static void WriteConfusion(EvaluationReport report, string path, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        int c = report.ClassNames.Length;
        var matrix = report.ConfusionMatrix;
        if (matrix.Length != c || matrix.Any(r => r.Length != c))
            throw new InputException($"{path}: the report's confusion matrix is not {c}x{c}.");

        var shares = new double[c, c];
        var support = new long[c];
        for (int r = 0; r < c; r++)
        {
            support[r] = matrix[r].Sum();
            for (int k = 0; k < c; k++) shares[r, k] = support[r] == 0 ? double.NaN : 100.0 * matrix[r][k] / support[r];
        }

        using var plot = NewPlot();
        var heatmap = plot.Add.Heatmap(shares);
        // ScottPlot's Blues runs dark to light; reversed, 0% is white and 100% dark blue.
        heatmap.Colormap = new ScottPlot.Colormaps.Blues().Reversed();
        heatmap.ManualRange = new ScottPlot.Range(0, 100);
        heatmap.NaNCellColor = Colors.LightGray;
        // Row r of the matrix is drawn at y = c - 1 - r, so the first class is at the top as in every confusion matrix.
        heatmap.Rectangle = new CoordinateRect(-0.5, c - 0.5, -0.5, c - 0.5);
        var bar = plot.Add.ColorBar(heatmap);
        bar.Label = "% of the true class";
        bar.LabelStyle.FontSize = 15;
        bar.Axis.TickLabelStyle.FontSize = 13;
        bar.Axis.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(10);

        int imageSide = Math.Clamp(120 + 90 * c, 640, 1400);
        float cellPixels = (imageSide - 260f) / c;
        float fontSize = Math.Clamp(cellPixels * 0.21f, 9f, 18f);
        for (int r = 0; r < c; r++)
            for (int k = 0; k < c; k++)
            {
                if (support[r] == 0) continue;
                double share = shares[r, k];
                var text = plot.Add.Text($"{share.ToString("0.0", CultureInfo.InvariantCulture)}%\n{matrix[r][k].ToString("N0", CultureInfo.InvariantCulture)}", k, c - 1 - r);
                text.Alignment = Alignment.MiddleCenter;
                text.LabelFontSize = fontSize;
                // Empty cells in grey so that the eye finds the non-zero ones.
                text.LabelFontColor = share > 55 ? Colors.White : matrix[r][k] == 0 ? Colors.Gray : Colors.Black;
                text.LabelBold = r == k;
            }

        var positions = Enumerable.Range(0, c).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, report.ClassNames);
        plot.Axes.Left.SetTicks(positions.Select(p => c - 1 - p).ToArray(),
            report.ClassNames.Select((n, i) => $"{n} ({support[i].ToString("N0", CultureInfo.InvariantCulture)})").ToArray());
        // Long names would run into each other under the columns: slant them, and reserve the height they take.
        int longest = report.ClassNames.Max(n => n.Length);
        bool rotate = longest * 8.5 > (imageSide - 260.0) / c;
        float extraHeight = 0;
        if (rotate)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = -40;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
            extraHeight = (float)(longest * 14 * 0.6 * Math.Sin(40 * Math.PI / 180));
            plot.Axes.Bottom.MinimumSize = extraHeight + 50;
        }
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.MinorTickStyle.Length = 0;
        plot.Axes.Left.MinorTickStyle.Length = 0;
        plot.HideGrid();
        plot.Axes.SetLimits(-0.5, c - 0.5, -0.5, c - 0.5);
        plot.XLabel("predicted class", 16);
        plot.YLabel("true class (test images)", 16);
        plot.Title(Title($"Confusion matrix: accuracy {Percent(report.Accuracy)}, balanced {Percent(report.BalancedAccuracy)}, " +
                         $"{report.SampleCount.ToString("N0", CultureInfo.InvariantCulture)} images", context), 17);
        Save(plot, path, imageSide + 140, imageSide + (int)extraHeight);
    }

    /// <summary>One step curve per class (recall on x, precision on y, sklearn's steps), AP in the legend.</summary>
    public static void WritePrecisionRecall(EvaluationReport report, string path, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        var curves = report.PrecisionRecallCurves ?? throw new InputException($"{path}: the report has no precision-recall curves.");
        using var plot = NewPlot();
        // Ten distinct colours, twenty beyond ten classes (paler, but no two curves alike).
        IPalette palette = curves.Length <= 10 ? new ScottPlot.Palettes.Category10() : new ScottPlot.Palettes.Category20();
        foreach (var curve in curves.OrderBy(c => c.ClassIndex))
        {
            if (curve.Positives == 0 || curve.Recall.Length == 0) continue;
            // Arrays go from the lowest threshold (recall 1) to the empty prediction (recall 0, precision 1);
            // a horizontal-then-vertical step draws precision P_n over (R_{n-1}, R_n], the area AP sums.
            var (recall, precision) = StepPoints(curve);
            var line = plot.Add.ScatterLine(recall, precision, palette.GetColor(curve.ClassIndex));
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.LineWidth = 2;
            line.LegendText = $"{curve.ClassName}  AP {Fraction(curve.AveragePrecision)}  (n = {curve.Positives.ToString("N0", CultureInfo.InvariantCulture)})";
        }
        plot.Axes.SetLimits(-0.01, 1.01, -0.01, 1.03);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(0.1);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(0.1);
        plot.XLabel("recall", 16);
        plot.YLabel("precision", 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;
        plot.ShowLegend(Edge.Right);
        plot.Legend.FontSize = 14;
        plot.Legend.FontName = FontName;
        string map = report.MeanAveragePrecision is double m ? $"mean AP {Fraction(m)}" : "no mean AP";
        plot.Title(Title($"Precision-recall per class (one vs rest, test): {map}", context), 17);
        Save(plot, path, 1150, 720);
    }

    /// <summary>
    /// The reliability diagram of the test scores (docs/evaluation.md, "Calibration"): per confidence bin a bar of its
    /// accuracy, a marker at its mean confidence, the sample count above it, and the diagonal a calibrated model follows;
    /// the title states the ECE.
    /// </summary>
    public static void WriteReliability(EvaluationReport report, string path, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        var calibration = report.Calibration ?? throw new InputException($"{path}: the report has no calibration.");
        using var plot = NewPlot();
        var filled = calibration.Bins.Where(b => b.Count > 0).ToArray();
        var bars = filled.Select(b => new Bar
        {
            Position = (b.Lower + b.Upper) / 2, Value = b.Accuracy ?? 0, Size = (b.Upper - b.Lower) * 0.92,
            FillColor = Colors.SteelBlue.WithAlpha(0.8), Label = b.Count.ToString("N0", CultureInfo.InvariantCulture),
        }).ToList();
        var barPlot = plot.Add.Bars(bars);
        barPlot.LegendText = "accuracy of the bin";
        barPlot.ValueLabelStyle.FontSize = 11;
        var confidence = plot.Add.Scatter(filled.Select(b => (b.Lower + b.Upper) / 2).ToArray(), filled.Select(b => b.Confidence ?? 0).ToArray(), Colors.OrangeRed);
        confidence.LineWidth = 0;
        confidence.MarkerSize = 9;
        confidence.LegendText = "mean confidence of the bin";
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.LineColor = Colors.Gray;
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.LegendText = "perfect calibration";
        plot.Axes.SetLimits(0, 1, 0, 1.08);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(0.1);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(0.1);
        plot.XLabel("confidence (highest class probability)", 16);
        plot.YLabel("accuracy", 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;
        plot.ShowLegend(Edge.Right);
        plot.Legend.FontSize = 14;
        plot.Legend.FontName = FontName;
        plot.Title(Title($"Reliability (test, {calibration.Bins.Length} bins, sample counts on the bars): ECE {Fraction(calibration.ExpectedCalibrationError)}", context), 17);
        Save(plot, path, 1150, 720);
    }

    /// <summary>
    /// The curve's points without those that share a recall with a higher threshold: at one recall only the
    /// highest precision (the one AP counts) is kept, so the steps have no downward spikes. The area is unchanged.
    /// </summary>
    internal static (double[] Recall, double[] Precision) StepPoints(PrecisionRecallCurve curve)
    {
        var recall = new List<double>();
        var precision = new List<double>();
        int n = curve.Recall.Length;
        for (int i = 0; i < n; i++)
        {
            // Points run from low to high thresholds; within equal recall, precision rises, so keep the last.
            if (i + 1 < n && curve.Recall[i + 1] == curve.Recall[i]) continue;
            recall.Add(curve.Recall[i]);
            precision.Add(curve.Precision[i]);
        }
        return (recall.ToArray(), precision.ToArray());
    }

    /// <summary>
    /// Two panels over epochs: training loss (and DICC's mapping loss), then validation accuracy, balanced
    /// accuracy and macro-F1 in percent; the epoch selected on validation accuracy is marked in both.
    /// </summary>
    public static void WriteCurves(IReadOnlyList<EpochMetrics> metrics, string path, string? context = null,
        ModelSelection selectedOn = ModelSelection.Accuracy)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (metrics.Count == 0) throw new ArgumentException("No epochs to draw.", nameof(metrics));
        var epochs = metrics.Select(m => (double)m.Epoch).ToArray();
        int? best = metrics.LastOrDefault(m => m.Best) is { } b ? b.Epoch : null;
        bool markers = metrics.Count <= 40;

        var loss = NewPlot();
        var validation = NewPlot();
        var multiplot = new Multiplot(loss);
        multiplot.AddPlot(validation);

        var palette = new ScottPlot.Palettes.Category10();
        AddSeries(loss, epochs, metrics.Select(m => m.TrainLoss), "training loss", palette.GetColor(0), markers);
        if (metrics.Any(m => m.MappingLoss is double v && double.IsFinite(v)))
            AddSeries(loss, epochs, metrics.Select(m => m.MappingLoss ?? double.NaN), "mapping loss (DICC phase 2)", palette.GetColor(1), markers);
        loss.YLabel("loss", 16);
        loss.Title(Title("Training", context), 17);

        bool hasValidation = metrics.Any(m => double.IsFinite(m.ValidationAccuracy));
        if (hasValidation)
        {
            // Dashed lines: on a balanced validation split accuracy and balanced accuracy coincide, and both must show.
            AddSeries(validation, epochs, metrics.Select(m => 100 * m.ValidationAccuracy), "accuracy", palette.GetColor(2), markers, width: 3);
            AddSeries(validation, epochs, metrics.Select(m => 100 * m.ValidationBalancedAccuracy), "balanced accuracy", palette.GetColor(3), markers,
                LinePattern.Dashed);
            AddSeries(validation, epochs, metrics.Select(m => 100 * m.ValidationMacroF1), "macro-F1", palette.GetColor(4), markers, LinePattern.Dotted);
            validation.Axes.Margins(0.03, 0.03, 0.08, 0.2);
            validation.YLabel("validation (%)", 16);
        }
        else
        {
            var note = validation.Add.Text("no validation split: every epoch replaced the selected model", 0, 0);
            note.Alignment = Alignment.MiddleCenter;
            note.LabelFontSize = 15;
            validation.Axes.SetLimits(-1, 1, -1, 1);
        }
        validation.XLabel("epoch", 16);
        validation.Title(hasValidation ? $"Validation (model selection on {selectedOn.Name().Replace('-', ' ')})" : "Validation", 17);

        foreach (var plot in new[] { loss, validation })
        {
            plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
            plot.Axes.Left.TickLabelStyle.FontSize = 14;
            // The same margins in both panels keep their epoch axes aligned.
            plot.Layout.Fixed(new PixelPadding(90, 280, 60, 75));
            // Whole epochs only: fractional ticks mean nothing here.
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            // Explicit, equal epoch limits: the panels' epochs line up.
            double pad = Math.Max(0.5, 0.02 * (epochs[^1] - epochs[0]));
            plot.Axes.SetLimitsX(epochs[0] - pad, epochs[^1] + pad);
            if (best is int e && (plot == loss || hasValidation))
            {
                var marker = plot.Add.VerticalLine(e, 1.5f, Colors.Gray, LinePattern.Dashed);
                marker.LegendText = plot == loss ? "" : $"selected: epoch {e}";
            }
            if (plot == loss || hasValidation)
            {
                // Beside the data, never over it.
                plot.ShowLegend(Edge.Right).Alignment = Alignment.UpperLeft;
                plot.Legend.FontSize = 14;
                plot.Legend.FontName = FontName;
            }
        }
        if (best is int selected && hasValidation)
        {
            var chosen = metrics.Last(m => m.Best);
            var point = validation.Add.Marker(selected, 100 * chosen.ValidationAccuracy, MarkerShape.FilledCircle, 11, palette.GetColor(2));
            point.LegendText = "";
            var label = validation.Add.Text($"epoch {selected}: {Percent(chosen.ValidationAccuracy)}", selected, 100 * chosen.ValidationAccuracy);
            label.Alignment = selected > epochs[^1] - (epochs[^1] - epochs[0]) * 0.25 ? Alignment.LowerRight : Alignment.LowerLeft;
            label.OffsetY = -8;
            label.OffsetX = label.Alignment == Alignment.LowerLeft ? 6 : -6;
            label.LabelFontSize = 13;
            label.LabelBackgroundColor = Colors.White.WithAlpha(0.8);
        }

        using var image = multiplot.Render(1200, 900);
        AtomicFile.WriteAllBytes(path, image.GetImageBytes(ImageFormat.Png, 100));
        loss.Dispose();
        validation.Dispose();
    }

    /// <summary>
    /// DICC's per-epoch instruments in four panels over epochs (docs/method.md, "Instruments"): pseudo-label churn
    /// (overall and per class), the mapping loss against the entropy of the class prior it is trained on, the share of
    /// each class's subclasses that received samples (the legend gives the last epoch's smallest and largest subclass),
    /// and the share of validation images predicted as each class (the legend gives the true share).
    /// </summary>
    public static void WriteInstruments(IReadOnlyList<EpochMetrics> metrics, IReadOnlyList<string> classNames, IReadOnlyList<long>? validationSupport,
        string path, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (!metrics.Any(m => m.Dicc is not null)) throw new ArgumentException("No epoch has DICC instruments.", nameof(metrics));
        var epochs = metrics.Select(m => (double)m.Epoch).ToArray();
        bool markers = metrics.Count <= 40;
        int classes = classNames.Count;
        IPalette palette = classes <= 10 ? new ScottPlot.Palettes.Category10() : new ScottPlot.Palettes.Category20();
        var churn = NewPlot();
        var mapping = NewPlot();
        var occupancy = NewPlot();
        var predictions = NewPlot();
        var multiplot = new Multiplot(churn);
        multiplot.AddPlot(mapping);
        multiplot.AddPlot(occupancy);
        multiplot.AddPlot(predictions);

        AddSeries(churn, epochs, metrics.Select(m => 100 * (m.Dicc?.Churn ?? double.NaN)), "all samples", Colors.Black, markers, width: 3);
        for (int c = 0; c < classes; c++)
            AddSeries(churn, epochs, metrics.Select(m => 100 * (m.Dicc?.ChurnPerClass?[c] ?? double.NaN)), classNames[c], palette.GetColor(c), markers,
                LinePattern.Dashed, width: 1.5f);
        churn.YLabel("changed subclass (%)", 16);
        churn.Title(Title("Pseudo-label churn since the previous epoch (random reassignment: 1 - 1/Ns)", context), 17);

        AddSeries(mapping, epochs, metrics.Select(m => m.MappingLoss ?? double.NaN), "mapping loss (training)", palette.GetColor(1), markers, width: 3);
        if (metrics.Select(m => m.MappingPriorEntropy).FirstOrDefault(v => v is not null) is double prior)
        {
            var line = mapping.Add.HorizontalLine(prior, 2, Colors.Gray, LinePattern.Dashed);
            line.LegendText = $"prior's entropy {prior.ToString("0.000", CultureInfo.InvariantCulture)} (input ignored)";
        }
        if (!metrics.Any(m => m.MappingLoss is double v && double.IsFinite(v)))
        {
            var note = mapping.Add.Text("no trained mapping (sum mapping)", epochs[0], 0);
            note.LabelFontSize = 15;
        }
        mapping.YLabel("cross-entropy (nats)", 16);
        mapping.Title("Label mapping: loss against the class prior", 17);

        var last = metrics.Last(m => m.Dicc is not null).Dicc!;
        for (int c = 0; c < classes; c++)
        {
            var o = last.Occupancy[c];
            AddSeries(occupancy, epochs, metrics.Select(m => m.Dicc is { } d ? 100.0 * d.Occupancy[c].Used / d.Occupancy[c].Subclasses : double.NaN),
                $"{classNames[c]}: {o.Used}/{o.Subclasses} used, sizes {o.Min.ToString("N0", CultureInfo.InvariantCulture)}-{o.Max.ToString("N0", CultureInfo.InvariantCulture)}",
                palette.GetColor(c), markers);
        }
        occupancy.YLabel("subclasses used (%)", 16);
        occupancy.Title("Subclass occupancy (legend: last epoch's assignments per subclass)", 17);

        long total = validationSupport?.Sum() ?? 0;
        for (int c = 0; c < classes; c++)
        {
            string truth = total > 0 ? $" (true {(100.0 * validationSupport![c] / total).ToString("0.0", CultureInfo.InvariantCulture)}%)" : "";
            AddSeries(predictions, epochs, metrics.Select(m => m.ValidationPredictions is { } p && p.Sum() > 0 ? 100.0 * p[c] / p.Sum() : double.NaN),
                classNames[c] + truth, palette.GetColor(c), markers);
        }
        predictions.YLabel("predicted as the class (%)", 16);
        predictions.XLabel("epoch", 16);
        predictions.Title("Validation predictions per class", 17);

        foreach (var plot in new[] { churn, mapping, occupancy, predictions })
        {
            plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
            plot.Axes.Left.TickLabelStyle.FontSize = 14;
            plot.Layout.Fixed(new PixelPadding(90, 380, 60, 60));
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            double pad = Math.Max(0.5, 0.02 * (epochs[^1] - epochs[0]));
            plot.Axes.SetLimitsX(epochs[0] - pad, epochs[^1] + pad);
            // Shares in percent on a fixed 0-100 scale, so that a flat line at 100% reads as such.
            if (plot != mapping) plot.Axes.SetLimitsY(-3, 103);
            plot.ShowLegend(Edge.Right).Alignment = Alignment.UpperLeft;
            plot.Legend.FontSize = 13;
            plot.Legend.FontName = FontName;
        }
        using var image = multiplot.Render(1300, 1600);
        AtomicFile.WriteAllBytes(path, image.GetImageBytes(ImageFormat.Png, 100));
        foreach (var plot in new[] { churn, mapping, occupancy, predictions }) plot.Dispose();
    }

    private static void AddSeries(Plot plot, double[] epochs, IEnumerable<double> values, string name, Color color, bool markers,
        LinePattern? pattern = null, float width = 2)
    {
        // Epochs with a missing value (NaN) are left out, not drawn as zero.
        var ys = values.ToArray();
        var keep = Enumerable.Range(0, ys.Length).Where(i => double.IsFinite(ys[i])).ToArray();
        if (keep.Length == 0) return;
        var line = plot.Add.Scatter(keep.Select(i => epochs[i]).ToArray(), keep.Select(i => ys[i]).ToArray(), color);
        line.LineWidth = width;
        line.LinePattern = pattern ?? LinePattern.Solid;
        line.MarkerSize = markers ? 6 : 0;
        line.LegendText = name;
    }

    /// <summary>A sans-serif font that is installed (ScottPlot's default is serif), else ScottPlot's own choice.</summary>
    internal static string FontName { get; } = PickFont();

    private static string PickFont()
    {
        var installed = SkiaSharp.SKFontManager.Default.GetFontFamilies().ToHashSet(StringComparer.OrdinalIgnoreCase);
        return new[] { "DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Noto Sans" }.FirstOrDefault(installed.Contains) ?? Fonts.Default;
    }

    private static Plot NewPlot()
    {
        var plot = new Plot();
        plot.Font.Set(FontName);
        return plot;
    }

    private static void Save(Plot plot, string path, int width, int height) =>
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));

    private static string Title(string title, string? context) => string.IsNullOrEmpty(context) ? title : $"{title}\n{context}";

    private static string Percent(double fraction) =>
        double.IsFinite(fraction) ? (100 * fraction).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "n/a";

    private static string Fraction(double? value) =>
        value is double v && double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";

    private static EvaluationReport ReadReport(string file)
    {
        try
        {
            return EvaluationReport.Load(file);
        }
        catch (InvalidDataException e)
        {
            throw new InputException(e.Message, e);
        }
    }

    /// <summary>"DICC, resample, fer2013 (β 10), seed 1" from config.json, or the folder name when there is none.</summary>
    private static string Describe(RunDirectory run)
    {
        if (!File.Exists(run.ConfigFile)) return Path.GetFileName(run.Path);
        var config = run.ReadConfig();
        var o = config.Options;
        string method = o.Method == TrainingMethod.Dicc ? "DICC" : "baseline";
        string beta = config.Dataset.Beta is double b ? $" (β {b.ToString("0.##", CultureInfo.InvariantCulture)})" : "";
        return $"{method}, rule {o.Rule.ToString().ToLowerInvariant()}, {config.Dataset.Name}{beta}, {o.Arch.ToString().ToLowerInvariant()}, seed {o.Seed}";
    }
}
