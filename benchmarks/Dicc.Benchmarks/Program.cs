using BenchmarkDotNet.Running;
using Dicc.Benchmarks.Gemm;

namespace Dicc.Benchmarks;

public static class Program
{
    public static int Main(string[] args)
    {
        // Quick modes print a table without BenchmarkDotNet; anything else goes to BenchmarkDotNet's switcher.
        if (args.Length > 0 && args[0] == "gemm-quick") return GemmQuick.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
