using Dicc.Engine.Backends;

namespace Dicc.Cli.Infrastructure;

/// <summary>Creates the backend a --device value names, and warns (on standard error) when auto had to fall back to the CPU.</summary>
public static class Devices
{
    public static Backend Create(ErrorConsole errors, string device)
    {
        var backend = BackendFactory.Create(device);
        if (BackendFactory.AutoFallbackReason is { } why)
            errors.Warning($"a GPU was found but cannot be used, training on the CPU: {why}");
        return backend;
    }
}
