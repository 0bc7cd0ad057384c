using System.Globalization;
using BenchmarkDotNet.Running;
using Dicc.Engine.Models;

namespace Dicc.Benchmarks;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet by default (e.g. <c>--filter *TrainStep*</c>); quick modes for a fast look:
    /// <c>train-step [depth] [batch] [width] [steps]</c>.
    /// </summary>
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "train-step")
        {
            var depth = args.Length > 1 ? Enum.Parse<VggDepth>("Vgg" + args[1]) : VggDepth.Vgg19;
            int batch = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 32;
            double width = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 1.0;
            int steps = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 5;
            TrainStep.Quick(depth, batch, width, steps);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
