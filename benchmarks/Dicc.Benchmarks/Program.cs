using System.Globalization;
using BenchmarkDotNet.Running;
using Dicc.Benchmarks.Gemm;
using Dicc.Engine.Models;

namespace Dicc.Benchmarks;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet by default (e.g. <c>--filter *TrainStep*</c>); quick modes print a table without it:
    /// <c>gemm-quick [options]</c> and <c>train-step [depth] [batch] [width] [steps]</c>.
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gemm-quick") return GemmQuick.Run(args[1..]);
        if (args.Length > 0 && args[0] == "layer-profile") return Profiling.LayerProfile.Run(args[1..]);
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
