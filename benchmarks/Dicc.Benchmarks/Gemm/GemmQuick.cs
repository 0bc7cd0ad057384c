using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends.Cpu;

namespace Dicc.Benchmarks.Gemm;

/// <summary>
/// `gemm-quick`: our Sgemm against OpenBLAS on every shape in about a minute, without BenchmarkDotNet.
/// The two alternate in short timed rounds, so that load from other processes hits both alike, and each
/// side's figure is its median round.
/// </summary>
internal static class GemmQuick
{
    public static int Run(string[] args)
    {
        string? filter = null;
        double secondsPerShape = 1.5;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--filter" when i + 1 < args.Length: filter = args[++i]; break;
                case "--seconds" when i + 1 < args.Length: secondsPerShape = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine($"gemm-quick: unknown argument '{args[i]}' (use --filter TEXT, --seconds PER_SHAPE).");
                    return 2;
            }
        }
        var shapes = GemmShapes.Square.Concat(GemmShapes.Vgg19())
            .Where(s => filter is null || s.ToString().Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
        Console.WriteLine($"CPU: {Environment.ProcessorCount} threads; our kernel: {Engine.Backends.Cpu.Gemm.BestKernel}; peer: {OpenBlas.Describe()}");
        Console.WriteLine($"{"shape",-42} {"ops",3} {"M",5} {"N",5} {"K",5} {"ours GF/s",10} {"OpenBLAS",10} {"ratio",6}");
        double logSum = 0;
        foreach (var shape in shapes)
        {
            using var operands = new GemmOperands(shape);
            var (ours, peer) = Measure(operands, secondsPerShape);
            double oursGf = shape.Flops / ours / 1e9, peerGf = shape.Flops / peer / 1e9;
            logSum += Math.Log(oursGf / peerGf);
            Console.WriteLine($"{shape.Name,-42} {shape.Ops,3} {shape.M,5} {shape.N,5} {shape.K,5} {oursGf,10:F1} {peerGf,10:F1} {oursGf / peerGf,6:F2}");
        }
        if (shapes.Count > 0) Console.WriteLine($"geometric mean of ratios: {Math.Exp(logSum / shapes.Count):F2}");
        return 0;
    }

    /// <summary>Median seconds per call of ours and of OpenBLAS, measured in alternating rounds.</summary>
    private static (double Ours, double Peer) Measure(GemmOperands operands, double seconds)
    {
        // Warm up both (JIT, packing buffers, OpenBLAS threads) and size a round at ~25 ms per side.
        double once = Math.Max(Time(operands.Ours, 1), Time(operands.OpenBlasSgemm, 1));
        once = Math.Min(once, Math.Min(Time(operands.Ours, 1), Time(operands.OpenBlasSgemm, 1)));
        int calls = (int)Math.Clamp(0.025 / Math.Max(once, 1e-7), 1, 100000);
        int rounds = (int)Math.Clamp(seconds / (2 * calls * once), 3, 41);
        var ours = new double[rounds];
        var peer = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            // Alternate which side goes first, so neither always follows the other's cache footprint.
            if (r % 2 == 0)
            {
                ours[r] = Time(operands.Ours, calls);
                peer[r] = Time(operands.OpenBlasSgemm, calls);
            }
            else
            {
                peer[r] = Time(operands.OpenBlasSgemm, calls);
                ours[r] = Time(operands.Ours, calls);
            }
        }
        return (Median(ours), Median(peer));
    }

    private static double Time(Action call, int calls)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++) call();
        return Stopwatch.GetElapsedTime(start).TotalSeconds / calls;
    }

    private static double Median(double[] values)
    {
        Array.Sort(values);
        return values[values.Length / 2];
    }
}
