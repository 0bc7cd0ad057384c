using System.Globalization;
using System.Text.Json;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Backends;
using Dicc.Engine.Clustering;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Training;

/// <summary>dicc bench: step time of baseline and DICC, the clustering module's own time and share, images/s.</summary>
public sealed class BenchCommand(IAnsiConsole console, ErrorConsole errors) : Command<BenchCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--device <DEVICE>")]
        public string Device { get; init; } = "auto";

        [CommandOption("--batch <N>")]
        public int Batch { get; init; } = 32;

        [CommandOption("--arch <ARCH>")]
        [OptionHelp("vgg11, vgg13, vgg16 or vgg19 (default).")]
        public string Arch { get; init; } = "vgg19";

        [CommandOption("--width <W>")]
        public double Width { get; init; } = 1.0;

        [CommandOption("--steps <N>")]
        [OptionHelp("Timed (baseline, DICC) pairs, after a warm-up of both (medians reported; default 5 on CPU, 200 on CUDA).")]
        public int? Steps { get; init; }

        [CommandOption("--partition <MODE>")]
        public string Partition { get; init; } = "interval";

        [CommandOption("--json")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var arch = TrainSettings.ParseArch(settings.Arch);
        if (!(settings.Width > 0 && settings.Width <= 4)) throw new UsageException($"--width must be in (0, 4], got {settings.Width}.");
        PartitionMode partition;
        try { partition = PartitionModes.Parse(settings.Partition); }
        catch (FormatException e) { throw new UsageException($"--partition: {e.Message}"); }
        using var backend = Devices.Create(errors, settings.Device);
        int steps = settings.Steps ?? (backend.Name == "cpu" ? 5 : 200);
        var timing = StepBenchmark.Measure(backend, arch, settings.Width, settings.Batch, steps, partition,
            settings.Json ? null : what => console.MarkupLine($"[grey]timing {what}...[/]"));
        if (settings.Json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["device"] = timing.Device, ["arch"] = timing.Arch.ToString().ToLowerInvariant(), ["width"] = timing.Width, ["batch"] = timing.Batch,
                ["steps"] = timing.Steps, ["baseline_ms"] = timing.BaselineMilliseconds, ["dicc_ms"] = timing.DiccMilliseconds,
                ["clustering_ms"] = timing.ClusteringMilliseconds, ["dicc_overhead"] = timing.DiccOverhead,
                ["clustering_share"] = timing.ClusteringShare, ["baseline_images_per_second"] = timing.BaselineImagesPerSecond,
                ["baseline_gflops"] = timing.BaselineGflops, ["load_average"] = LoadAverage.Text(),
            }, CliJsonObjects.Options));
            return ExitCodes.Success;
        }
        string Ms(double v) => v.ToString(v < 1 ? "F4" : "F1", CultureInfo.InvariantCulture) + " ms";
        string Pct(double v) => (100 * v).ToString(Math.Abs(v) < 0.01 ? "F4" : "F2", CultureInfo.InvariantCulture) + "%";
        var t = new Table().Title($"[bold]{timing.Arch.ToString().ToLowerInvariant()} x{timing.Width.ToString(CultureInfo.InvariantCulture)}, batch {timing.Batch}, 1x44x44, on {Markup.Escape(timing.Device)}[/]")
            .AddColumn("").AddColumn(new TableColumn("median").RightAligned()).AddColumn(new TableColumn("images/s").RightAligned());
        t.AddRow("baseline step", Ms(timing.BaselineMilliseconds), timing.BaselineImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
        t.AddRow("DICC step (both phases)", Ms(timing.DiccMilliseconds), timing.DiccImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
        t.AddRow("DICC clustering module alone", Ms(timing.ClusteringMilliseconds), "");
        t.AddRow("DICC step / baseline step - 1", Pct(timing.DiccOverhead), "");
        t.AddRow("clustering share of a DICC step", Pct(timing.ClusteringShare), "");
        t.AddRow("baseline throughput", $"{timing.BaselineGflops.ToString("F1", CultureInfo.InvariantCulture)} GFLOP/s", "");
        t.Caption($"medians of {timing.Steps} interleaved (baseline, DICC) pairs after both were warmed up; the overhead is the median of the pairs' ratios; " +
                  $"a step counts as 3 forward passes of {timing.ForwardGflopPerImage.ToString("F3", CultureInfo.InvariantCulture)} GFLOP/image");
        console.Write(t);
        console.MarkupLine($"[grey]load average while timing: {Markup.Escape(LoadAverage.Text())}[/]");
        return ExitCodes.Success;
    }
}
