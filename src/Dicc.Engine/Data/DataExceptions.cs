namespace Dicc.Engine.Data;

/// <summary>
/// Bad data or bad data options: the user's input is at fault, not the engine. The message is one line
/// that names the file (and line) or the option, ready to print as it is; the command line maps this type
/// to exit code 2.
/// </summary>
public abstract class DataException(string message, Exception? inner = null) : InputException(message, inner);

/// <summary>
/// A file or folder that cannot be read as data: a missing path, a corrupt image, a malformed CSV row,
/// an unknown class folder. <see cref="Path"/> and <see cref="Line"/> say where.
/// </summary>
public sealed class DataFormatException : DataException
{
    /// <summary>A file (or a line of it) that cannot be read as data: the message is "path[:line]: problem".</summary>
    public DataFormatException(string path, string problem, int? line = null, Exception? inner = null)
        : base(Describe(path, line, problem), inner)
    {
        Path = path;
        Line = line;
        Problem = OneLine(problem);
    }

    /// <summary>The file or folder at fault, as the caller named it.</summary>
    public string Path { get; }

    /// <summary>1-based line number in a text file (the header is line 1), or null.</summary>
    public int? Line { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    internal static string Describe(string path, int? line, string problem) =>
        line is { } l ? $"{path}, line {l}: {OneLine(problem)}" : $"{path}: {OneLine(problem)}";

    /// <summary>Messages from decoders may span lines; ours never do.</summary>
    internal static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}

/// <summary>An option of a data operation that cannot be honoured (e.g. more images asked of a class than it has).</summary>
public sealed class DataArgumentException(string option, string problem)
    : DataException($"{option}: {DataFormatException.OneLine(problem)}")
{
    /// <summary>The option at fault, e.g. "counts" or "beta".</summary>
    public string Option { get; } = option;
}
