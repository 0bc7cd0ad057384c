using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends.Cpu;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// `gemm-quick`: our Sgemm against OpenBLAS on every shape in about a minute, without BenchmarkDotNet.
/// The two alternate in short timed rounds (~25 ms a side), so that load from other processes hits both
/// alike. Each side's GFLOP/s is its median round; the ratio is the median of the per-round ratios.
/// </summary>
internal static class GemmQuick
{
    private const string Usage =
        "usage: gemm-quick [--filter TEXT] [--threads N] [--kernel avx512|avx2|scalar] [--cpu-time] [--seconds PER_SHAPE]";

    public static int Run(string[] args)
    {
        string? filter = null;
        double secondsPerShape = 1.5;
        int threads = CpuParallel.Threads;
        var kernel = Engine.Backends.Cpu.Gemm.BestKernel;
        bool cpuTime = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            bool ok = args[i] switch
            {
                "--filter" => (filter = value) is not null,
                "--threads" => int.TryParse(value, CultureInfo.InvariantCulture, out threads) && threads >= 1,
                "--kernel" => Enum.TryParse(value, ignoreCase: true, out kernel) && Enum.IsDefined(kernel),
                "--seconds" => double.TryParse(value, CultureInfo.InvariantCulture, out secondsPerShape) && secondsPerShape > 0,
                "--cpu-time" => cpuTime = true,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"gemm-quick: bad argument '{args[i]}{(value is null ? "" : " " + value)}'.\n{Usage}");
                return 2;
            }
            if (args[i] != "--cpu-time") i++;
        }
        if (!Engine.Backends.Cpu.Gemm.IsSupported(kernel))
        {
            Console.Error.WriteLine($"gemm-quick: this CPU cannot run the {kernel} kernel.");
            return 2;
        }
        if (cpuTime && threads != 1)
        {
            Console.Error.WriteLine("gemm-quick: --cpu-time measures the calling thread only, so it needs --threads 1.");
            return 2;
        }
        var shapes = GemmShapes.Square.Concat(GemmShapes.Vgg19()).Concat(GemmShapes.Heads())
            .Where(s => filter is null || s.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
        OpenBlas.SetNumThreads(threads);
        Func<Action, int, double> time = cpuTime ? TimeThreadCpu : TimeWall;
        Console.WriteLine($"CPU: {Environment.ProcessorCount} cores, {threads} thread(s) each side, {(cpuTime ? "thread CPU time" : "wall time")}; " +
                          $"our kernel: {kernel}; peer: {OpenBlas.Describe()}");
        Console.WriteLine($"{"shape",-32} {"ops",3} {"M",5} {"N",5} {"K",5} {"ours GF/s",10} {"OpenBLAS",10} {"ratio",6}");
        double logSum = 0;
        foreach (var shape in shapes)
        {
            using var operands = new GemmOperands(shape) { Threads = threads, Kernel = kernel };
            var (ours, peer, ratio) = Measure(operands, secondsPerShape, time);
            logSum += Math.Log(ratio);
            Console.WriteLine($"{shape.Name,-32} {shape.Ops,3} {shape.M,5} {shape.N,5} {shape.K,5} " +
                              $"{shape.Flops / ours / 1e9,10:F1} {shape.Flops / peer / 1e9,10:F1} {ratio,6:F2}");
        }
        if (shapes.Count > 0) Console.WriteLine($"geometric mean of ratios (ours / OpenBLAS GFLOP/s): {Math.Exp(logSum / shapes.Count):F2}");
        return 0;
    }

    /// <summary>Median seconds per call of each side, and the median of the per-round speed ratios ours / OpenBLAS.</summary>
    private static (double Ours, double Peer, double Ratio) Measure(GemmOperands operands, double seconds, Func<Action, int, double> time)
    {
        // Warm up both (JIT, packing buffers, OpenBLAS's threads), then size a round at ~25 ms per side.
        time(operands.Ours, 1);
        time(operands.OpenBlasSgemm, 1);
        double once = Math.Max(time(operands.Ours, 1), time(operands.OpenBlasSgemm, 1));
        int calls = (int)Math.Clamp(0.025 / Math.Max(once, 1e-7), 1, 100000);
        int rounds = (int)Math.Clamp(seconds / (2 * calls * once), 3, 41);
        var ours = new double[rounds];
        var peer = new double[rounds];
        var ratios = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            // Alternate which side goes first, so neither always inherits the other's cache state.
            if (r % 2 == 0)
            {
                ours[r] = time(operands.Ours, calls);
                peer[r] = time(operands.OpenBlasSgemm, calls);
            }
            else
            {
                peer[r] = time(operands.OpenBlasSgemm, calls);
                ours[r] = time(operands.Ours, calls);
            }
            ratios[r] = peer[r] / ours[r];
        }
        return (Median(ours), Median(peer), Median(ratios));
    }

    private static double TimeWall(Action call, int calls)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++) call();
        return Stopwatch.GetElapsedTime(start).TotalSeconds / calls;
    }

    /// <summary>
    /// Seconds per call in the calling thread's CPU time: time slices lost to other processes do not count,
    /// which makes single-threaded comparisons steady on a busy machine.
    /// </summary>
    private static double TimeThreadCpu(Action call, int calls)
    {
        double start = Machine.ThreadCpuSeconds();
        for (int i = 0; i < calls; i++) call();
        return (Machine.ThreadCpuSeconds() - start) / calls;
    }

    private static double Median(double[] values)
    {
        Array.Sort(values);
        return values[values.Length / 2];
    }
}
