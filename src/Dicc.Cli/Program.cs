using Dicc.Cli.Infrastructure;

namespace Dicc.Cli;

public static class Program
{
    public static int Main(string[] args) => DiccApp.Run(args);
}
