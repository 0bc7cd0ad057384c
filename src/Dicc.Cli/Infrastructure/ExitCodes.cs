namespace Dicc.Cli.Infrastructure;

/// <summary>docs/cli.md: 0 success, 2 bad usage or bad input, 1 internal error.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int InternalError = 1;
    public const int BadUsage = 2;
}
