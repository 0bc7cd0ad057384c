using System.Reflection;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Sweep;

/// <summary>One option of <c>dicc train</c>: its name without dashes, its flag, and whether it is a switch (takes no value).</summary>
internal sealed record TrainOption(string Name, string Flag, bool IsSwitch);

/// <summary>
/// The options of <c>dicc train</c> as a sweep's grid names them: read from <see cref="TrainSettings"/>' attributes, so
/// that every option <c>dicc train</c> has, and every one it gains later, is a grid key without a change here; and
/// the parse of a cell's arguments by the very parser and checks <c>dicc train</c> uses.
/// </summary>
internal static class TrainArguments
{
    /// <summary>Every <c>dicc train</c> option by its name without dashes ("ema-decay").</summary>
    public static IReadOnlyDictionary<string, TrainOption> Options { get; } = typeof(TrainSettings)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Select(p => p.GetCustomAttribute<CommandOptionAttribute>())
        .Where(a => a is not null && a.LongNames.Count > 0)
        .Select(a => new TrainOption(a!.LongNames[0], "--" + a.LongNames[0], a.ValueName is null))
        .ToDictionary(o => o.Name, StringComparer.Ordinal);

    /// <summary>
    /// Options a grid cannot set, and why: the sweep gives each cell its run directory and seed, the executor
    /// chooses the device, and output modes are the sweep's own.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Reserved { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["out"] = "the sweep gives every cell its own run directory under --out",
        ["resume"] = "re-running the sweep resumes its interrupted cells",
        ["seeds"] = "give the seeds as \"seeds\": [1, 2, 3] or \"seeds\": 3 at the top of the grid",
        ["allow-data-change"] = "a sweep's cells keep the data they were prepared with",
        ["device"] = "the executor chooses each cell's device (dicc sweep --device, or the GPU Slurm gives the task)",
        ["json"] = "the sweep writes each cell's output to its log",
        ["quiet"] = "the sweep writes each cell's output to its log",
    };

    /// <summary>Parses <c>dicc train</c> arguments into its settings, with its own parser and checks (a bad value names its flag).</summary>
    /// <exception cref="UsageException">The arguments are not valid for <c>dicc train</c>.</exception>
    public static TrainSettings Parse(IReadOnlyList<string> arguments)
    {
        var holder = new Holder();
        var app = new CommandApp();
        var silent = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null), Ansi = AnsiSupport.No });
        app.Configure(config =>
        {
            config.ConfigureConsole(silent);
            config.PropagateExceptions();
            config.UseStrictParsing();
            config.Settings.Registrar.RegisterInstance(holder);
            config.AddCommand<Capture>("train");
        });
        string[] args = ["train", .. arguments];
        try
        {
            app.Run(args);
        }
        catch (Exception e) when (e is CommandParseException or CommandRuntimeException)
        {
            var named = DiccApp.ConversionFailure(e, args);
            throw new UsageException((named?.Message ?? e.Message).ReplaceLineEndings(" ").Trim());
        }
        return holder.Settings ?? throw new InvalidOperationException("dicc train's parser returned no settings.");
    }

    private sealed class Holder
    {
        public TrainSettings? Settings { get; set; }
    }

    private sealed class Capture(Holder holder) : Command<TrainSettings>
    {
        public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
        {
            holder.Settings = settings;
            return 0;
        }
    }
}
