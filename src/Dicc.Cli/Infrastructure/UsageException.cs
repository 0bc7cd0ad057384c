namespace Dicc.Cli.Infrastructure;

/// <summary>Bad usage (an invalid value, a missing file, a wrong combination): one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
