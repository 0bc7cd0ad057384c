using System.Runtime.InteropServices;

namespace Dicc.Cli.Sweep;

/// <summary>
/// How to start this <c>dicc</c> again in another process (a local worker, a Slurm task): the program and the
/// arguments before the verb, and the environment the program needs to find the .NET runtime.
/// </summary>
internal sealed record SelfCommand(string Program, string[] Prefix, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>
    /// The native launcher <c>dicc</c> when this process is it or it lies beside this assembly (a build output, a
    /// tool installation, a test folder), with DOTNET_ROOT set to the runtime this process runs on; else
    /// <c>dotnet dicc.dll</c> with the host that runs this process.
    /// </summary>
    public static SelfCommand Resolve()
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        string root = System.Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } given
            ? given
            // .../dotnet/shared/Microsoft.NETCore.App/<version>/ -> .../dotnet
            : Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        environment["DOTNET_ROOT"] = root;
        string launcher = OperatingSystem.IsWindows() ? "dicc.exe" : "dicc";
        if (System.Environment.ProcessPath is { } self && Path.GetFileName(self) == launcher) return new SelfCommand(self, [], environment);
        string assembly = typeof(SelfCommand).Assembly.Location;
        string beside = Path.Combine(Path.GetDirectoryName(assembly)!, launcher);
        if (File.Exists(beside)) return new SelfCommand(beside, [], environment);
        string host = System.Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : Path.Combine(root, "dotnet");
        return new SelfCommand(host, [assembly], environment);
    }

    /// <summary>The command as one line of POSIX shell (each word quoted).</summary>
    public string ShellWords(params string[] arguments) => string.Join(' ', new[] { Program }.Concat(Prefix).Concat(arguments).Select(Quote));

    /// <summary>A word for a POSIX shell: single-quoted unless it needs no quoting.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '=' or ':' or ',' or '+')
            ? word : "'" + word.Replace("'", "'\\''") + "'";
}
