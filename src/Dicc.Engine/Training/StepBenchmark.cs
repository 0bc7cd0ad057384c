using System.Diagnostics;
using Dicc.Engine.Backends;
using Dicc.Engine.Clustering;
using Dicc.Engine.Models;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>
/// Timing of training steps and of the DICC clustering module on one backend: <c>Steps</c> timed (baseline,
/// DICC) pairs, the medians of each in milliseconds, and <c>DiccOverRatio</c>, the median over the pairs of
/// DICC step time / baseline step time.
/// </summary>
public sealed record StepTiming(
    string Device,
    VggDepth Arch,
    double Width,
    int Batch,
    int Steps,
    double BaselineMilliseconds,
    double DiccMilliseconds,
    double ClusteringMilliseconds,
    double ForwardGflopPerImage,
    double DiccOverRatio)
{
    /// <summary>DICC step time over baseline step time, minus one: the median of the per-pair ratios, minus one.</summary>
    public double DiccOverhead => DiccOverRatio - 1;

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
/// the real shapes (1x44x44 images, 7 classes, DICC with the fer2013-b10 subclass plan). The two steps are
/// compared as <see cref="Interleaved"/> describes (both warmed up, then timed in alternating adjacent pairs),
/// so that neither is timed while the JIT still compiles code the other then enjoys, and load that comes and
/// goes affects both alike; the device is synchronised around every timed step, so the figures include no
/// queued work.
/// </summary>
public static class StepBenchmark
{
    /// <summary>The benchmark's shapes: 7 classes, 44x44 images.</summary>
    public const int Classes = 7, Side = 44;

    /// <summary>Warm-up: each step at least this many times, and both together at least <see cref="WarmUpTime"/>.</summary>
    public const int WarmUpSteps = 3;

    /// <summary>Long enough for tiered compilation to replace the first, unoptimised code of the hot methods.</summary>
    public static readonly TimeSpan WarmUpTime = TimeSpan.FromSeconds(1);

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

        var baseline = new BaselineModel(backend, vgg, Classes, training);
        int features = Vgg.FeatureSize(vgg);
        var clustering = new ClusteringConfig(SubclassPlan.Preset("fer2013-b10"), features, partition);
        var dicc = new DiccModel(backend, vgg, Classes, new DiccOptions { Clustering = clustering }, training);
        progress?.Invoke("baseline and DICC steps, interleaved");
        var (baselineMs, diccMs, ratio) = Interleaved(backend, () => baseline.TrainStep(images, labels, 1e-4f),
            () => dicc.TrainStep(images, labels, 1e-4f), steps);

        progress?.Invoke("clustering module");
        var featureTensor = backend.Create(new Shape(batch, features));
        backend.CopyIn<float>(featureTensor, Enumerable.Range(0, batch * features).Select(_ => (float)random.NextNormal()).ToArray());
        var pseudo = backend.Create(new Shape(batch), DType.Int32);
        using var module = IClustering.Create(backend, clustering, batch);
        void Assign() => module.Assign(featureTensor, labels, pseudo);
        double clusteringMs = Interleaved(backend, Assign, Assign, Math.Max(steps, 50) / 2 + 1).A;

        double gflop = baseline.ForwardFlops(new Shape(1, 1, Side, Side)) / 1e9;
        return new StepTiming(backend.Description, arch, width, batch, steps, baselineMs, diccMs, clusteringMs, gflop, ratio);
    }

    /// <summary>
    /// Times two steps against each other. Both are first run alternately until each has run
    /// <see cref="WarmUpSteps"/> times and <see cref="WarmUpTime"/> has passed (the JIT's tiered compilation
    /// replaces hot methods' first code only after they have run a while); then <paramref name="pairs"/> pairs
    /// are timed, each pair one step of each, adjacent in time, in alternating order (AB, BA, AB, ...). Returns the
    /// medians of A's and B's times in milliseconds and the median of the per-pair ratios B / A, which slow
    /// drifts of the machine's load cancel out of.
    /// </summary>
    public static (double A, double B, double Ratio) Interleaved(Backend backend, Action a, Action b, int pairs)
    {
        if (pairs < 1) throw new ArgumentOutOfRangeException(nameof(pairs), pairs, "At least one pair.");
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < WarmUpSteps || warm.Elapsed < WarmUpTime; i++)
        {
            a();
            b();
            backend.Synchronize();
        }
        var timesA = new double[pairs];
        var timesB = new double[pairs];
        var ratios = new double[pairs];
        for (int i = 0; i < pairs; i++)
        {
            if (i % 2 == 0)
            {
                timesA[i] = Time(backend, a);
                timesB[i] = Time(backend, b);
            }
            else
            {
                timesB[i] = Time(backend, b);
                timesA[i] = Time(backend, a);
            }
            ratios[i] = timesB[i] / timesA[i];
        }
        return (Median(timesA), Median(timesB), Median(ratios));
    }

    private static double Time(Backend backend, Action step)
    {
        backend.Synchronize();
        long start = Stopwatch.GetTimestamp();
        step();
        backend.Synchronize();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static double Median(double[] values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
