using BenchmarkDotNet.Running;
using Dicc.Benchmarks.Gemm;

namespace Dicc.Benchmarks;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet by default (e.g. <c>--filter *TrainStep*</c>); quick modes print a table without it:
    /// <c>gemm-quick [options]</c>, <c>layer-profile [depth] [batch] [width]</c>, <c>conv-profile [batch] [options]</c>, <c>step-vs-pytorch [options]</c>, <c>train-step [depth] [batch] [width] [steps]</c>, and on a GPU <c>gpu-step [options]</c>,
    /// <c>parity-export [options]</c>, <c>parity-compare [options]</c> (see Gpu/).
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gemm-quick") return GemmQuick.Run(args[1..]);
        if (args.Length > 0 && args[0] == "layer-profile") return Profiling.LayerProfile.Run(args[1..]);
        if (args.Length > 0 && args[0] == "conv-profile") return Profiling.ConvProfile.Run(args[1..]);
        if (args.Length > 0 && args[0] == "step-vs-pytorch") return StepVsPyTorch.Run(args[1..]);
        if (args.Length > 0 && args[0] == "train-step") return TrainStepBenchmarks.Quick(args[1..]);
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
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
