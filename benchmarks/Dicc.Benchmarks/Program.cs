using System.Globalization;
using BenchmarkDotNet.Running;
using Dicc.Benchmarks.Gemm;
using Dicc.Engine.Models;

namespace Dicc.Benchmarks;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet by default (e.g. <c>--filter *TrainStep*</c>); quick modes print a table without it:
    /// <c>gemm-quick [options]</c>, <c>train-step [depth] [batch] [width] [steps]</c>, and on a GPU <c>gpu-step [options]</c>,
    /// <c>parity-export [options]</c>, <c>parity-compare [options]</c> (see Gpu/).
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gemm-quick") return GemmQuick.Run(args[1..]);
        if (args.Length > 0 && args[0] is "gpu-step" or "parity-export" or "parity-compare")
        {
            try
            {
                return args[0] switch
                {
                    "gpu-step" => Gpu.GpuStep.Run(args[1..]),
                    "parity-export" => Gpu.GpuParity.Export(args[1..]),
                    _ => Gpu.GpuParity.Compare(args[1..]),
                };
            }
            catch (Engine.InputException e)
            {
                Console.Error.WriteLine($"{args[0]}: {e.Message}");
                return 2;
            }
        }
        if (args.Length > 0 && args[0] == "train-step")
        {
            var depth = args.Length > 1 ? Enum.Parse<VggDepth>("Vgg" + args[1]) : VggDepth.Vgg19;
            int batch = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 32;
            double width = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 1.0;
            int steps = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 5;
            TrainStep.Quick(depth, batch, width, steps);
            return 0;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
