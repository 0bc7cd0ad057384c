using Dicc.Engine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Backends.Cuda;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc info: engine version, backends, CPU features, GPU devices, CUDA library versions and paths (or why not).</summary>
public sealed class InfoCommand(IAnsiConsole console) : Command<InfoCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--json")]
        [OptionHelp("Print the report as one JSON object (for scripts).")]
        public bool Json { get; init; }
    }

    private static string CpuDescription()
    {
        using var cpu = new Engine.Backends.Cpu.CpuBackend();
        return cpu.Description;
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var cuda = CudaInfo.Probe();
        var rows = new List<(string Item, string Value)>
        {
            ("engine", EngineInfo.Version),
            ("runtime", RuntimeInformation.FrameworkDescription),
            ("os", RuntimeInformation.OSDescription),
            ("cpu threads", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)),
            ("cpu features", string.Join(" ", new[]
            {
                Avx2.IsSupported ? "AVX2" : null, Fma.IsSupported ? "FMA" : null, Avx512F.IsSupported ? "AVX-512F" : null,
            }.Where(f => f is not null))),
            ("cpu backend", CpuDescription()),
            ("backends", cuda.IsUsable ? "cpu, cuda" : "cpu (cuda: not usable here, see below)"),
            ("cuda driver", cuda.DriverVersion ?? $"unavailable: {cuda.DriverError}"),
        };
        for (int i = 0; i < cuda.Devices.Count; i++) rows.Add(($"gpu {i}", cuda.Devices[i].ToString() ?? ""));
        foreach (var lib in cuda.Libraries.Where(l => l.Library != Engine.Backends.Cuda.CudaLibrary.Driver))
            rows.Add((lib.Name, lib.IsLoaded ? $"{lib.Version} ({lib.Path})" : $"unavailable: {lib.Error}"));
        if (cuda.NvrtcArchitectures.Count > 0)
            rows.Add(("nvrtc targets", string.Join(" ", cuda.NvrtcArchitectures.Select(a => $"sm_{a}"))));
        rows.Add(("kernel cache", cuda.KernelCacheDirectory ?? "off"));
        rows.Add(("prebuilt kernels", cuda.PrebuiltKernelDirectory ?? "none"));

        if (settings.Json)
        {
            var map = rows.ToDictionary(r => r.Item, r => r.Value);
            // Raw to the output writer: the console would wrap long lines, which breaks JSON for scripts.
            console.Profile.Out.Writer.WriteLine(System.Text.Json.JsonSerializer.Serialize(map, CliJson.Default.DictionaryStringString));
            return ExitCodes.Success;
        }
        var table = new Table().AddColumn("item").AddColumn("value").HideHeaders().Border(TableBorder.Simple);
        foreach (var (item, value) in rows) table.AddRow(Markup.Escape(item), Markup.Escape(value));
        console.Write(table);
        return ExitCodes.Success;
    }
}
