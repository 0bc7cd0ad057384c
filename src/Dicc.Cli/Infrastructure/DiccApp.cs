using Dicc.Cli.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// The `dicc` command application: verbs, help with examples, and the mapping from failures to exit codes
/// (bad usage and bad input: one line naming what is wrong plus a hint to --help, exit 2; anything else:
/// one line, exit 1, the stack trace only with DICC_DEBUG=1).
/// </summary>
public static class DiccApp
{
    /// <summary>Runs the command line with the given console (tests pass a recording console).</summary>
    public static int Run(string[] args, IAnsiConsole? console = null)
    {
        console ??= AnsiConsole.Console;
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("dicc");
            config.SetApplicationVersion(EngineInfo.Version);
            config.ConfigureConsole(console);
            config.PropagateExceptions();
            config.UseStrictParsing();
            config.AddCommand<Training.DemoCommand>("demo")
                .WithDescription("Generate long-tailed synthetic faces, train a baseline and a DICC model, print the comparison.")
                .WithExample("demo")
                .WithExample("demo", "--device", "cuda", "--rule", "resample");
            config.AddCommand<Training.TrainCommand>("train")
                .WithDescription("Train a baseline or DICC model (one run or several seeds) into a run directory.")
                .WithExample("train", "--data", "fer2013/", "--method", "dicc", "--rule", "reweight", "--subclasses", "fer2013-b10")
                .WithExample("train", "--data", "synthetic", "--arch", "vgg11", "--width", "0.25", "--epochs", "10", "--lr", "0.01")
                .WithExample("train", "--data", "train.csv", "--preset", "fer", "--seeds", "5", "--out", "runs/fer-baseline")
                .WithExample("train", "--resume", "runs/fer-baseline");
            config.AddCommand<Training.EvalCommand>("eval")
                .WithDescription("Evaluate a run on a data split: metrics, per-class table, confusion matrix (report written to the run).")
                .WithExample("eval", "--run", "runs/fer-dicc")
                .WithExample("eval", "--run", "runs/fer-dicc", "--split", "val", "--ten-crop");
            config.AddCommand<Training.BenchCommand>("bench")
                .WithDescription("Time a baseline step, a DICC step and the clustering module alone; images/s and DICC's share.")
                .WithExample("bench")
                .WithExample("bench", "--device", "cuda", "--batch", "256");
            config.AddCommand<InfoCommand>("info")
                .WithDescription("Engine version, backends, CPU features, GPU devices and CUDA library versions.")
                .WithExample("info");
        });
        try
        {
            return app.Run(args);
        }
        catch (Exception e)
        {
            return Report(console, e);
        }
    }

    internal static int Report(IAnsiConsole console, Exception e)
    {
        var (code, message) = Classify(e);
        console.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
        if (code == ExitCodes.BadUsage && e is CommandParseException or CommandRuntimeException or UsageException)
            console.MarkupLine("[grey]Run 'dicc --help' or 'dicc <verb> --help' for usage.[/]");
        if (Environment.GetEnvironmentVariable("DICC_DEBUG") == "1") console.WriteException(e);
        return code;
    }

    /// <summary>Bad usage and bad input are the user's to fix (exit 2); everything else is ours (exit 1).</summary>
    internal static (int Code, string Message) Classify(Exception e)
    {
        var root = e is CommandRuntimeException { InnerException: { } inner } && inner is not CommandRuntimeException ? inner : e;
        return root switch
        {
            CommandParseException or CommandRuntimeException or UsageException => (ExitCodes.BadUsage, OneLine(root.Message)),
            FileNotFoundException or DirectoryNotFoundException => (ExitCodes.BadUsage, OneLine(root.Message)),
            Engine.InputException => (ExitCodes.BadUsage, OneLine(root.Message)),
            OperationCanceledException => (ExitCodes.InternalError, "cancelled"),
            _ => (ExitCodes.InternalError, $"{OneLine(root.Message)} ({root.GetType().Name}; set DICC_DEBUG=1 for details)"),
        };
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
