using Dicc.Cli.Infrastructure;
using NUnit.Framework;
using Spectre.Console;

namespace Dicc.Cli.Tests;

/// <summary>What one in-process run of the command printed on standard output and standard error, and returned.</summary>
internal sealed record CliRun(int ExitCode, string Output, string ErrorOutput = "")
{
    /// <summary>Standard output's lines.</summary>
    public string[] Lines => Split(Output);

    /// <summary>Standard error's lines.</summary>
    public string[] ErrorLines => Split(ErrorOutput);

    /// <summary>The lines of standard error that start with "error:".</summary>
    public string[] Errors => ErrorLines.Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();

    private static string[] Split(string text) => text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{ErrorOutput}";
}

internal static class CliTestSupport
{
    /// <summary>
    /// Runs <c>dicc args...</c> with consoles that record plain text (no colours, no cursor moves) at a width
    /// where no message wraps, so that a one-line message is one line of output: one for standard output, one
    /// for standard error.
    /// </summary>
    public static CliRun Run(params string[] args) => RunWithWidth(400, args);

    /// <summary><see cref="Run"/> on consoles of the given width.</summary>
    public static CliRun RunWithWidth(int width, params string[] args)
    {
        var (console, output) = Recording(width);
        var (errorConsole, errors) = Recording(width);
        int code = DiccApp.Run(args, console, errorConsole);
        return new CliRun(code, output.ToString(), errors.ToString());
    }

    private static (IAnsiConsole, StringWriter) Recording(int width)
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
        return (console, writer);
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
            Assert.That(run.ErrorOutput + run.Output, Does.Not.Contain("   at "), "no stack trace");
            Assert.That(run.Output, Does.Not.Contain("error:"), "errors go to standard error only");
        });
    }
}
