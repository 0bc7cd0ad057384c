using System.Globalization;
using System.Text.RegularExpressions;

namespace Dicc.Engine.Tests.Support;

/// <summary>One kernel's resources as ptxas reports them (<c>-Xptxas=-v</c>).</summary>
internal sealed record KernelResources(int Registers, int SharedBytes, int SpillBytes, int Barriers, int StackBytes);

/// <summary>
/// Reads ptxas's verbose report, as NVRTC (<c>-Xptxas=-v</c>) and nvcc print it. Two formats are in use:
/// <code>
/// CUDA 11.x:       ptxas info    : Used 20 registers, 256 bytes smem, 420 bytes cmem[0]
/// CUDA 12.x, 13.x: ptxas info    : Used 10 registers, used 1 barriers, 1024 bytes smem, 376 bytes cmem[0]
/// </code>
/// The fields after the register count are read one by one, in any order, each one optional (no shared memory:
/// no "smem" field; sm_90 and newer often no "cmem"), so that neither format reads as "no shared memory".
/// </summary>
internal static partial class PtxasReport
{
    [GeneratedRegex(@"Compiling entry function '([^']+)'")]
    private static partial Regex EntryLine();

    [GeneratedRegex(@"Function properties for (\S+)")]
    private static partial Regex PropertiesLine();

    [GeneratedRegex(@"(-?\d+) bytes spill stores, (-?\d+) bytes spill loads")]
    private static partial Regex SpillLine();

    [GeneratedRegex(@"Used (\d+) registers")]
    private static partial Regex UsedLine();

    [GeneratedRegex(@"(\d+) bytes smem")]
    private static partial Regex SharedField();

    [GeneratedRegex(@"used (\d+) barriers")]
    private static partial Regex BarriersField();

    [GeneratedRegex(@"(\d+) bytes cumulative stack size")]
    private static partial Regex StackField();

    /// <summary>Per entry function (kernel), its resources; device functions' own reports are not kernels and are left out.</summary>
    public static Dictionary<string, KernelResources> Parse(string log)
    {
        var result = new Dictionary<string, KernelResources>(StringComparer.Ordinal);
        var spills = new Dictionary<string, int>(StringComparer.Ordinal);
        string? entry = null, properties = null;
        string[] lines = log.Replace("\r", "", StringComparison.Ordinal).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            Match m;
            if ((m = EntryLine().Match(line)).Success) { entry = m.Groups[1].Value; properties = null; continue; }
            if ((m = PropertiesLine().Match(line)).Success) { properties = m.Groups[1].Value; continue; }
            if ((m = SpillLine().Match(line)).Success)
            {
                // Some reports have no "Function properties" line: the figures are then the entry's own.
                string? owner = properties ?? entry;
                if (owner is not null) spills[owner] = Int(m.Groups[1]) + Int(m.Groups[2]);
                continue;
            }
            if (!(m = UsedLine().Match(line)).Success) continue;

            // A long report can go on over an indented next line after a trailing comma.
            string used = line.TrimEnd();
            while (used.EndsWith(',') && i + 1 < lines.Length) used += " " + lines[++i].Trim();
            // Reports without "Compiling entry function" lines name the kernel in "Function properties for".
            string? kernel = entry ?? properties;
            if (kernel is null) continue;
            result[kernel] = new KernelResources(
                Registers: Int(m.Groups[1]),
                SharedBytes: Field(SharedField(), used),
                SpillBytes: spills.GetValueOrDefault(kernel),
                Barriers: Field(BarriersField(), used),
                StackBytes: Field(StackField(), used));
            entry = properties = null;
        }
        return result;
    }

    private static int Field(Regex field, string used)
    {
        var m = field.Match(used);
        return m.Success ? Int(m.Groups[1]) : 0;
    }

    private static int Int(Group g) => int.Parse(g.Value, CultureInfo.InvariantCulture);
}
