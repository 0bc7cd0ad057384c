namespace Dicc.Engine.Evaluation;

/// <summary>
/// One configuration's metric over its seeds.
/// </summary>
/// <param name="Count">Number of seeds (runs).</param>
/// <param name="Mean">Arithmetic mean.</param>
/// <param name="StandardDeviation">Sample standard deviation, sqrt(sum (x - mean)^2 / (n - 1)); null for a single run.</param>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
/// <param name="Best">Best of the seeds: the maximum when higher is better, the minimum otherwise. Report it beside
/// the mean, labelled "best of n seeds", never instead of it.</param>
/// <param name="BestSeed">The seed that gave <paramref name="Best"/> (the smallest such seed on a tie).</param>
/// <param name="Seeds">The seeds, ascending.</param>
public sealed record SeedStatistics(
    int Count,
    double Mean,
    double? StandardDeviation,
    double Min,
    double Max,
    double Best,
    long BestSeed,
    long[] Seeds)
{
    /// <summary>Statistics of (seed, value) pairs; seeds must be distinct.</summary>
    public static SeedStatistics Of(IEnumerable<(long Seed, double Value)> runs, bool higherIsBetter = true)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var sorted = runs.OrderBy(r => r.Seed).ToArray();
        if (sorted.Length == 0) throw new ArgumentException("No runs to summarise.", nameof(runs));
        for (int i = 1; i < sorted.Length; i++)
            if (sorted[i].Seed == sorted[i - 1].Seed)
                throw new ArgumentException($"Seed {sorted[i].Seed} appears twice.", nameof(runs));
        foreach (var (seed, value) in sorted)
            if (!double.IsFinite(value))
                throw new ArgumentException($"The value of seed {seed} is {value}, not a finite number.", nameof(runs));

        int n = sorted.Length;
        double mean = sorted.Average(r => r.Value);
        double? std = null;
        if (n > 1)
        {
            double sumSquares = sorted.Sum(r => (r.Value - mean) * (r.Value - mean));
            std = Math.Sqrt(sumSquares / (n - 1));
        }
        double min = sorted.Min(r => r.Value), max = sorted.Max(r => r.Value);
        double best = higherIsBetter ? max : min;
        long bestSeed = sorted.First(r => r.Value == best).Seed;
        return new SeedStatistics(n, mean, std, min, max, best, bestSeed, sorted.Select(r => r.Seed).ToArray());
    }
}

/// <summary>One row of the paper's table: a (dataset, beta, rule) configuration and one cell per method.</summary>
/// <param name="Dataset">Dataset name.</param>
/// <param name="Beta">Imbalance factor; null for the full dataset.</param>
/// <param name="Rule">Rebalancing rule (lower case).</param>
/// <param name="Cells">Aligned with <see cref="ResultTable.Methods"/>; null where a method has no runs.</param>
/// <param name="Settings">The settings that tell this row apart from others of the same dataset, beta and rule
/// (<see cref="RunResult.Settings"/>); empty when none do.</param>
public sealed record ResultRow(string Dataset, double? Beta, string Rule, SeedStatistics?[] Cells, string Settings = "");

/// <summary>
/// The paper's table layout (Tables 1-3): rows per (dataset, beta, rule), a column per method
/// (baseline, then DICC, then any other), each cell aggregated over seeds. A plain structure: render it
/// with <see cref="ResultTableFormat"/> or any table widget.
/// </summary>
/// <param name="Metric">The metric aggregated (see <see cref="MetricNames"/>).</param>
/// <param name="HigherIsBetter">Whether "best" is the maximum (true for every built-in metric).</param>
/// <param name="Methods">Column order.</param>
/// <param name="Rows">One per (dataset, beta, rule).</param>
public sealed record ResultTable(string Metric, bool HigherIsBetter, string[] Methods, ResultRow[] Rows)
{
    /// <summary>The number of seeds when every cell has the same number, else null.</summary>
    public int? UniformSeedCount
    {
        get
        {
            var counts = Rows.SelectMany(r => r.Cells).Where(c => c is not null).Select(c => c!.Count).Distinct().ToArray();
            return counts.Length == 1 ? counts[0] : null;
        }
    }

    /// <summary>The cell of <paramref name="method"/> in <paramref name="row"/>, or null.</summary>
    public SeedStatistics? Cell(ResultRow row, string method)
    {
        int i = Array.FindIndex(Methods, m => string.Equals(m, method, StringComparison.OrdinalIgnoreCase));
        return i < 0 ? null : row.Cells[i];
    }
}

/// <summary>Aggregates run results over seeds into <see cref="ResultTable"/>.</summary>
public static class SeedAggregation
{
    private static readonly string[] KnownMethods = [RunLabels.Baseline, RunLabels.Dicc];
    private static readonly string[] KnownRules = [RunLabels.None, RunLabels.Resample, RunLabels.Reweight];

    /// <summary>
    /// Groups <paramref name="runs"/> by (dataset, beta, rule, settings, method) and summarises <paramref name="metric"/>
    /// over seeds. Rule and method names are compared case-insensitively and shown in lower case; datasets keep
    /// their first-seen order, beta descends (the full dataset last), rules go none / resample / reweight then
    /// alphabetically, settings in first-seen order (none first), methods baseline / dicc then alphabetically. A run counted twice (same configuration and
    /// seed) or lacking the metric is an error that names it.
    /// </summary>
    public static ResultTable Aggregate(IEnumerable<RunResult> runs, string metric = MetricNames.Accuracy, bool higherIsBetter = true)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentException.ThrowIfNullOrEmpty(metric);
        var list = runs.ToList();
        if (list.Count == 0) throw new ArgumentException("No runs to aggregate.", nameof(runs));

        var datasetOrder = new List<string>();
        var settingsOrder = new List<string> { "" };
        var values = new Dictionary<(string Dataset, double? Beta, string Rule, string Settings, string Method), List<(long Seed, double Value)>>();
        foreach (var run in list)
        {
            ArgumentNullException.ThrowIfNull(run);
            string rule = run.Rule.Trim().ToLowerInvariant(), method = run.Method.Trim().ToLowerInvariant();
            string settings = run.Settings ?? "";
            string where = $"run (dataset {run.Dataset}, beta {FormatBeta(run.Beta)}, rule {rule}, method {method}" +
                           (settings.Length > 0 ? $", {settings}" : "") + $", seed {run.Seed})";
            if (!run.Metrics.TryGetValue(metric, out double value))
                throw new ArgumentException($"The {where} has no metric '{metric}' (it has: {string.Join(", ", run.Metrics.Keys)}).", nameof(runs));
            if (!datasetOrder.Contains(run.Dataset)) datasetOrder.Add(run.Dataset);
            if (!settingsOrder.Contains(settings)) settingsOrder.Add(settings);
            var key = (run.Dataset, run.Beta, rule, settings, method);
            if (!values.TryGetValue(key, out var seeds)) values[key] = seeds = [];
            if (seeds.Any(s => s.Seed == run.Seed))
                throw new ArgumentException($"The {where} appears twice.", nameof(runs));
            if (!double.IsFinite(value))
                throw new ArgumentException($"The {where} has {metric} = {value}, not a finite number.", nameof(runs));
            seeds.Add((run.Seed, value));
        }

        string[] methods = Order(values.Keys.Select(k => k.Method).Distinct(), KnownMethods);
        var configurations = values.Keys.Select(k => (k.Dataset, k.Beta, k.Rule, k.Settings)).Distinct()
            .OrderBy(k => datasetOrder.IndexOf(k.Dataset))
            .ThenBy(k => k.Beta.HasValue ? 0 : 1)
            .ThenByDescending(k => k.Beta ?? 0)
            .ThenBy(k => RuleRank(k.Rule)).ThenBy(k => k.Rule, StringComparer.Ordinal)
            .ThenBy(k => settingsOrder.IndexOf(k.Settings))
            .ToArray();

        var rows = configurations.Select(k => new ResultRow(k.Dataset, k.Beta, k.Rule,
            methods.Select(m => values.TryGetValue((k.Dataset, k.Beta, k.Rule, k.Settings, m), out var seeds)
                ? SeedStatistics.Of(seeds, higherIsBetter) : null).ToArray(), k.Settings)).ToArray();
        return new ResultTable(metric, higherIsBetter, methods, rows);
    }

    internal static string FormatBeta(double? beta) =>
        beta is double b ? b.ToString("G", System.Globalization.CultureInfo.InvariantCulture) : "full";

    private static int RuleRank(string rule)
    {
        int i = Array.IndexOf(KnownRules, rule);
        return i < 0 ? KnownRules.Length : i;
    }

    private static string[] Order(IEnumerable<string> names, string[] known) =>
        names.OrderBy(n => Array.IndexOf(known, n) is int i && i >= 0 ? i : known.Length)
            .ThenBy(n => n, StringComparer.Ordinal).ToArray();
}
