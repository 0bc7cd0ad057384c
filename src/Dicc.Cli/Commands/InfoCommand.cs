using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Dicc.Cli.Infrastructure;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

public sealed class InfoCommand(IAnsiConsole console) : Command<InfoCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--json")]
        [System.ComponentModel.Description("Print the report as JSON.")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var cpu = new Dictionary<string, string>
        {
            ["engine"] = EngineInfo.Version,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["os"] = RuntimeInformation.OSDescription,
            ["cpu threads"] = Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["cpu features"] = string.Join(" ", new[]
            {
                Avx2.IsSupported ? "AVX2" : null, Fma.IsSupported ? "FMA" : null, Avx512F.IsSupported ? "AVX-512F" : null,
            }.Where(f => f is not null)),
            ["backends"] = "cpu",
        };
        if (settings.Json)
        {
            // Raw to the output writer: the console would wrap long lines, which breaks JSON for scripts.
            console.Profile.Out.Writer.WriteLine(System.Text.Json.JsonSerializer.Serialize(cpu, CliJson.Default.DictionaryStringString));
            return ExitCodes.Success;
        }
        var table = new Table().AddColumn("item").AddColumn("value").HideHeaders().Border(TableBorder.Simple);
        foreach (var (k, v) in cpu) table.AddRow(Markup.Escape(k), Markup.Escape(v));
        console.Write(table);
        return ExitCodes.Success;
    }
}
