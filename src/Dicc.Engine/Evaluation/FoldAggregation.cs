using System.Globalization;
using System.Text;

namespace Dicc.Engine.Evaluation;

/// <summary>
/// One k-fold cross-validation's metric: a value per fold and their mean and sample standard deviation (what
/// papers report for CK+ and JAFFE: the mean over the folds).
/// </summary>
/// <param name="Dataset">Dataset name.</param>
/// <param name="Rule">Rebalancing rule (lower case).</param>
/// <param name="Method">Method (lower case).</param>
/// <param name="Seed">The seed of the runs (and of the fold assignment).</param>
/// <param name="Folds">How many folds the cross-validation has.</param>
/// <param name="Values">The metric of fold i at index i - 1; null for a fold that is not among the runs.</param>
/// <param name="Count">Folds present.</param>
/// <param name="Mean">Mean over the folds present.</param>
/// <param name="StandardDeviation">Sample standard deviation over them (n − 1 in the denominator); null for one fold.</param>
/// <param name="Min">Smallest fold value.</param>
/// <param name="Max">Largest fold value.</param>
public sealed record FoldRow(string Dataset, string Rule, string Method, long Seed, int Folds, double?[] Values, int Count, double Mean,
    double? StandardDeviation, double Min, double Max)
{
    /// <summary>All folds are present.</summary>
    public bool Complete => Count == Folds;
}

/// <summary>The cross-validations found among some runs, each with its folds' values (see <see cref="FoldAggregation"/>).</summary>
public sealed record FoldTable(string Metric, FoldRow[] Rows);

/// <summary>Aggregates the fold runs of k-fold cross-validations (<see cref="RunResult.Fold"/> set) per cross-validation.</summary>
public static class FoldAggregation
{
    /// <summary>
    /// One row per (dataset, rule, method, seed, folds): the fold runs among <paramref name="runs"/> (others are
    /// ignored) and their <paramref name="metric"/>. Rows: datasets in first-seen order, rules none / resample /
    /// reweight then alphabetical, methods baseline, DICC, then alphabetical, then seed. A fold given twice is an error.
    /// </summary>
    public static FoldTable Aggregate(IEnumerable<RunResult> runs, string metric)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var folds = runs.Where(r => r.Fold is not null).ToList();
        var datasets = folds.Select(r => r.Dataset).Distinct().ToList();
        var rows = new List<FoldRow>();
        foreach (var group in folds.GroupBy(r => (r.Dataset, Rule: r.Rule.Trim().ToLowerInvariant(), Method: r.Method.Trim().ToLowerInvariant(),
                     r.Seed, Folds: r.Folds ?? 0)))
        {
            var (dataset, rule, method, seed, k) = group.Key;
            if (k < 1) throw new ArgumentException($"Fold {group.First().Fold} of {dataset} does not say how many folds there are.", nameof(runs));
            var values = new double?[k];
            foreach (var r in group)
            {
                int f = r.Fold!.Value;
                if (f < 1 || f > k) throw new ArgumentException($"Fold {f} of {dataset} is outside 1..{k}.", nameof(runs));
                if (values[f - 1] is not null)
                    throw new ArgumentException($"Fold {f} of {k} ({dataset}, {rule}, {method}, seed {seed}) appears twice.", nameof(runs));
                if (!r.Metrics.TryGetValue(metric, out double v))
                    throw new ArgumentException($"Fold {f} of {dataset} has no {metric}.", nameof(runs));
                if (!double.IsFinite(v)) throw new ArgumentException($"The {metric} of fold {f} of {dataset} is {v}, not a finite number.", nameof(runs));
                values[f - 1] = v;
            }
            var present = values.Where(v => v is not null).Select(v => v!.Value).ToArray();
            double mean = present.Average();
            double? std = present.Length > 1 ? Math.Sqrt(present.Sum(v => (v - mean) * (v - mean)) / (present.Length - 1)) : null;
            rows.Add(new FoldRow(dataset, rule, method, seed, k, values, present.Length, mean, std, present.Min(), present.Max()));
        }
        var ordered = rows
            .OrderBy(r => datasets.IndexOf(r.Dataset))
            .ThenBy(r => RuleRank(r.Rule)).ThenBy(r => r.Rule, StringComparer.Ordinal)
            .ThenBy(r => MethodRank(r.Method)).ThenBy(r => r.Method, StringComparer.Ordinal)
            .ThenBy(r => r.Seed).ThenBy(r => r.Folds)
            .ToArray();
        return new FoldTable(metric, ordered);
    }

    private static int RuleRank(string rule) => rule switch { RunLabels.None => 0, RunLabels.Resample => 1, RunLabels.Reweight => 2, _ => 3 };

    private static int MethodRank(string method) => method switch { RunLabels.Baseline => 0, RunLabels.Dicc => 1, _ => 2 };

    /// <summary>A row's heading: "CK+ · baseline · none · seed 1".</summary>
    public static string Title(FoldRow row) =>
        $"{row.Dataset} · {ResultTableFormat.MethodTitle(row.Method)} · {row.Rule} · seed {row.Seed.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Percent with <paramref name="decimals"/> digits.</summary>
    public static string Percent(double fraction, int decimals) =>
        (100 * fraction).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>"mean ± std" in percent ("—" for the std of one fold).</summary>
    public static string MeanStd(FoldRow row, int decimals) =>
        $"{Percent(row.Mean, decimals)} ± {(row.StandardDeviation is double s ? Percent(s, decimals) : "—")}";

    /// <summary>The caption that says what the numbers are.</summary>
    public static string Caption(FoldTable table) =>
        $"{char.ToUpperInvariant(MetricNames.Describe(table.Metric)[0])}{MetricNames.Describe(table.Metric)[1..]} (%) of each fold's test subjects; mean ± sample standard deviation (n − 1) over the folds. " +
        "Every image is tested in exactly one fold, and no subject is in two folds.";

    /// <summary>
    /// The table as rows of text: a row per fold, then "mean ± std" and "folds"; a column per cross-validation.
    /// A fold that is missing shows "—".
    /// </summary>
    public static (string[] Headers, List<string[]> Rows) ToLayout(FoldTable table, int decimals = 2)
    {
        var headers = new[] { "fold" }.Concat(table.Rows.Select(Title)).ToArray();
        int k = table.Rows.Select(r => r.Folds).DefaultIfEmpty(0).Max();
        var rows = new List<string[]>();
        for (int f = 0; f < k; f++)
            rows.Add([(f + 1).ToString(CultureInfo.InvariantCulture), .. table.Rows.Select(r => f < r.Folds && r.Values[f] is double v ? Percent(v, decimals) : "—")]);
        rows.Add(["mean ± std", .. table.Rows.Select(r => MeanStd(r, decimals))]);
        rows.Add(["folds", .. table.Rows.Select(r => r.Complete ? $"{r.Folds}" : $"{r.Count} of {r.Folds}")]);
        return (headers, rows);
    }

    /// <summary>The layout as a Markdown table with its caption.</summary>
    public static string ToMarkdown(FoldTable table, int decimals = 2)
    {
        var (headers, rows) = ToLayout(table, decimals);
        var text = new StringBuilder();
        text.Append("| ").AppendJoin(" | ", headers).Append(" |\n");
        text.Append("|---").Append(string.Concat(Enumerable.Repeat("|---:", headers.Length - 1))).Append("|\n");
        foreach (var row in rows) text.Append("| ").AppendJoin(" | ", row).Append(" |\n");
        text.Append('\n').Append(Caption(table)).Append('\n');
        return text.ToString();
    }

    /// <summary>
    /// Tidy CSV, unrounded fractions: <c>dataset,rule,method,seed,folds,metric,fold,value</c>, a line per fold, then
    /// the lines with fold <c>mean</c> and <c>std</c> (empty for one fold).
    /// </summary>
    public static string ToCsv(FoldTable table)
    {
        var text = new StringBuilder("dataset,rule,method,seed,folds,metric,fold,value\n");
        string Q(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
        string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        foreach (var r in table.Rows)
        {
            string key = $"{Q(r.Dataset)},{Q(r.Rule)},{Q(r.Method)},{r.Seed},{r.Folds},{Q(table.Metric)}";
            for (int f = 0; f < r.Folds; f++)
                if (r.Values[f] is double v) text.Append(key).Append(',').Append(f + 1).Append(',').Append(N(v)).Append('\n');
            text.Append(key).Append(",mean,").Append(N(r.Mean)).Append('\n');
            text.Append(key).Append(",std,").Append(r.StandardDeviation is double s ? N(s) : "").Append('\n');
        }
        return text.ToString();
    }
}
