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
        "                  [--ours-only] [--worker-stats]\n" +
        "                  [--openblas-core TYPE]  (default: the best for this CPU, e.g. SkylakeX with AVX-512)";

    public static int Run(string[] args)
    {
        string? filter = null;
        double secondsPerShape = 1.5;
        int threads = CpuParallel.Threads;
        var kernel = Engine.Backends.Cpu.Gemm.BestKernel;
        bool cpuTime = false, oneDnn = true, oursOnly = false, workerStats = false;
        string? openBlasCore = null;
        for (int i = 0; i < args.Length; i++)
        {
            string? value = i + 1 < args.Length ? args[i + 1] : null;
            bool flag = args[i] is "--cpu-time" or "--no-onednn" or "--ours-only" or "--worker-stats";
            bool ok = args[i] switch
            {
                "--filter" => (filter = value) is not null,
                "--threads" => int.TryParse(value, CultureInfo.InvariantCulture, out threads) && threads >= 1,
                "--kernel" => Enum.TryParse(value, ignoreCase: true, out kernel) && Enum.IsDefined(kernel),
                "--seconds" => double.TryParse(value, CultureInfo.InvariantCulture, out secondsPerShape) && secondsPerShape > 0,
                "--cpu-time" => cpuTime = true,
                "--no-onednn" => !(oneDnn = false),
                "--ours-only" => oursOnly = true,
                "--worker-stats" => workerStats = true,
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
        bool peers = !oursOnly;
        Console.WriteLine($"{"shape",-32} {"ops",3} {"M",5} {"N",5} {"K",5} {"ours GF/s",10}" + (peers ? $" {"OpenBLAS",10} {"ratio",6}" : "") +
                          (peers && oneDnn ? $" {"oneDNN",10} {"ratio",6}" : ""));
        double logBlas = 0, logDnn = 0;
        CpuWorkerStats.Enabled = workerStats;
        foreach (var shape in shapes)
        {
            using var operands = new GemmOperands(shape) { Threads = threads, Kernel = kernel };
            Action[] sides = !peers ? [operands.Ours] :
                oneDnn ? [operands.Ours, operands.OpenBlasSgemm, operands.OneDnnSgemm] : [operands.Ours, operands.OpenBlasSgemm];
            var (seconds, ratios) = Measure(sides, secondsPerShape, time, workerStats);
            string line = $"{shape.Name,-32} {shape.Ops,3} {shape.M,5} {shape.N,5} {shape.K,5} {shape.Flops / seconds[0] / 1e9,10:F1}";
            if (peers)
            {
                logBlas += Math.Log(ratios[1]);
                line += $" {shape.Flops / seconds[1] / 1e9,10:F1} {ratios[1],6:F2}";
            }
            if (peers && oneDnn)
            {
                logDnn += Math.Log(ratios[2]);
                line += $" {shape.Flops / seconds[2] / 1e9,10:F1} {ratios[2],6:F2}";
            }
            Console.WriteLine(line);
            if (workerStats) Console.WriteLine(_oursStats.Describe());
        }
        if (shapes.Count > 0 && peers)
            Console.WriteLine($"geometric mean of ratios (ours / peer GFLOP/s): OpenBLAS {Math.Exp(logBlas / shapes.Count):F2}" +
                              (oneDnn ? $", oneDNN {Math.Exp(logDnn / shapes.Count):F2}" : "") + $"; load average {Machine.LoadAverage()}");
        else if (shapes.Count > 0)
            Console.WriteLine($"load average {Machine.LoadAverage()}");
        return 0;
    }

    /// <summary>
    /// Median seconds per call of each side, and for each peer the median of the per-round speed ratios ours / peer
    /// (index 0 is ours, its ratio 1). The sides run one after another in every round, in a rotating order.
    /// </summary>
    private static (double[] Seconds, double[] Ratios) Measure(Action[] sides, double seconds, Func<Action, int, double> time, bool stats = false)
    {
        // Warm up every side (JIT, packing buffers, the peers' threads), then size a round at ~25 ms per side.
        foreach (var side in sides) time(side, 1);
        double once = sides.Max(side => time(side, 1));
        int calls = (int)Math.Clamp(0.025 / Math.Max(once, 1e-7), 1, 100000);
        int rounds = (int)Math.Clamp(seconds / (sides.Length * calls * once), 3, 41);
        var perSide = new double[sides.Length][];
        var ratios = new double[sides.Length][];
        for (int s = 0; s < sides.Length; s++) { perSide[s] = new double[rounds]; ratios[s] = new double[rounds]; }
        if (stats) { _oursStats = new OursStats(); CpuWorkerStats.Reset(); }
        for (int r = 0; r < rounds; r++)
        {
            // Rotate which side goes first, so none always inherits another's cache state.
            for (int t = 0; t < sides.Length; t++)
            {
                int s = (r + t) % sides.Length;
                if (stats && s == 0)
                {
                    CpuWorkerStats.Enabled = true;
                    var (oursBefore, othersBefore) = ThreadCpuByOwner();
                    perSide[s][r] = time(sides[s], calls);
                    var (oursAfter, othersAfter) = ThreadCpuByOwner();
                    CpuWorkerStats.Enabled = false;
                    _oursStats.Wall += perSide[s][r] * calls;
                    _oursStats.OursCpu += oursAfter - oursBefore;
                    _oursStats.OthersCpu += othersAfter - othersBefore;
                }
                else perSide[s][r] = time(sides[s], calls);
            }
            for (int s = 0; s < sides.Length; s++) ratios[s][r] = perSide[s][r] / perSide[0][r];
        }
        return ([.. perSide.Select(Median)], [.. ratios.Select(Median)]);
    }

    private static OursStats _oursStats = new();

    /// <summary>What --worker-stats prints per shape: over our timed rounds only, where the CPU time went.</summary>
    private sealed class OursStats
    {
        public double Wall, OursCpu, OthersCpu;

        public string Describe()
        {
            var line = new System.Text.StringBuilder(
                $"    ours' rounds: {Wall:F2} s wall; CPU {OursCpu:F2} s by our threads ({OursCpu / Wall:F2} cores), " +
                $"{OthersCpu:F2} s by the process's other threads (peers' idle workers); per thread (parts, jobs joined, busy s):");
            for (int slot = 0; slot < CpuWorkerStats.Slots; slot++)
            {
                var (jobs, parts, busy) = CpuWorkerStats.Read(slot);
                if (jobs > 0) line.Append($" {(slot == 0 ? "caller" : $"worker {slot}")} {parts}, {jobs}, {busy:F2};");
            }
            return line.ToString();
        }
    }

    /// <summary>
    /// CPU seconds (user + system, from /proc/self/task, in clock ticks of 10 ms) of our threads (the calling thread,
    /// the main one, and the engine's workers, named "Dicc CPU worker N") and of the process's other threads.
    /// </summary>
    private static (double Ours, double Others) ThreadCpuByOwner()
    {
        double ours = 0, others = 0;
        int pid = Environment.ProcessId;
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                double cpu = (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
                string comm = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                if (Path.GetFileName(dir) == pid.ToString(CultureInfo.InvariantCulture) || comm.StartsWith("Dicc CPU", StringComparison.Ordinal))
                    ours += cpu;
                else others += cpu;
            }
            catch (IOException) { } // a thread that ended
        }
        return (ours, others);
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
