using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends.Cpu;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// `gemm-quick`: our Sgemm against OpenBLAS (with its best kernels for this CPU) and, when Debian's libdnnl2 is
/// installed, oneDNN's dnnl_sgemm, on every shape in a minute or two, without BenchmarkDotNet. The sides
/// alternate in short timed rounds (~25 ms a side), so that load from other processes hits them alike. Each
/// side's GFLOP/s is its median round; a ratio is the median of the per-round ratios (ours / peer speed).
/// </summary>
internal static class GemmQuick
{
    private const string Usage =
        "usage: gemm-quick [--filter TEXT] [--threads N] [--kernel avx512|avx2|scalar] [--cpu-time] [--seconds PER_SHAPE] [--no-onednn]\n" +
        "                  [--openblas-core TYPE]  (default: the best for this CPU, e.g. SkylakeX with AVX-512)";

    public static int Run(string[] args)
    {
        string? filter = null;
        double secondsPerShape = 1.5;
        int threads = CpuParallel.Threads;
        var kernel = Engine.Backends.Cpu.Gemm.BestKernel;
        bool cpuTime = false, oneDnn = true;
        string? openBlasCore = null;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            bool flag = args[i] is "--cpu-time" or "--no-onednn";
            bool ok = args[i] switch
            {
                "--filter" => (filter = value) is not null,
                "--threads" => int.TryParse(value, CultureInfo.InvariantCulture, out threads) && threads >= 1,
                "--kernel" => Enum.TryParse(value, ignoreCase: true, out kernel) && Enum.IsDefined(kernel),
                "--seconds" => double.TryParse(value, CultureInfo.InvariantCulture, out secondsPerShape) && secondsPerShape > 0,
                "--cpu-time" => cpuTime = true,
                "--no-onednn" => !(oneDnn = false),
                "--openblas-core" => (openBlasCore = value) is not null,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"gemm-quick: bad argument '{args[i]}{(value is null || flag ? "" : " " + value)}'.\n{Usage}");
                return 2;
            }
            if (!flag) i++;
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
        OpenBlas.ChooseCoreType(openBlasCore);
        OpenBlas.SetNumThreads(threads);
        oneDnn &= OneDnn.IsAvailable;
        if (oneDnn) OneDnn.SetNumThreads(threads);
        Func<Action, int, double> time = cpuTime ? TimeThreadCpu : TimeWall;
        Console.WriteLine($"CPU: {Environment.ProcessorCount} cores, {threads} thread(s) each side, {(cpuTime ? "thread CPU time" : "wall time")}; " +
                          $"load average {Machine.LoadAverage()}");
        Console.WriteLine($"ours: {kernel} kernel; peer: {OpenBlas.Describe()}");
        Console.WriteLine($"second peer: {(oneDnn ? OneDnn.Describe() + $", {threads} OpenMP thread(s)" : OneDnn.IsAvailable ? "oneDNN skipped (--no-onednn)" : OneDnn.Describe())}");
        Console.WriteLine($"{"shape",-32} {"ops",3} {"M",5} {"N",5} {"K",5} {"ours GF/s",10} {"OpenBLAS",10} {"ratio",6}" +
                          (oneDnn ? $" {"oneDNN",10} {"ratio",6}" : ""));
        double logBlas = 0, logDnn = 0;
        foreach (var shape in shapes)
        {
            using var operands = new GemmOperands(shape) { Threads = threads, Kernel = kernel };
            Action[] sides = oneDnn ? [operands.Ours, operands.OpenBlasSgemm, operands.OneDnnSgemm] : [operands.Ours, operands.OpenBlasSgemm];
            var (seconds, ratios) = Measure(sides, secondsPerShape, time);
            logBlas += Math.Log(ratios[1]);
            string line = $"{shape.Name,-32} {shape.Ops,3} {shape.M,5} {shape.N,5} {shape.K,5} " +
                          $"{shape.Flops / seconds[0] / 1e9,10:F1} {shape.Flops / seconds[1] / 1e9,10:F1} {ratios[1],6:F2}";
            if (oneDnn)
            {
                logDnn += Math.Log(ratios[2]);
                line += $" {shape.Flops / seconds[2] / 1e9,10:F1} {ratios[2],6:F2}";
            }
            Console.WriteLine(line);
        }
        if (shapes.Count > 0)
            Console.WriteLine($"geometric mean of ratios (ours / peer GFLOP/s): OpenBLAS {Math.Exp(logBlas / shapes.Count):F2}" +
                              (oneDnn ? $", oneDNN {Math.Exp(logDnn / shapes.Count):F2}" : "") + $"; load average {Machine.LoadAverage()}");
        return 0;
    }

    /// <summary>
    /// Median seconds per call of each side, and for each peer the median of the per-round speed ratios ours / peer
    /// (index 0 is ours, its ratio 1). The sides run one after another in every round, in a rotating order.
    /// </summary>
    private static (double[] Seconds, double[] Ratios) Measure(Action[] sides, double seconds, Func<Action, int, double> time)
    {
        // Warm up every side (JIT, packing buffers, the peers' threads), then size a round at ~25 ms per side.
        foreach (var side in sides) time(side, 1);
        double once = sides.Max(side => time(side, 1));
        int calls = (int)Math.Clamp(0.025 / Math.Max(once, 1e-7), 1, 100000);
        int rounds = (int)Math.Clamp(seconds / (sides.Length * calls * once), 3, 41);
        var perSide = new double[sides.Length][];
        var ratios = new double[sides.Length][];
        for (int s = 0; s < sides.Length; s++) { perSide[s] = new double[rounds]; ratios[s] = new double[rounds]; }
        for (int r = 0; r < rounds; r++)
        {
            // Rotate which side goes first, so none always inherits another's cache state.
            for (int t = 0; t < sides.Length; t++)
            {
                int s = (r + t) % sides.Length;
                perSide[s][r] = time(sides[s], calls);
            }
            for (int s = 0; s < sides.Length; s++) ratios[s][r] = perSide[s][r] / perSide[0][r];
        }
        return ([.. perSide.Select(Median)], [.. ratios.Select(Median)]);
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
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        return sorted[sorted.Length / 2];
    }
}
