using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Benchmarks;

/// <summary>
/// One VGG training step (forward + backward + SGD) on the CPU backend, 1x44x44 inputs, 7 classes.
/// The GFLOP/s column counts a step as three forward passes (forward, backward-data, backward-filter).
/// </summary>
[Config(typeof(TrainStepConfig))]
public class TrainStepBenchmarks
{
    private CpuBackend _backend = null!;
    private ClassifierTrainingStep _step = null!;
    private Tensor _images = null!, _labels = null!;

    [Params(VggDepth.Vgg19)]
    public VggDepth Depth { get; set; }

    [Params(32)]
    public int Batch { get; set; }

    [Params(1.0)]
    public double Width { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        (_step, _images, _labels) = TrainStep.Build(_backend, Depth, Batch, Width);
        _step.Run(_images, _labels, 1e-4f); // plan memory outside the measurement
    }

    [Benchmark]
    public void Step() => _step.Run(_images, _labels, 1e-4f);

    [GlobalCleanup]
    public void Cleanup() => _backend.Dispose();

    private sealed class TrainStepConfig : ManualConfig
    {
        public TrainStepConfig()
        {
            AddJob(Job.Default.WithWarmupCount(1).WithIterationCount(5).WithLaunchCount(1)
                .WithInvocationCount(1).WithUnrollFactor(1));
            AddColumn(new GflopsColumn());
        }
    }

    private sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPs";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Training-step throughput: 3 x forward FLOPs / mean time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null) return "-";
            var p = benchmarkCase.Parameters;
            double flops = TrainStep.Flops((VggDepth)p["Depth"], (int)p["Batch"], (double)p["Width"]);
            return (flops / report.ResultStatistics.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture); // ns -> GFLOP/s
        }
    }
}

/// <summary>Builds a training step for the benchmarks and the quick mode.</summary>
internal static class TrainStep
{
    public const int Classes = 7, Side = 44;

    public static (ClassifierTrainingStep, Tensor, Tensor) Build(CpuBackend backend, VggDepth depth, int batch, double width)
    {
        var options = new VggOptions { Depth = depth, Width = width };
        var network = new Network(Vgg.Classifier(options, Classes), backend, seed: 1);
        var step = new ClassifierTrainingStep(network,
            new Sgd(network.Parameters, new SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }),
            new SoftmaxCrossEntropyLoss(backend, Classes), seed: 1);
        var images = backend.Create(new Shape(batch, 1, Side, Side));
        var labels = backend.Create(new Shape(batch), DType.Int32);
        var r = new RandomStream(2);
        backend.CopyIn<float>(images, Enumerable.Range(0, (int)images.ElementCount).Select(_ => r.NextFloat()).ToArray());
        backend.CopyIn<int>(labels, Enumerable.Range(0, batch).Select(_ => r.NextInt(Classes)).ToArray());
        return (step, images, labels);
    }

    /// <summary>FLOPs of one training step: three forward passes' worth.</summary>
    public static double Flops(VggDepth depth, int batch, double width) =>
        3.0 * Vgg.Classifier(new VggOptions { Depth = depth, Width = width }, Classes).ForwardFlops(new Shape(batch, 1, Side, Side));

    /// <summary>Quick mode: times a few steps with a stopwatch and prints ms/step and GFLOP/s.</summary>
    public static void Quick(VggDepth depth, int batch, double width, int steps)
    {
        using var backend = new CpuBackend();
        var (step, images, labels) = Build(backend, depth, batch, width);
        step.Run(images, labels, 1e-4f);
        var times = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            step.Run(images, labels, 1e-4f);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        double median = times[times.Count / 2];
        double flops = Flops(depth, batch, width);
        Console.WriteLine($"{depth} width {width} batch {batch} on {backend.Description}: median {median:F0} ms/step over {steps} steps, " +
                          $"{flops / 1e9:F1} GFLOP/step, {flops / (median * 1e6):F1} GFLOP/s, {batch / (median / 1000):F1} images/s");
    }
}
