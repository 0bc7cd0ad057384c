namespace Dicc.Engine;

/// <summary>
/// Base of every "your input is wrong" error (a bad file, row, value or argument): the message is one line
/// that names the file, row or argument. The CLI maps it to exit code 2 and prints only the message.
/// </summary>
public class InputException : Exception
{
    public InputException(string message) : base(message) { }
    public InputException(string message, Exception? inner) : base(message, inner) { }
}
