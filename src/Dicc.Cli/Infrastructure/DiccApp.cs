using Dicc.Engine;
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
    /// <summary>
    /// Runs the command line: results (and help) to <paramref name="console"/>, errors and warnings to
    /// <paramref name="errorConsole"/> (standard output and standard error by default; tests pass recording consoles).
    /// </summary>
    public static int Run(string[] args, IAnsiConsole? console = null, IAnsiConsole? errorConsole = null)
    {
        console ??= AnsiConsole.Console;
        errorConsole ??= console == AnsiConsole.Console
            ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Error) })
            : console;
        var errors = new ErrorConsole(errorConsole);
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("dicc");
            config.SetApplicationVersion(EngineInfo.Version);
            config.ConfigureConsole(console);
            config.Settings.Registrar.RegisterInstance(errors);
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
                .WithExample("train", "--data", "raf-db/", "--class-map", "1=surprise,2=fear,3=disgust,4=happy,5=sad,6=angry,7=neutral", "--test-fraction", "0.1")
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
            config.AddCommand<PredictCommand>("predict")
                .WithDescription("Label and class probabilities per image with a trained run. " + PredictCommand.FaceCropCaveat)
                .WithExample("predict", "--run", "runs/dicc-b10", "face1.png", "face2.png")
                .WithExample("predict", "--run", "runs/dicc-b10", "--checkpoint", "last", "--json", "faces/");
            config.AddCommand<ExportCommand>("export")
                .WithDescription("Write a trained run's inference graph as an ONNX model (class probabilities; class names and preprocessing in its metadata).")
                .WithExample("export", "--run", "runs/dicc-b10", "--onnx", "dicc-b10.onnx")
                .WithExample("export", "--run", "runs/dicc-b10", "--onnx", "dicc-b10.onnx", "--opset", "13", "--batchnorm", "keep");
            config.AddCommand<LongTailCommand>("longtail")
                .WithDescription("Draw a long-tailed train split (validation and test unchanged) and write it as a manifest or a FER2013 CSV.")
                .WithExample("longtail", "--data", "data/fer2013", "--beta", "10", "--out", "data/fer2013-b10.manifest")
                .WithExample("longtail", "--data", "fer2013.csv", "--counts", "fer2013-beta10", "--out", "fer2013-b10.csv");
            config.AddCommand<SynthCommand>("synth")
                .WithDescription("Write the built-in synthetic faces (seven expressions, balanced or long-tailed) as an image-folder dataset.")
                .WithExample("synth", "--out", "data/synth")
                .WithExample("synth", "--out", "data/synth-b10", "--per-class", "1000", "--beta", "10", "--seed", "7");
            config.AddCommand<PackCommand>("pack")
                .WithDescription("Decode a dataset once into a .diccpack file (uint8, memory-mapped) that loads in milliseconds.")
                .WithExample("pack", "--data", "data/fer2013", "--out", "data/fer2013.diccpack")
                .WithExample("pack", "--data", "photos", "--classes", "calm,joy,anger", "--on-bad-image", "skip", "--out", "photos.diccpack");
            config.AddCommand<ClusterCommand>("cluster")
                .WithDescription("One DICC clustering step on .npy arrays: features and labels in, subclass pseudo-labels (and updated centres) out.")
                .WithExample("cluster", "--features", "f.npy", "--labels", "y.npy", "--subclasses", "fer2013-b10", "--out", "p.npy")
                .WithExample("cluster", "--features", "f.npy", "--labels", "y.npy", "--subclasses", "auto", "--partition", "rank",
                    "--centers", "c.npy", "--ema-decay", "0.9", "--out", "p.npy", "--centers-out", "c2.npy");
            config.AddCommand<Sweep.SweepCommand>("sweep")
                .WithDescription("A grid of runs (datasets x methods x rules x settings x seeds), a run directory per cell: on this machine's workers or a Slurm job array; re-running resumes.")
                .WithExample("sweep", "--grid", "table1.json", "--out", "runs/table1", "--dry-run")
                .WithExample("sweep", "--grid", "table1.json", "--out", "runs/table1", "--parallel", "4")
                .WithExample("sweep", "--grid", "table1.json", "--out", "runs/table1", "--executor", "slurm", "--partition", "gpu", "--gpus-per-task", "1", "--time", "24:00:00")
                .WithExample("sweep", "--out", "runs/table1", "--status")
                .WithExample("sweep", "--out", "runs/table1", "--report");
            config.AddCommand<CompareCommand>("compare")
                .WithDescription("The paper's table from finished runs: rule x baseline/DICC, mean ± std over seeds, min and best of seeds beside it.")
                .WithExample("compare", "runs/")
                .WithExample("compare", "runs/b10-baseline", "runs/b10-dicc", "--metric", "balanced_accuracy", "--markdown", "table.md", "--csv", "table.csv");
        });
        try
        {
            return app.Run(args);
        }
        catch (Exception e)
        {
            return Report(errors, ConversionFailure(e, args) ?? e);
        }
    }

    /// <summary>Every verb and its command type (what <c>dicc --help</c> lists), for tests that render each verb's help.</summary>
    public static IReadOnlyList<(string Verb, Type Command)> Verbs { get; } =
    [
        ("demo", typeof(Training.DemoCommand)), ("train", typeof(Training.TrainCommand)), ("eval", typeof(Training.EvalCommand)),
        ("bench", typeof(Training.BenchCommand)), ("info", typeof(InfoCommand)), ("predict", typeof(PredictCommand)), ("export", typeof(ExportCommand)),
        ("longtail", typeof(LongTailCommand)), ("synth", typeof(SynthCommand)), ("pack", typeof(PackCommand)),
        ("cluster", typeof(ClusterCommand)), ("sweep", typeof(Sweep.SweepCommand)), ("compare", typeof(CompareCommand)),
    ];

    /// <summary>
    /// A value that does not convert to its option's type (<c>--seed abc</c>) is bad usage: Spectre reports it as
    /// "Failed to convert 'abc' to UInt64." around the converter's exception; this names the option instead.
    /// </summary>
    internal static UsageException? ConversionFailure(Exception e, string[] args)
    {
        if (e is not CommandRuntimeException { InnerException: ArgumentException or FormatException or OverflowException } runtime) return null;
        var match = System.Text.RegularExpressions.Regex.Match(e.Message, "^Failed to convert '(.*)' to ([^ ]+?)\\.?$");
        if (!match.Success) return null;
        string value = match.Groups[1].Value;
        string type = match.Groups[2].Value;
        // Nullable options (int?, double?) report "Nullable`1"; the converter's own message names the type.
        if (type.StartsWith("Nullable", StringComparison.Ordinal) &&
            System.Text.RegularExpressions.Regex.Match(runtime.InnerException!.Message, "valid value for (\\w+)") is { Success: true } inner)
            type = inner.Groups[1].Value;
        string expected = type switch
        {
            "Int32" or "Int64" => "a whole number",
            "UInt32" or "UInt64" => "a whole number >= 0",
            "Single" or "Double" or "Decimal" => "a number",
            "Boolean" => "true or false",
            var other => $"a {other}",
        };
        for (int i = 0; i < args.Length; i++)
        {
            string? option = args[i] == value && i > 0 && args[i - 1].StartsWith('-') ? args[i - 1]
                : args[i].StartsWith('-') && args[i].EndsWith("=" + value, StringComparison.Ordinal) ? args[i][..^(value.Length + 1)]
                : null;
            if (option is not null) return new UsageException($"{option}: '{value}' is not {expected}.");
        }
        return new UsageException($"'{value}' is not {expected}.");
    }

    internal static int Report(ErrorConsole errors, Exception e)
    {
        var (code, message) = Classify(e);
        errors.Error(message);
        if (code == ExitCodes.BadUsage && e is CommandParseException or CommandRuntimeException or UsageException)
            errors.MarkupLine("[grey]Run 'dicc --help' or 'dicc <verb> --help' for usage.[/]");
        if (Environment.GetEnvironmentVariable("DICC_DEBUG") == "1") errors.Console.WriteException(e);
        return code;
    }

    /// <summary>Bad usage and bad input are the user's to fix (exit 2); everything else is ours (exit 1).</summary>
    internal static (int Code, string Message) Classify(Exception e)
    {
        var root = e is CommandRuntimeException { InnerException: { } inner } && inner is not CommandRuntimeException ? inner : e;
        return root switch
        {
            CommandParseException or CommandRuntimeException or UsageException => (ExitCodes.BadUsage, OneLine(root.Message)),
            // The user's environment, not ours: a missing, unreadable or unwritable path, a full disk. The
            // system's messages name the path (AtomicFile adds the file it was writing).
            IOException or UnauthorizedAccessException => (ExitCodes.BadUsage, OneLine(root.Message)),
            Engine.InputException input => (ExitCodes.BadUsage, OneLine(ParameterFlags.Translate(input))),
            OperationCanceledException => (ExitCodes.InternalError, "cancelled"),
            _ => (ExitCodes.InternalError, $"{OneLine(root.Message)} ({root.GetType().Name}; set DICC_DEBUG=1 for details)"),
        };
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
