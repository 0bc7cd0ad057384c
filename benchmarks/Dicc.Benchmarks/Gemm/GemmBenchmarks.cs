using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// Our Sgemm against OpenBLAS's cblas_sgemm (with its best kernels for this CPU, see <see cref="OpenBlas.ChooseCoreType"/>)
/// on the same operands, both with all cores, at square sizes and at the GEMMs that VGG19's convolutions issue
/// (one layer per resolution). Ratio is ours / OpenBLAS time, so below 1 is faster; the GFLOP/s column gives
/// each side's throughput.
/// </summary>
[Config(typeof(Config))]
public class GemmBenchmarks
{
    private GemmOperands? _operands;

    public static IEnumerable<GemmShape> Shapes() => GemmShapes.Square.Concat(GemmShapes.Vgg19Representative());

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = GemmShapes.Square[0];

    [GlobalSetup]
    public void Setup()
    {
        OpenBlas.ChooseCoreType();
        _operands = new GemmOperands(Shape);
    }

    [GlobalCleanup]
    public void Cleanup() => _operands?.Dispose();

    [Benchmark(Baseline = true, Description = "OpenBLAS")]
    public void OpenBlasSgemm() => _operands!.OpenBlasSgemm();

    [Benchmark(Description = "Dicc")]
    public void DiccSgemm() => _operands!.Ours();

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            // Short runs: many shapes, and both sides suffer the same noise on a shared machine.
            AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(10).WithLaunchCount(1));
            AddColumn(new GflopsColumn("Billions of floating-point operations per second (2*M*N*K / mean)",
                c => (c.Parameters.Items.FirstOrDefault(p => p.Name == nameof(Shape))?.Value as GemmShape)?.Flops));
            HideColumns("Job", "IterationCount", "LaunchCount", "WarmupCount", "RunStrategy", "UnrollFactor", "Error");
            WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(60));
            WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
        }
    }
}
