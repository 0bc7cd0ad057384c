using Dicc.Cli.Infrastructure;
using NUnit.Framework;
using Spectre.Console;

namespace Dicc.Cli.Tests;

/// <summary>What one in-process run of the command printed and returned.</summary>
internal sealed record CliRun(int ExitCode, string Output)
{
    public string[] Lines => Output.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

    /// <summary>The lines that start with "error:".</summary>
    public string[] Errors => Lines.Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();

    public override string ToString() => $"exit {ExitCode}\n{Output}";
}

internal static class CliTestSupport
{
    /// <summary>
    /// Runs <c>dicc args...</c> with a console that records plain text (no colours, no cursor moves) at a
    /// width where no message wraps, so that a one-line message is one line of output.
    /// </summary>
    public static CliRun Run(params string[] args) => RunWithWidth(400, args);

    /// <summary><see cref="Run"/> on a console of the given width.</summary>
    public static CliRun RunWithWidth(int width, params string[] args)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = width;
        int code = DiccApp.Run(args, console);
        return new CliRun(code, writer.ToString());
    }

    /// <summary>
    /// Asserts the shape of a bad-usage answer: exit 2, exactly one error line that contains
    /// <paramref name="expected"/>, and no stack trace.
    /// </summary>
    public static void AssertBadUsage(CliRun run, string expected)
    {
        Assert.Multiple(() =>
        {
            Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.BadUsage), run.ToString());
            Assert.That(run.Errors, Has.Length.EqualTo(1), run.ToString());
            Assert.That(run.Errors.FirstOrDefault() ?? "", Does.Contain(expected), run.ToString());
            Assert.That(run.Output, Does.Not.Contain("   at "), "no stack trace");
        });
    }
}
