using Dicc.Engine.Backends;
using Spectre.Console;

namespace Dicc.Cli.Infrastructure;

/// <summary>Creates the backend a --device value names, and says so when auto had to fall back to the CPU.</summary>
public static class Devices
{
    public static Backend Create(IAnsiConsole console, string device)
    {
        var backend = BackendFactory.Create(device);
        if (BackendFactory.AutoFallbackReason is { } why)
            console.MarkupLine($"[yellow]warning:[/] a GPU was found but cannot be used, training on the CPU: {Markup.Escape(why)}");
        return backend;
    }
}
