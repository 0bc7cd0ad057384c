using System.Diagnostics;
using Dicc.Engine.Backends;
using Dicc.Engine.Clustering;
using Dicc.Engine.Models;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>Timing of training steps and of the DICC clustering module on one backend.</summary>
public sealed record StepTiming(
    string Device,
    VggDepth Arch,
    double Width,
    int Batch,
    int Steps,
    double BaselineMilliseconds,
    double DiccMilliseconds,
    double ClusteringMilliseconds,
    double ForwardGflopPerImage)
{
    /// <summary>DICC step time over baseline step time, minus one.</summary>
    public double DiccOverhead => DiccMilliseconds / BaselineMilliseconds - 1;

    /// <summary>The clustering module's share of a DICC step.</summary>
    public double ClusteringShare => ClusteringMilliseconds / DiccMilliseconds;

    /// <summary>Images per second of the baseline step.</summary>
    public double BaselineImagesPerSecond => Batch / (BaselineMilliseconds / 1000);
    /// <summary>Images per second of the DICC step.</summary>
    public double DiccImagesPerSecond => Batch / (DiccMilliseconds / 1000);

    /// <summary>Achieved GFLOP/s of the baseline step, counting a step as three forward passes.</summary>
    public double BaselineGflops => 3 * ForwardGflopPerImage * Batch / (BaselineMilliseconds / 1000);
}

/// <summary>
/// Measures a baseline step, a DICC step (both phases) and the clustering module alone on random data of
/// the real shapes (1x44x44 images, 7 classes, DICC with the fer2013-b10 subclass plan). Each figure is the
/// median over <c>steps</c> timed steps after one warm-up step that plans memory; the device is
/// synchronised around every timed step, so the figures include no queued work.
/// </summary>
public static class StepBenchmark
{
    /// <summary>The benchmark's shapes: 7 classes, 44x44 images.</summary>
    public const int Classes = 7, Side = 44;

    /// <summary>Times the steps on <paramref name="backend"/> (a warm-up step, then the median of <paramref name="steps"/> timed steps).</summary>
    public static StepTiming Measure(Backend backend, VggDepth arch, double width, int batch, int steps,
        PartitionMode partition = PartitionMode.Interval, Action<string>? progress = null)
    {
        if (batch < 2) throw new InputException($"batch must be at least 2, got {batch}.") { Parameter = "batch" };
        if (steps < 1) throw new InputException($"steps must be at least 1, got {steps}.") { Parameter = "steps" };
        var random = new RandomStream(7);
        var images = backend.Create(new Shape(batch, 1, Side, Side));
        var labels = backend.Create(new Shape(batch), DType.Int32);
        backend.CopyIn<float>(images, Enumerable.Range(0, (int)images.ElementCount).Select(_ => random.NextFloat()).ToArray());
        var hostLabels = Enumerable.Range(0, batch).Select(_ => random.NextInt(Classes)).ToArray();
        backend.CopyIn<int>(labels, hostLabels);
        var vgg = new VggOptions { Depth = arch, Width = width, InputSize = Side };
        var training = new ModelTrainingOptions { Sgd = new Optim.SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }, Seed = 1 };

        progress?.Invoke("baseline step");
        var baseline = new BaselineModel(backend, vgg, Classes, training);
        double baselineMs = Median(steps, backend, () => baseline.TrainStep(images, labels, 1e-4f));

        progress?.Invoke("DICC step");
        int features = Vgg.FeatureSize(vgg);
        var clustering = new ClusteringConfig(SubclassPlan.Preset("fer2013-b10"), features, partition);
        var dicc = new DiccModel(backend, vgg, Classes, new DiccOptions { Clustering = clustering }, training);
        double diccMs = Median(steps, backend, () => dicc.TrainStep(images, labels, 1e-4f));

        progress?.Invoke("clustering module");
        var featureTensor = backend.Create(new Shape(batch, features));
        backend.CopyIn<float>(featureTensor, Enumerable.Range(0, batch * features).Select(_ => (float)random.NextNormal()).ToArray());
        var pseudo = backend.Create(new Shape(batch), DType.Int32);
        using var module = IClustering.Create(backend, clustering, batch);
        double clusteringMs = Median(Math.Max(steps, 50), backend, () => module.Assign(featureTensor, labels, pseudo));

        double gflop = baseline.ForwardFlops(new Shape(1, 1, Side, Side)) / 1e9;
        return new StepTiming(backend.Description, arch, width, batch, steps, baselineMs, diccMs, clusteringMs, gflop);
    }

    private static double Median(int steps, Backend backend, Action step)
    {
        step(); // plans memory and warms up
        backend.Synchronize();
        var times = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            long start = Stopwatch.GetTimestamp();
            step();
            backend.Synchronize();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return times[steps / 2];
    }
}
