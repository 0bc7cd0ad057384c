using Dicc.Cli.Infrastructure;
using Spectre.Console;

namespace Dicc.Cli.Commands;

/// <summary>Tables the data verbs print.</summary>
internal static class DataTables
{
    /// <summary>Images per class and split (train, val, test), with a total row.</summary>
    public static Table SplitCounts(IReadOnlyList<string> classNames, int[][] countsBySplit)
    {
        var table = new Table().Border(TableBorder.Simple).AddColumn("class")
            .AddColumn(new TableColumn("train").RightAligned())
            .AddColumn(new TableColumn("val").RightAligned())
            .AddColumn(new TableColumn("test").RightAligned());
        for (int c = 0; c < classNames.Count; c++)
            table.AddRow(Markup.Escape(classNames[c]), CliValues.Count(countsBySplit[0][c]), CliValues.Count(countsBySplit[1][c]),
                CliValues.Count(countsBySplit[2][c]));
        table.AddRow("[bold]total[/]", $"[bold]{CliValues.Count(countsBySplit[0].Sum())}[/]", $"[bold]{CliValues.Count(countsBySplit[1].Sum())}[/]",
            $"[bold]{CliValues.Count(countsBySplit[2].Sum())}[/]");
        return table;
    }
}

/// <summary>A spinner while work runs (nothing on a console that is not interactive, or with --json).</summary>
internal static class CliStatus
{
    public static void Run(IAnsiConsole console, bool quiet, string status, Action work)
    {
        if (quiet || !console.Profile.Capabilities.Interactive) work();
        else console.Status().Start(status, _ => work());
    }

    public static T Run<T>(IAnsiConsole console, bool quiet, string status, Func<T> work)
    {
        T result = default!;
        Run(console, quiet, status, () => { result = work(); });
        return result;
    }

    /// <summary>A path as the user would type it in a shell.</summary>
    public static string Quote(string path) => path.Contains(' ') ? $"\"{path}\"" : path;
}
