using System.Globalization;
using System.Text;

namespace Dicc.Engine.Evaluation;

/// <summary>A table as text cells: what a Markdown file, a console table widget or a CSV writer needs.</summary>
/// <param name="Headers">Column headings.</param>
/// <param name="NumericColumns">Per column, whether it holds numbers (right-aligned).</param>
/// <param name="Rows">Cells, one array per row, aligned with <paramref name="Headers"/>.</param>
/// <param name="Caption">What the numbers are (metric, unit, statistics) in one sentence.</param>
public sealed record TableLayout(string[] Headers, bool[] NumericColumns, string[][] Rows, string Caption);

/// <summary>
/// Renders a <see cref="ResultTable"/>: per method "mean ± std", "min" and "best of n seeds" columns, plus
/// "Δ mean" (DICC minus baseline) when both are present. Values are shown in percent by default.
/// </summary>
public static class ResultTableFormat
{
    private const string Missing = "—";

    /// <summary>Column heading of a method: "DICC" for dicc, the name itself otherwise.</summary>
    public static string MethodTitle(string method) =>
        string.Equals(method, RunLabels.Dicc, StringComparison.OrdinalIgnoreCase) ? "DICC" : method;

    /// <summary>The table as text cells.</summary>
    /// <param name="table">The aggregated table.</param>
    /// <param name="decimals">Digits after the point.</param>
    /// <param name="percent">Multiply by 100 (metrics are fractions; the paper prints percent).</param>
    public static TableLayout ToLayout(ResultTable table, int decimals = 2, bool percent = true)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfNegative(decimals);
        double scale = percent ? 100 : 1;
        string F(double v) => (v * scale).ToString("F" + decimals, CultureInfo.InvariantCulture);
        int? uniform = table.UniformSeedCount;
        string bestIs = table.HigherIsBetter ? "(= max)" : "(= min)";

        bool settings = HasSettings(table);
        var headers = new List<string> { "dataset", "β", "rule" };
        var numeric = new List<bool> { false, true, false };
        if (settings)
        {
            headers.Add("settings");
            numeric.Add(false);
        }
        foreach (string m in table.Methods)
        {
            string title = MethodTitle(m);
            headers.Add(uniform.HasValue ? $"{title} mean ± std" : $"{title} mean ± std (n)");
            headers.Add(table.HigherIsBetter ? $"{title} min" : $"{title} max");
            headers.Add(uniform.HasValue ? $"{title} best of {uniform} seeds {bestIs}" : $"{title} best of n seeds {bestIs}");
            numeric.AddRange([true, true, true]);
        }
        int baseline = Array.FindIndex(table.Methods, m => m == RunLabels.Baseline);
        int dicc = Array.FindIndex(table.Methods, m => m == RunLabels.Dicc);
        bool delta = baseline >= 0 && dicc >= 0;
        if (delta)
        {
            headers.Add("Δ mean (DICC − baseline)");
            numeric.Add(true);
        }

        var rows = new List<string[]>();
        foreach (var row in table.Rows)
        {
            var cells = new List<string> { row.Dataset, SeedAggregation.FormatBeta(row.Beta), row.Rule };
            if (settings) cells.Add(row.Settings.Length > 0 ? row.Settings : Missing);
            foreach (var cell in row.Cells)
            {
                if (cell is null)
                {
                    cells.AddRange([Missing, Missing, Missing]);
                    continue;
                }
                string meanStd = $"{F(cell.Mean)} ± {(cell.StandardDeviation is double s ? F(s) : Missing)}";
                cells.Add(uniform.HasValue ? meanStd : $"{meanStd} (n={cell.Count})");
                cells.Add(F(table.HigherIsBetter ? cell.Min : cell.Max));
                cells.Add(F(cell.Best));
            }
            if (delta)
            {
                var b = row.Cells[baseline];
                var d = row.Cells[dicc];
                cells.Add(b is null || d is null ? Missing : Signed((d.Mean - b.Mean) * scale, decimals));
            }
            rows.Add(cells.ToArray());
        }

        string unit = percent ? " (%)" : "";
        string best = table.HigherIsBetter ? "the maximum" : "the minimum";
        string worst = table.HigherIsBetter ? "min" : "max";
        string caption = $"{Capitalise(MetricNames.Describe(table.Metric))}{unit} over seeds: mean ± sample standard deviation " +
                         $"(n − 1 in the denominator), {worst}, and the best of the seeds ({best}, what the paper's " +
                         "tables report), shown beside the mean, never instead of it.";
        return new TableLayout(headers.ToArray(), numeric.ToArray(), rows.ToArray(), caption);
    }

    /// <summary>Whether any row carries settings (then layouts have a "settings" column after the rule).</summary>
    public static bool HasSettings(ResultTable table) => table.Rows.Any(r => r.Settings.Length > 0);

    /// <summary>A GitHub-flavoured Markdown table with its caption below.</summary>
    public static string ToMarkdown(ResultTable table, int decimals = 2, bool percent = true) =>
        ToMarkdown(ToLayout(table, decimals, percent));

    /// <summary>Any <see cref="TableLayout"/> as Markdown.</summary>
    public static string ToMarkdown(TableLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        static string Escape(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);
        var sb = new StringBuilder();
        sb.Append("| ").AppendJoin(" | ", layout.Headers.Select(Escape)).Append(" |\n");
        sb.Append('|').AppendJoin('|', layout.NumericColumns.Select(n => n ? "---:" : "---")).Append("|\n");
        foreach (var row in layout.Rows)
            sb.Append("| ").AppendJoin(" | ", row.Select(Escape)).Append(" |\n");
        sb.Append('\n').Append(layout.Caption).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// Tidy CSV, one line per (dataset, beta, rule, method): unrounded fractions in invariant culture, so a
    /// script can recompute anything. Columns: dataset, beta (empty for the full dataset), rule, method,
    /// metric, n, mean, std (sample, empty for n = 1), min, max, best, best_seed, seeds (space-separated), settings (the
    /// row's <see cref="ResultRow.Settings"/>, empty when none).
    /// </summary>
    public static string ToCsv(ResultTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var sb = new StringBuilder("dataset,beta,rule,method,metric,n,mean,std,min,max,best,best_seed,seeds,settings\n");
        foreach (var row in table.Rows)
        {
            for (int m = 0; m < table.Methods.Length; m++)
            {
                var c = row.Cells[m];
                if (c is null) continue;
                string[] fields =
                [
                    row.Dataset, row.Beta is double b ? R(b) : "", row.Rule, table.Methods[m], table.Metric,
                    c.Count.ToString(CultureInfo.InvariantCulture), R(c.Mean), c.StandardDeviation is double s ? R(s) : "",
                    R(c.Min), R(c.Max), R(c.Best), c.BestSeed.ToString(CultureInfo.InvariantCulture),
                    string.Join(' ', c.Seeds.Select(x => x.ToString(CultureInfo.InvariantCulture))), row.Settings,
                ];
                sb.AppendJoin(',', fields.Select(CsvField)).Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.</summary>
    private static string CsvField(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static string Signed(double v, int decimals)
    {
        string magnitude = Math.Abs(v).ToString("F" + decimals, CultureInfo.InvariantCulture);
        bool zero = magnitude.All(ch => ch is '0' or '.');
        return zero ? magnitude : (v > 0 ? "+" : "−") + magnitude;
    }

    private static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
