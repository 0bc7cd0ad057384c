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
/// <c>layer-profile [depth] [batch] [width] [--cpu-time]</c>. With <c>--cpu-time</c> (and
/// DOTNET_PROCESSOR_COUNT=1, so everything runs on the calling thread) each layer is timed in the thread's CPU
/// time, which stays steady on a busy machine.
/// </summary>
internal static class LayerProfile
{
    public static int Run(string[] args)
    {
        bool cpuTime = args.Contains("--cpu-time");
        args = [.. args.Where(a => a != "--cpu-time")];
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
        foreach (var layer in Flatten(net))
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
                          $"(forward + backward incl. input gradients; {(cpuTime ? "thread CPU time" : "wall time")}; load average {Machine.LoadAverage()})");
        foreach (var (kind, (f, b, fl)) in byKind.OrderByDescending(kv => kv.Value.Forward + kv.Value.Backward))
            Console.WriteLine($"  {kind,-12} {f + b,8:F1} ms  {100 * (f + b) / total,5:F1}%   fwd {f,7:F1}  bwd {b,7:F1}" +
                              (fl > 0 ? $"   {3.0 * fl / ((f + b) * 1e6),6:F1} GFLOP/s" : ""));
        return 0;
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
