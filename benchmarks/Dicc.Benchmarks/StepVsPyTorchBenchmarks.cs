using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Benchmarks;

/// <summary>
/// BenchmarkDotNet's view of `step-vs-pytorch`: one VGG19 training step on our CPU backend against one step of
/// PyTorch (benchmarks/pytorch/cpu_step.py as a peer process, all cores, its best memory format), batch 32 and 128.
/// Ratio is ours / PyTorch time (below 1 is faster). BenchmarkDotNet measures each side in its own stretch of
/// time, so on a shared machine prefer the alternating quick mode for the ratio.
/// </summary>
[Config(typeof(Config))]
public class StepVsPyTorchBenchmarks
{
    private CpuBackend? _backend;
    private BaselineModel? _model;
    private Tensor? _images, _labels;
    private PyTorchPeer? _peer;

    [Params(32, 128)]
    public int Batch { get; set; }

    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        _backend = new CpuBackend();
        var random = new RandomStream(7);
        _images = _backend.Create(new Shape(Batch, 1, 44, 44));
        _labels = _backend.Create(new Shape(Batch), DType.Int32);
        _backend.CopyIn<float>(_images, Enumerable.Range(0, (int)_images.ElementCount).Select(_ => random.NextFloat()).ToArray());
        _backend.CopyIn<int>(_labels, Enumerable.Range(0, Batch).Select(_ => random.NextInt(7)).ToArray());
        _model = new BaselineModel(_backend, new VggOptions { Depth = VggDepth.Vgg19, InputSize = 44 }, 7,
            new ModelTrainingOptions { Sgd = new SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }, Seed = 1 });
        _model.TrainStep(_images, _labels, 1e-4f); // plans memory outside the measurement
    }

    [GlobalSetup(Target = nameof(PyTorch))]
    public void SetupPyTorch()
    {
        string script = PyTorchPeer.FindScript() ?? throw new InvalidOperationException("benchmarks/pytorch/cpu_step.py not found.");
        _peer = PyTorchPeer.Start("/usr/bin/python3", script, Batch, CpuParallel.Threads, 19, 1.0, "auto");
        Console.WriteLine($"// peer: {_peer.Describe()}");
    }

    [Benchmark(Baseline = true)]
    public void PyTorch() => _peer!.Run(1);

    [Benchmark]
    public void Ours() => _model!.TrainStep(_images!, _labels!, 1e-4f);

    [GlobalCleanup]
    public void Cleanup()
    {
        _peer?.Quit();
        _peer?.Dispose();
        _backend?.Dispose();
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(7).WithLaunchCount(1).WithInvocationCount(1).WithUnrollFactor(1));
            AddColumn(new GflopsColumn("Training-step throughput: 3 x forward FLOPs / mean time", c =>
            {
                int batch = (int)c.Parameters["Batch"];
                return 3.0 * Vgg.Classifier(new VggOptions { Depth = VggDepth.Vgg19 }, 7).ForwardFlops(new Shape(batch, 1, 44, 44));
            }));
        }
    }
}
