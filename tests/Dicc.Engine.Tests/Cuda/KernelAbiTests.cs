using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Dicc.Engine.Backends.Cuda.Compilation;
using Dicc.Engine.Backends.Cuda.Kernels;
using NUnit.Framework;
using Dicc.Engine.Tests.Support;

namespace Dicc.Engine.Tests.Cuda;

/// <summary>
/// Every launch the engine makes, checked against the kernels as NVRTC compiles them, without a GPU: the same
/// number of arguments, each of the size and kind of the kernel's parameter (a mismatch would silently pass
/// garbage on the device), every kernel launched by some launcher, and block sizes the kernels' register and
/// shared-memory use allows.
/// </summary>
[Category("Nvrtc")]
public class KernelAbiTests
{
    private static IReadOnlyList<RecordedLaunch> _launches = [];

    [OneTimeSetUp]
    public void Record()
    {
        TestSupport.RequireNvrtcOrIgnore();
        _launches = KernelLaunchRecording.RecordAll();
    }

    private static IEnumerable<TestCaseData> Modules() => KernelSources.Modules.Select(m => new TestCaseData(m).SetName($"Abi_{m}"));

    [TestCaseSource(nameof(Modules))]
    public void EveryLaunch_PassesArgumentsOfTheKernelsParameterSizesAndKinds(string module)
    {
        var entries = KernelLaunchRecording.ParseEntries(KernelLaunchRecording.CompilePtx(module, "compute_80"));
        Assert.That(entries.Keys, Is.EquivalentTo(KernelSources.KernelNames(module)), $"{module}: PTX entries vs DICC_KERNEL lines");
        foreach (var launch in _launches.Where(l => l.Module == module))
        {
            Assert.That(entries, Does.ContainKey(launch.Kernel), $"{module} has no kernel {launch.Kernel}");
            var ptx = entries[launch.Kernel];
            Assert.That(launch.Sizes, Is.EqualTo(ptx.Sizes), $"{launch.Kernel}: argument sizes (launcher) vs parameter sizes (PTX)");
            Assert.That(launch.Kinds, Is.EqualTo(ptx.Kinds), $"{launch.Kernel}: argument kinds (launcher) vs parameter types (PTX)");
        }
    }

    [Test]
    public void EveryKernel_IsLaunchedBySomeLauncher()
    {
        var launched = _launches.Select(l => (l.Module, l.Kernel)).ToHashSet();
        foreach (string module in KernelSources.Modules)
            foreach (string kernel in KernelSources.KernelNames(module))
                Assert.That(launched, Does.Contain((module, kernel)), $"{module}: {kernel} is never launched (dead code, or a launcher is missing)");
    }

    [TestCase("sm_80")]
    [TestCase("sm_90")]
    public void BlockSizes_FitTheKernelsRegistersAndSharedMemory(string architecture)
    {
        var byModule = _launches.Select(l => l.Module).Distinct().ToDictionary(m => m, m => KernelLaunchRecording.Resources(m, architecture));
        foreach (var group in _launches.GroupBy(l => (l.Module, l.Kernel)))
        {
            var resources = byModule[group.Key.Module];
            Assert.That(resources, Does.ContainKey(group.Key.Kernel), $"ptxas reported nothing for {group.Key.Kernel}");
            var r = resources[group.Key.Kernel];
            var (registers, shared, spills) = (r.Registers, r.SharedBytes, r.SpillBytes);
            uint threads = group.Max(l => (uint)l.Config.Block.Volume);
            uint dynamicShared = group.Max(l => l.Config.SharedMemoryBytes);
            TestContext.Out.WriteLine($"{architecture} {group.Key.Kernel}: {registers} registers x {threads} threads, {shared} + {dynamicShared} bytes shared, {spills} bytes spilled");
            // 64K registers per block on every architecture from 7.0 on; 48 KiB of shared memory without opting in.
            Assert.That(registers * threads, Is.LessThanOrEqualTo(65536), $"{group.Key.Kernel}: a {threads}-thread block would not launch");
            Assert.That(shared + dynamicShared, Is.LessThanOrEqualTo(48 * 1024), $"{group.Key.Kernel}: shared memory");
            Assert.That(spills, Is.Zero, $"{group.Key.Kernel} spills registers to local memory");
        }
        // softmax.cu's row reductions use static shared memory: none reported anywhere means the report was misread.
        Assert.That(byModule.Values.SelectMany(m => m.Values).Any(k => k.SharedBytes > 0), Is.True,
            "ptxas reported no static shared memory for any kernel: its report format is not being read (PtxasReport)");
    }

    [Test]
    public void LaunchBlockSizes_AreTheDocumentedOnes()
    {
        var documented = KernelLaunchRecording.UnloadedLaunchers().All.SelectMany(l => l.BlockThreads).ToDictionary();
        foreach (var l in _launches.Where(l => documented.ContainsKey(l.Kernel)))
            Assert.That(l.Config.Block.X, Is.EqualTo((uint)documented[l.Kernel]), l.Kernel);
        foreach (var l in _launches)
            Assert.That(l.Config.Block.X % 32, Is.Zero, $"{l.Kernel}: the reductions assume whole warps");
    }
}

/// <summary>The C# mirrors of the kernels' argument structs and status record have the kernels' fields, in order, with the same types.</summary>
public class KernelStructLayoutTests
{
    private static IEnumerable<TestCaseData> Mirrors()
    {
        yield return new TestCaseData("normalization.cu", "DiccNormShape", typeof(NormShape));
        yield return new TestCaseData("pooling.cu", "DiccPoolShape", typeof(PoolShape));
        yield return new TestCaseData("data.cu", "DiccCropShape", typeof(CropShape));
        yield return new TestCaseData("clustering.cu", "DiccClusterShape", typeof(ClusterShape));
        yield return new TestCaseData("clustering.cu", "DiccClusterState", typeof(ClusterState));
        yield return new TestCaseData("clustering.cu", "DiccClusterWork", typeof(ClusterWork));
        yield return new TestCaseData(KernelSources.HeaderName, "DiccStatus", typeof(DeviceStatusRecord));
    }

    [TestCaseSource(nameof(Mirrors))]
    public void Mirror_HasTheStructsFieldsInOrder(string file, string structName, Type mirror)
    {
        var body = Regex.Match(KernelSources.Get(file), @"struct\s+" + structName + @"\s*\{(.*?)\};", RegexOptions.Singleline);
        Assert.That(body.Success, $"{file} defines no struct {structName}");
        var cFields = new List<(string Type, string Name)>();
        foreach (string raw in body.Groups[1].Value.Split('\n'))
        {
            string line = Regex.Replace(raw, "//.*", "").Trim();
            if (line.Length == 0) continue;
            // "int h, w;" declares two fields, "int pad[3];" three, "const int* counts;" a pointer.
            var decl = Regex.Match(line, @"^(?<type>(?:const\s+)?[a-z][a-z ]*?)\s*(?<ptr>\*)?\s*(?<names>\w+(?:\[\d+\])?(?:\s*,\s*\w+(?:\[\d+\])?)*)\s*;$");
            Assert.That(decl.Success, $"{structName}: cannot read the field declaration '{line}'");
            string type = decl.Groups["ptr"].Success ? "pointer" : Normalize(decl.Groups["type"].Value.Replace("const ", ""));
            foreach (string part in decl.Groups["names"].Value.Split(','))
            {
                var array = Regex.Match(part.Trim(), @"^(\w+)(?:\[(\d+)\])?$");
                int count = array.Groups[2].Success ? int.Parse(array.Groups[2].Value) : 1;
                for (int i = 0; i < count; i++) cFields.Add((type, array.Groups[1].Value + (count > 1 ? i.ToString() : "")));
            }
        }
        var fields = mirror.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)
            .OrderBy(f => Marshal.OffsetOf(mirror, f.Name).ToInt64()).ToArray();
        Assert.That(fields.Select(f => Key(f.Name)), Is.EqualTo(cFields.Select(f => Key(f.Name))), $"{structName}: field names in order");
        for (int i = 0; i < fields.Length; i++)
            Assert.That(CType(fields[i].FieldType), Is.EqualTo(cFields[i].Type), $"{structName}.{cFields[i].Name}");
        Assert.That(Marshal.SizeOf(mirror), Is.EqualTo(cFields.Sum(f => f.Type is "double" or "u64" or "pointer" ? 8 : 4)), $"{structName}: size");
    }

    /// <summary>"pad0" and "_pad0", "window_h" and "WindowH", "Kind" and "kind" are the same field.</summary>
    private static string Key(string name) => name.Replace("_", "").ToLowerInvariant();

    private static string Normalize(string type) => type.Trim() switch
    {
        "double" => "double",
        "float" => "float",
        "unsigned long long" => "u64",
        "int" => "int",
        var other => throw new FormatException($"unexpected field type '{other}'"),
    };

    private static string CType(Type t) =>
        t == typeof(double) ? "double" : t == typeof(float) ? "float" : t == typeof(ulong) ? "u64"
        : t == typeof(Dicc.Engine.Backends.Cuda.DevicePointer) ? "pointer"
        : t == typeof(int) || t.IsEnum ? "int" : throw new FormatException($"unexpected mirror field type {t}");
}
