using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace Dicc.Engine.Backends.Cuda.Compilation;

/// <summary>
/// The CUDA C sources of <c>kernels/</c>, embedded in the engine assembly: the shared header
/// (<see cref="HeaderName"/>) and one module per <c>.cu</c> file. A module's source hash identifies exactly
/// what a compiled image was built from (build-kernels.ps1 records the same hash beside each fatbin).
/// </summary>
internal static class KernelSources
{
    public const string HeaderName = "common.cuh";
    private const string ResourcePrefix = "Dicc.Kernels.";

    private static readonly Lazy<IReadOnlyDictionary<string, string>> Files = new(Load);

    /// <summary>Module file names (e.g. "elementwise.cu"), sorted.</summary>
    public static IReadOnlyList<string> Modules => [.. Files.Value.Keys.Where(k => k.EndsWith(".cu", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    /// <summary>The text of a module or of the header.</summary>
    public static string Get(string fileName) =>
        Files.Value.TryGetValue(fileName, out var text)
            ? text
            : throw new ArgumentException($"No kernel source '{fileName}' is embedded; known: {string.Join(", ", Files.Value.Keys.Order())}.", nameof(fileName));

    public static string Header => Get(HeaderName);

    /// <summary>
    /// SHA-256 (lower-case hex) of <c>header + "\n" + module</c> with carriage returns removed, so that a
    /// checkout with CRLF line ends hashes the same. build-kernels.ps1 and scripts/gpu-check.sh compute it the same way.
    /// </summary>
    public static string SourceHash(string moduleName) => Hash(Header, Get(moduleName));

    internal static string Hash(string header, string module)
    {
        string text = header.Replace("\r", "", StringComparison.Ordinal) + "\n" + module.Replace("\r", "", StringComparison.Ordinal);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>Names of the kernels a module defines (its <c>DICC_KERNEL void name(</c> lines), for checks and reports.</summary>
    public static IReadOnlyList<string> KernelNames(string moduleName)
    {
        var names = new List<string>();
        foreach (string line in Get(moduleName).Split('\n'))
        {
            string l = line.Trim();
            const string marker = "DICC_KERNEL void ";
            if (!l.StartsWith(marker, StringComparison.Ordinal)) continue;
            int paren = l.IndexOf('(', marker.Length);
            if (paren > marker.Length) names.Add(l[marker.Length..paren].Trim());
        }
        return names;
    }

    private static IReadOnlyDictionary<string, string> Load()
    {
        var assembly = typeof(KernelSources).Assembly;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using var stream = assembly.GetManifestResourceStream(resource)!;
            // Read as UTF-8 without a BOM: the hash is over exactly the file's text.
            using var reader = new StreamReader(stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false);
            files[resource[ResourcePrefix.Length..]] = reader.ReadToEnd();
        }
        if (!files.ContainsKey(HeaderName))
            throw new InvalidOperationException($"The engine assembly has no embedded kernel header {HeaderName}; it was built without kernels/.");
        return files;
    }
}
