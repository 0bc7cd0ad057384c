using System.Reflection;

namespace Dicc.Engine;

/// <summary>Facts about this build of the engine.</summary>
public static class EngineInfo
{
    /// <summary>The engine's version (Directory.Build.props), as written into run configurations and checkpoints.</summary>
    public static string Version { get; } =
        typeof(EngineInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? typeof(EngineInfo).Assembly.GetName().Version?.ToString(3) ?? "unknown";
}
