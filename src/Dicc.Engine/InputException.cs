namespace Dicc.Engine;

/// <summary>
/// Base of every "your input is wrong" error (a bad file, row, value or argument): the message is one line
/// that names the file, row or argument. The CLI maps it to exit code 2 and prints only the message.
/// </summary>
public class InputException : Exception
{
    /// <summary>An input error with a one-line message that names what is wrong.</summary>
    public InputException(string message) : base(message) { }
    /// <summary>An input error with a one-line message and the exception behind it.</summary>
    public InputException(string message, Exception? inner) : base(message, inner) { }

    /// <summary>
    /// The engine parameter the message is about, as the API names it ("emaDecay", "learningRate"), or null.
    /// Such a message starts with that name, so a front end can put its own name for the setting in its place
    /// (the CLI writes its flag: "--ema-decay must be in [0, 1], got 1.5.").
    /// </summary>
    public string? Parameter { get; init; }
}
