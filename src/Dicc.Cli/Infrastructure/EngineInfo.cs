using System.Reflection;

namespace Dicc.Cli.Infrastructure;

public static class EngineInfo
{
    public static string Version { get; } =
        typeof(Engine.Tensors.Tensor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? typeof(Engine.Tensors.Tensor).Assembly.GetName().Version?.ToString() ?? "unknown";
}
