using Spectre.Console;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// Standard error: where errors, warnings and notes go, so that standard output holds only results (tables,
/// or the one JSON document of <c>--json</c>). Commands receive it next to their standard-output console. On a
/// terminal the lines are coloured; elsewhere (a log file, a pipe, a scheduler's capture) each message is
/// written as one plain line, never wrapped at the console width, so that a message stays one line.
/// </summary>
public sealed class ErrorConsole(IAnsiConsole console)
{
    public IAnsiConsole Console { get; } = console;

    /// <summary>"error: text" (the text is plain, not markup).</summary>
    public void Error(string text) => Line($"[red]error:[/] {Markup.Escape(text)}");

    /// <summary>"warning: text" (the text is plain, not markup).</summary>
    public void Warning(string text) => Line($"[yellow]warning:[/] {Markup.Escape(text)}");

    /// <summary>A plain note (the text is not markup).</summary>
    public void Note(string text) => Line($"[yellow]{Markup.Escape(text)}[/]");

    /// <summary>A line of markup.</summary>
    public void MarkupLine(string markup) => Line(markup);

    private void Line(string markup)
    {
        if (Console.Profile.Capabilities.Ansi) Console.MarkupLine(markup);
        else Console.Profile.Out.Writer.WriteLine(Markup.Remove(markup));
    }
}
