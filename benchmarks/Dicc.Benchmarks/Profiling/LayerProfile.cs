using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Layers;
using Dicc.Engine.Models;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Benchmarks.Profiling;

/// <summary>
/// Where a training step's time goes: every layer of the VGG backbone timed on its own (forward, and backward
/// with the input gradient), at the shapes of a real step, summed by layer kind. Quick mode:
/// <c>layer-profile [depth] [batch] [width] [--cpu-time] [--chain]</c>. With <c>--cpu-time</c> (and
/// DOTNET_PROCESSOR_COUNT=1, so everything runs on the calling thread) each layer is timed in the thread's CPU
/// time, which stays steady on a busy machine. With <c>--chain</c> the layers run as in a training step instead
/// (each on the previous one's output, the backward pass in reverse with no input gradient for the first layer,
/// then the SGD update), so the caches hold what they would in a step rather than the layer's own operands.
/// </summary>
internal static class LayerProfile
{
    public static int Run(string[] args)
    {
        bool cpuTime = args.Contains("--cpu-time"), chain = args.Contains("--chain");
        args = [.. args.Where(a => a is not ("--cpu-time" or "--chain"))];
        if (cpuTime && CpuParallel.Threads != 1)
        {
            Console.Error.WriteLine("layer-profile: --cpu-time times the calling thread only; run with DOTNET_PROCESSOR_COUNT=1.");
            return 2;
        }
        Func<double> clock = cpuTime ? () => Machine.ThreadCpuSeconds() * 1000 : () => Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;
        var depth = args.Length > 0 ? Enum.Parse<VggDepth>("Vgg" + args[0]) : VggDepth.Vgg19;
        int batch = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 32;
        double width = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 1.0;
        using var backend = new CpuBackend();
        var options = new VggOptions { Depth = depth, Width = width };
        var net = Vgg.Classifier(options, 7);
        var network = new Network(net, backend, seed: 1);
        var context = new StepContext { Training = true, Seed = 1 };
        var random = new RandomStream(3);
        var shape = new Shape(batch, 1, 44, 44);
        var byKind = new SortedDictionary<string, (double Forward, double Backward, long Flops)>();
        var rows = new List<string>();
        if (chain)
        {
            Chain(backend, network, Flatten(net).ToList(), shape, context, random, clock, byKind, rows);
            shape = new Shape(0);
        }
        foreach (var layer in chain ? [] : Flatten(net))
        {
            var output = layer.OutputShape(shape);
            var x = Random(backend, shape, random);
            var y = backend.Create(output);
            var dy = Random(backend, output, random);
            var dx = backend.Create(shape);
            layer.Prepare(shape, backend);
            layer.Forward(x, y, context);
            layer.Backward(x, y, dy, dx, context);
            double forward = Median(clock, () => layer.Forward(x, y, context));
            double backward = Median(clock, () => layer.Backward(x, y, dy, dx, context));
            string kind = layer.GetType().Name;
            var (f, b, fl) = byKind.GetValueOrDefault(kind);
            byKind[kind] = (f + forward, b + backward, fl + layer.ForwardFlops(shape));
            rows.Add($"{kind,-12} {shape,-18} fwd {forward,8:F2} ms  bwd {backward,8:F2} ms");
            shape = output;
        }
        foreach (var r in rows) Console.WriteLine(r);
        double total = byKind.Values.Sum(v => v.Forward + v.Backward);
        Console.WriteLine($"\n{depth} x{width} batch {batch} on {backend.Description}: layers total {total:F0} ms " +
                          $"({(chain ? "one training step's chain, medians of 5" : "forward + backward incl. input gradients, each layer alone")}; " +
                          $"{(cpuTime ? "thread CPU time" : "wall time")}; load average {Machine.LoadAverage()})");
        foreach (var (kind, (f, b, fl)) in byKind.OrderByDescending(kv => kv.Value.Forward + kv.Value.Backward))
            Console.WriteLine($"  {kind,-12} {f + b,8:F1} ms  {100 * (f + b) / total,5:F1}%   fwd {f,7:F1}  bwd {b,7:F1}" +
                              (fl > 0 ? $"   {3.0 * fl / ((f + b) * 1e6),6:F1} GFLOP/s" : ""));
        return 0;
    }

    /// <summary>The layers as a training step runs them, five times; each op's median goes into the table.</summary>
    private static void Chain(Backend backend, Network network, List<Layer> layers, Shape input, StepContext context, RandomStream random,
        Func<double> clock, SortedDictionary<string, (double Forward, double Backward, long Flops)> byKind, List<string> rows)
    {
        var shapes = new List<Shape> { input };
        foreach (var l in layers)
        {
            l.Prepare(shapes[^1], backend);
            shapes.Add(l.OutputShape(shapes[^1]));
        }
        var activations = shapes.Select((sh, i) => i == 0 ? Random(backend, sh, random) : backend.Create(sh)).ToArray();
        var gradients = shapes.Select((sh, i) => i == shapes.Count - 1 ? Random(backend, sh, random) : backend.Create(sh)).ToArray();
        var forward = new double[layers.Count][];
        var backward = new double[layers.Count][];
        var sgd = new double[5];
        var optimizer = new Engine.Optim.Sgd(network.Parameters, new Engine.Optim.SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f });
        for (int i = 0; i < layers.Count; i++) { forward[i] = new double[5]; backward[i] = new double[5]; }
        for (int rep = -1; rep < 5; rep++)
        {
            for (int i = 0; i < layers.Count; i++)
            {
                double t = clock();
                layers[i].Forward(activations[i], activations[i + 1], context);
                if (rep >= 0) forward[i][rep] = clock() - t;
            }
            for (int i = layers.Count - 1; i >= 0; i--)
            {
                double t = clock();
                layers[i].Backward(activations[i], activations[i + 1], gradients[i + 1], i == 0 ? null : gradients[i], context);
                if (rep >= 0) backward[i][rep] = clock() - t;
            }
            double s0 = clock();
            optimizer.Step(1e-4f);
            if (rep >= 0) sgd[rep] = clock() - s0;
        }
        static double Med(double[] a) { var b = (double[])a.Clone(); Array.Sort(b); return b[b.Length / 2]; }
        for (int i = 0; i < layers.Count; i++)
        {
            string kind = layers[i].GetType().Name;
            var (f, b, fl) = byKind.GetValueOrDefault(kind);
            byKind[kind] = (f + Med(forward[i]), b + Med(backward[i]), fl + layers[i].ForwardFlops(shapes[i]));
            rows.Add($"{kind,-12} {shapes[i],-18} fwd {Med(forward[i]),8:F2} ms  bwd {Med(backward[i]),8:F2} ms");
        }
        byKind["Sgd (update)"] = (0, Med(sgd), 0);
        rows.Add($"{"Sgd",-12} {network.Parameters.Count + " params",-18} upd {Med(sgd),8:F2} ms");
    }

    private static IEnumerable<Layer> Flatten(Layer layer) =>
        layer is Sequential s ? s.Layers.SelectMany(Flatten) : [layer];

    private static Tensor Random(Backend backend, Shape shape, RandomStream r)
    {
        var t = backend.Create(shape);
        backend.CopyIn<float>(t, Enumerable.Range(0, (int)shape.ElementCount).Select(_ => (float)r.NextNormal()).ToArray());
        return t;
    }

    private static double Median(Func<double> clockMs, Action action)
    {
        var times = new double[5];
        for (int i = 0; i < times.Length; i++)
        {
            double start = clockMs();
            action();
            times[i] = clockMs() - start;
        }
        Array.Sort(times);
        return times[times.Length / 2];
    }
}
