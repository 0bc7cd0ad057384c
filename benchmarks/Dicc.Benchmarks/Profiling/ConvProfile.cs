using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Benchmarks.Profiling;

/// <summary>
/// `conv-profile [batch] [--filter TEXT] [--cpu-time | --process-time] [--reference]`: each distinct VGG19
/// convolution (1x44x44 inputs) timed op by op (forward, backward-data, backward-filter) on the CPU backend, with
/// GFLOP/s, so a change to the convolution path can be measured where it acts. <c>--cpu-time</c> (with
/// DOTNET_PROCESSOR_COUNT=1) measures the calling thread's CPU time, which stays steady on a busy machine;
/// <c>--process-time</c> the CPU time of all threads (work done twice by parallel parts shows up there, waiting for
/// a core does not). Each figure is the best of 7 runs: on a shared machine other processes only ever add time.
/// </summary>
internal static class ConvProfile
{
    public static int Run(string[] args)
    {
        bool cpuTime = args.Contains("--cpu-time"), processTime = args.Contains("--process-time"), reference = args.Contains("--reference");
        string? filter = null;
        int batch = 32;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--filter" && i + 1 < args.Length) filter = args[++i];
            else if (int.TryParse(args[i], CultureInfo.InvariantCulture, out int b)) batch = b;
        }
        if (cpuTime && CpuParallel.Threads != 1)
        {
            Console.Error.WriteLine("conv-profile: --cpu-time times the calling thread only; run with DOTNET_PROCESSOR_COUNT=1.");
            return 2;
        }
        Func<double> clock = cpuTime ? Machine.ThreadCpuSeconds
            : processTime ? Machine.ProcessCpuSeconds
            : () => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        using var backend = new CpuBackend(reference ? CpuPath.Reference : CpuPath.Fast);
        var random = new RandomStream(5);
        Console.WriteLine($"{backend.Description}, batch {batch}, {(cpuTime ? "thread CPU time" : processTime ? "process CPU time" : "wall time")}, load average {Machine.LoadAverage()}");
        Console.WriteLine($"{"layer",-24} {"fwd ms",8} {"GF/s",6} {"data ms",8} {"GF/s",6} {"filter ms",9} {"GF/s",6}");
        double total = 0, flops = 0;
        foreach (var (name, g) in Vgg19Convolutions(batch))
        {
            if (filter is not null && !name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            backend.ReserveWorkspace(backend.ConvolutionWorkspaceBytes(g));
            var x = Random(backend, g.InputShape, random);
            var w = Random(backend, g.WeightShape, random);
            var b = Random(backend, new Shape(g.K), random);
            var y = backend.Create(g.OutputShape);
            var dy = Random(backend, g.OutputShape, random);
            var dx = backend.Create(g.InputShape);
            var dw = backend.Create(g.WeightShape);
            var db = backend.Create(new Shape(g.K));
            double f = Best(clock, () => backend.ConvolutionForward(g, x, w, b, y));
            double d = g.C > 1 ? Best(clock, () => backend.ConvolutionBackwardData(g, dy, w, dx)) : 0;
            double k = Best(clock, () => backend.ConvolutionBackwardFilter(g, x, dy, dw, db));
            double op = 2.0 * g.ForwardMacs / 1e9;
            total += f + d + k;
            flops += op * (g.C > 1 ? 3 : 2);
            Console.WriteLine($"{name,-24} {f * 1e3,8:F2} {op / f,6:F0} {d * 1e3,8:F2} {(d > 0 ? op / d : 0),6:F0} {k * 1e3,9:F2} {op / k,6:F0}");
        }
        Console.WriteLine($"distinct layers once each: {total * 1e3:F1} ms, {flops / total:F1} GFLOP/s");
        return 0;
    }

    /// <summary>The distinct convolutions of VGG19 on 1x44x44 inputs (name, geometry).</summary>
    public static IEnumerable<(string Name, ConvolutionGeometry Geometry)> Vgg19Convolutions(int batch)
    {
        int[] config = [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0];
        var seen = new HashSet<(int, int, int)>();
        int channels = 1, h = 44, block = 1, inBlock = 0;
        foreach (int k in config)
        {
            if (k == 0) { h /= 2; block++; inBlock = 0; continue; }
            inBlock++;
            if (seen.Add((channels, k, h)))
                yield return ($"conv{block}_{inBlock} c{channels} k{k} @{h}", new ConvolutionGeometry(batch, channels, h, h, k, 3, 3, 1, 1, 1, 1));
            channels = k;
        }
    }

    private static Tensor Random(Backend backend, Shape shape, RandomStream r)
    {
        var t = backend.Create(shape);
        backend.CopyIn<float>(t, Enumerable.Range(0, (int)shape.ElementCount).Select(_ => (float)r.NextNormal()).ToArray());
        return t;
    }

    private static double Best(Func<double> clock, Action action)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < 7; i++)
        {
            double start = clock();
            action();
            best = Math.Min(best, clock() - start);
        }
        return best;
    }
}
