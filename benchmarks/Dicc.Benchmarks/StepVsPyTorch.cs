using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Benchmarks;

/// <summary>
/// `step-vs-pytorch`: our CPU training step and PyTorch's (benchmarks/pytorch/cpu_step.py, Debian's python3-torch)
/// on the same model, batch and thread count, in alternating rounds so that load from other processes falls on
/// both alike. Prints each side's median step, the speed ratio, GFLOP/s, % of the measured FMA peak, peak
/// memory, the load average and the instruction sets each side ran.
/// </summary>
internal static class StepVsPyTorch
{
    private const string Usage =
        "usage: step-vs-pytorch [--batch 32,128] [--rounds 7] [--steps 2] [--threads N] [--depth 19] [--width 1.0]\n" +
        "                       [--python /usr/bin/python3] [--memory-format auto|contiguous|channels_last] [--no-peer] [--reference]";

    public static int Run(string[] args)
    {
        int[] batches = [32, 128];
        int rounds = 7, steps = 2, threads = CpuParallel.Threads, depth = 19;
        double width = 1.0;
        string python = "/usr/bin/python3", memoryFormat = "auto";
        bool peer = true, reference = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? v = i + 1 < args.Length ? args[i + 1] : null;
            bool ok = args[i] switch
            {
                "--batch" => TryInts(v, out batches),
                "--rounds" => int.TryParse(v, CultureInfo.InvariantCulture, out rounds) && rounds >= 1,
                "--steps" => int.TryParse(v, CultureInfo.InvariantCulture, out steps) && steps >= 1,
                "--threads" => int.TryParse(v, CultureInfo.InvariantCulture, out threads) && threads >= 1,
                "--depth" => int.TryParse(v, CultureInfo.InvariantCulture, out depth) && Enum.IsDefined(typeof(VggDepth), depth),
                "--width" => double.TryParse(v, CultureInfo.InvariantCulture, out width) && width > 0,
                "--python" => v is not null && (python = v) == v,
                "--memory-format" => v is "auto" or "contiguous" or "channels_last" && (memoryFormat = v) == v,
                "--no-peer" => !(peer = false),
                "--reference" => reference = true,
                _ => false,
            };
            if (!ok)
            {
                Console.Error.WriteLine($"step-vs-pytorch: bad argument '{args[i]}{(v is null ? "" : " " + v)}'.\n{Usage}");
                return 2;
            }
            if (args[i] is not ("--no-peer" or "--reference")) i++;
        }
        string? script = peer ? PyTorchPeer.FindScript() : null;
        if (peer && script is null)
        {
            Console.Error.WriteLine("step-vs-pytorch: benchmarks/pytorch/cpu_step.py not found; run from the repository, or pass --no-peer.");
            return 2;
        }
        if (peer && !File.Exists(python))
        {
            Console.Error.WriteLine($"step-vs-pytorch: {python} not found; install the peer with scripts/install-prerequisites.sh --benchmarks, or pass --no-peer.");
            return 2;
        }
        threads = Math.Min(threads, CpuParallel.Threads);
        using var limit = CpuParallel.LimitThreads(threads);

        var path = reference ? CpuPath.Reference : CpuPath.Fast;
        var vgg = new VggOptions { Depth = (VggDepth)depth, Width = width, InputSize = 44 };
        Console.WriteLine($"step-vs-pytorch: {vgg.Depth} x{width} on 1x44x44, 7 classes, SGD (momentum 0.9, weight decay 5e-4), float32, " +
                          $"{rounds} rounds x {steps} steps per side, alternating");
        Console.WriteLine($"machine: {CpuModel()}, {Environment.ProcessorCount} cores; load average {Machine.LoadAverage()}");
        double peak = FmaPeak.Measure(threads);
        Console.WriteLine($"FP32 peak on {threads} thread(s): {peak:F0} GFLOP/s (our {Engine.Backends.Cpu.Gemm.BestKernel} micro-kernel on L1-resident data, per-thread CPU time)");
        Console.WriteLine($"ours: Dicc CPU backend, {path} path, {Engine.Backends.Cpu.Gemm.BestKernel} GEMM kernel, {threads} thread(s), .NET {Environment.Version}");

        foreach (int batch in batches)
        {
            Console.WriteLine();
            ResetPeakMemory();
            double rssBefore = Machine.PeakResidentMiB();
            using var backend = new CpuBackend(path);
            var random = new RandomStream(7);
            var images = backend.Create(new Shape(batch, 1, 44, 44));
            var labels = backend.Create(new Shape(batch), DType.Int32);
            backend.CopyIn<float>(images, Enumerable.Range(0, (int)images.ElementCount).Select(_ => random.NextFloat()).ToArray());
            backend.CopyIn<int>(labels, Enumerable.Range(0, batch).Select(_ => random.NextInt(7)).ToArray());
            var model = new BaselineModel(backend, vgg, 7,
                new ModelTrainingOptions { Sgd = new SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }, Seed = 1 });
            double stepFlop = 3.0 * model.ForwardFlops(new Shape(batch, 1, 44, 44));
            void Step() => model.TrainStep(images, labels, 1e-4f);
            // The first step plans memory; the .NET JIT recompiles hot methods (tier 1) after ~30 calls, in the
            // background, so with two warm-up steps the first timed round still ran some tier-0 code (442-454 ms against
            // ~330 at batch 32). Five steps, as the peer's warm-up gives each memory format.
            for (int i = 0; i < 5; i++) Step();

            using var torch = peer ? PyTorchPeer.Start(python, script!, batch, threads, depth, width, memoryFormat) : null;
            if (torch is not null) Console.WriteLine($"peer: {torch.Describe()}");
            Console.WriteLine($"batch {batch} ({stepFlop / 1e9:F1} GFLOP per step)");
            Console.WriteLine($"  {"round",5} {"ours ms",9} {(torch is null ? "" : $"{"PyTorch ms",11} {"ratio",6}")} {"load",6}");
            var ours = new List<double>();
            var oursCpu = new List<double>();
            var theirs = new List<double>();
            var theirsCpu = new List<double>();
            var ratios = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                (double[] Wall, double[] Cpu) mine, peerTimes = ([], []);
                if (torch is not null && r % 2 == 1) peerTimes = torch.Run(steps);
                mine = TimeOurs(Step, steps);
                if (torch is not null && r % 2 == 0) peerTimes = torch.Run(steps);
                ours.AddRange(mine.Wall);
                oursCpu.AddRange(mine.Cpu);
                string line = $"  {r + 1,5} {Median(mine.Wall) * 1e3,9:F0}";
                if (torch is not null)
                {
                    theirs.AddRange(peerTimes.Wall);
                    theirsCpu.AddRange(peerTimes.Cpu);
                    ratios.Add(Median(peerTimes.Wall) / Median(mine.Wall));
                    line += $" {Median(peerTimes.Wall) * 1e3,11:F0} {ratios[^1],6:F2}";
                }
                Console.WriteLine($"{line} {Machine.LoadAverage1(),6:F2}");
            }
            double oursPeak = Machine.PeakResidentMiB();
            double theirPeak = torch?.Quit() ?? double.NaN;
            Console.WriteLine($"  {"side",-8} {"median ms",10} {"GFLOP/s",8} {"% peak",7} {"images/s",9} {"CPU s/step",11} {"peak RSS MiB",13}");
            Row("ours", ours, oursCpu, $"{oursPeak,13:F0}");
            if (torch is not null)
            {
                Row("PyTorch", theirs, theirsCpu, $"{theirPeak,13:F0}");
                Console.WriteLine($"  speed ratio ours / PyTorch: {Median(theirs) / Median(ours):F2}x (median of per-round ratios {Median(ratios):F2}x); " +
                                  $"load average {Machine.LoadAverage()}");
            }
            Console.WriteLine($"  (peak RSS is each process's high-water mark over this batch; ours was {rssBefore:F0} MiB before building the model)");
            // Both sides are credited with the direct convolution's FLOPs; Winograd (ours and oneDNN's, where it picks it)
            // and our small-map path skip some of them, so "% peak" can pass 100% without either side breaking the peak.
            Console.WriteLine("  (GFLOP/s and % peak count the direct convolution's FLOPs for both sides, whatever algorithm ran: " +
                              "Winograd and the small-map path do fewer, so above 100% is possible)");

            void Row(string name, List<double> wall, List<double> cpu, string memory)
            {
                double m = Median(wall);
                Console.WriteLine($"  {name,-8} {m * 1e3,10:F0} {stepFlop / m / 1e9,8:F1} {100 * stepFlop / m / 1e9 / peak,6:F1}% " +
                                  $"{batch / m,9:F1} {Median(cpu),11:F2} {memory}");
            }
        }
        double load = Machine.LoadAverage1();
        if (load > 0.5 * threads)
            Console.WriteLine($"\nNOTE: the one-minute load average is {load:F2} on {threads} measured thread(s): the machine was not quiet, " +
                              "so the absolute figures are depressed (the ratio of alternating rounds is the figure to compare).");
        return 0;
    }

    private static (double[] Wall, double[] Cpu) TimeOurs(Action step, int steps)
    {
        var wall = new double[steps];
        var cpu = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            double c = Machine.ProcessCpuSeconds();
            long start = Stopwatch.GetTimestamp();
            step();
            wall[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            cpu[i] = Machine.ProcessCpuSeconds() - c;
        }
        return (wall, cpu);
    }

    private static bool TryInts(string? v, out int[] values)
    {
        values = [];
        if (v is null) return false;
        var parts = v.Split(',', StringSplitOptions.RemoveEmptyEntries);
        var list = new List<int>();
        foreach (var p in parts)
        {
            if (!int.TryParse(p, CultureInfo.InvariantCulture, out int x) || x < 2) return false;
            list.Add(x);
        }
        values = [.. list];
        return values.Length > 0;
    }

    /// <summary>Resets this process's peak-memory counter (VmHWM), where the kernel allows it.</summary>
    private static void ResetPeakMemory()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "CPU" : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return "CPU"; }
    }

    private static double Median(IEnumerable<double> values)
    {
        var a = values.OrderBy(x => x).ToArray();
        return a.Length == 0 ? double.NaN : a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }
}
