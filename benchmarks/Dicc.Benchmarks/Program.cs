using BenchmarkDotNet.Running;
using Dicc.Benchmarks.Gemm;

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
        if (args.Length > 0 && args[0] == "train-step") return TrainStepBenchmarks.Quick(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
