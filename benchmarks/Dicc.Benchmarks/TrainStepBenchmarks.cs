using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Models;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Benchmarks;

/// <summary>
/// One training step (forward + backward + SGD; for DICC both phases with the clustering) on the CPU
/// backend, 1x44x44 inputs, 7 classes, DICC with the fer2013-b10 subclass plan. The GFLOP/s column counts a
/// step as three forward passes of the backbone and heads.
/// </summary>
[Config(typeof(TrainStepConfig))]
public class TrainStepBenchmarks
{
    private CpuBackend _backend = null!;
    private ExpressionModel _model = null!;
    private Tensor _images = null!, _labels = null!;

    [Params(VggDepth.Vgg19)]
    public VggDepth Depth { get; set; }

    [Params(32)]
    public int Batch { get; set; }

    [Params(1.0)]
    public double Width { get; set; }

    [Params(TrainingMethod.Baseline, TrainingMethod.Dicc)]
    public TrainingMethod Method { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var options = new TrainingOptions
        {
            Arch = Depth, Width = Width, Method = Method, Subclasses = "fer2013-b10", WeightDecay = 5e-4, Seed = 1,
        };
        _model = ModelFactory.Create(_backend, options, StepBenchmark.Classes, [1, 1, 1, 1, 1, 1, 1]);
        _images = _backend.Create(new Shape(Batch, 1, StepBenchmark.Side, StepBenchmark.Side));
        _labels = _backend.Create(new Shape(Batch), DType.Int32);
        var r = new RandomStream(2);
        _backend.CopyIn<float>(_images, Enumerable.Range(0, (int)_images.ElementCount).Select(_ => r.NextFloat()).ToArray());
        _backend.CopyIn<int>(_labels, Enumerable.Range(0, Batch).Select(_ => r.NextInt(StepBenchmark.Classes)).ToArray());
        _model.TrainStep(_images, _labels, 1e-4f); // plan memory outside the measurement
    }

    [Benchmark]
    public void Step() => _model.TrainStep(_images, _labels, 1e-4f);

    [GlobalCleanup]
    public void Cleanup() => _backend.Dispose();

    private sealed class TrainStepConfig : ManualConfig
    {
        public TrainStepConfig()
        {
            AddJob(Job.Default.WithWarmupCount(1).WithIterationCount(5).WithLaunchCount(1).WithInvocationCount(1).WithUnrollFactor(1));
            AddColumn(new GflopsColumn("Training-step throughput: 3 x forward FLOPs / mean time", c =>
            {
                var p = c.Parameters;
                var vgg = new VggOptions { Depth = (VggDepth)p["Depth"], Width = (double)p["Width"] };
                return 3.0 * Vgg.Classifier(vgg, StepBenchmark.Classes).ForwardFlops(new Shape((int)p["Batch"], 1, StepBenchmark.Side, StepBenchmark.Side));
            }));
        }
    }

    /// <summary>Quick mode (<c>train-step [depth] [batch] [width] [steps]</c>): the engine's step benchmark, printed.</summary>
    public static int Quick(string[] args)
    {
        var depth = args.Length > 0 ? Enum.Parse<VggDepth>("Vgg" + args[0]) : VggDepth.Vgg19;
        int batch = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 32;
        double width = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 1.0;
        int steps = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5;
        using var backend = new CpuBackend();
        var t = StepBenchmark.Measure(backend, depth, width, batch, steps);
        Console.WriteLine($"{depth} x{width} batch {batch} on {t.Device}, medians of {steps} interleaved (baseline, DICC) pairs after a warm-up:");
        Console.WriteLine($"  baseline step {t.BaselineMilliseconds:F0} ms ({t.BaselineGflops:F1} GFLOP/s, {t.BaselineImagesPerSecond:F1} images/s)");
        Console.WriteLine($"  DICC step     {t.DiccMilliseconds:F0} ms (overhead {100 * t.DiccOverhead:F1}%)");
        Console.WriteLine($"  clustering    {t.ClusteringMilliseconds * 1000:F1} us per batch ({100 * t.ClusteringShare:F4}% of a DICC step)");
        return 0;
    }
}
