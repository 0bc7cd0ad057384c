using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Dicc.Benchmarks;

/// <summary>A BenchmarkDotNet column: the FLOPs of a case (from its parameters) over its mean time, in GFLOP/s.</summary>
internal sealed class GflopsColumn(string legend, Func<BenchmarkCase, double?> flops) : IColumn
{
    public string Id => "GFLOPS";
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => legend;
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is null || flops(benchmarkCase) is not double f) return "-";
        return (f / report.ResultStatistics.Mean).ToString("F1", CultureInfo.InvariantCulture); // FLOP per ns = GFLOP/s
    }
}
