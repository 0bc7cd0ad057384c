using System.Globalization;
using System.Text.Json;
using Dicc.Engine.Training;
using Spectre.Console;

namespace Dicc.Cli.Training;

/// <summary>How a run reports progress: bars on a terminal, plain epoch lines elsewhere, JSON lines for scripts, or nothing.</summary>
public enum OutputMode
{
    Normal,
    Quiet,
    Json,
}

/// <summary>
/// Renders training progress: on an interactive terminal an epoch bar and a step bar with loss, images/s and
/// ETA, and one line per finished epoch; when the output is redirected, just the epoch lines; with --json one
/// JSON object per epoch (and the caller prints a final one).
/// </summary>
public sealed class TrainingDisplay(IAnsiConsole console, OutputMode mode, string label) : ITrainingObserver
{
    private ProgressTask? _epochTask, _stepTask;
    private float _lastLoss = float.NaN;
    private int _epochs;

    public static string F(double v, string format = "F4") =>
        double.IsNaN(v) ? "-" : v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="work"/> with live bars when the console can show them.</summary>
    public T Run<T>(int epochs, Func<T> work)
    {
        _epochs = epochs;
        if (mode != OutputMode.Normal || !console.Profile.Capabilities.Interactive) return work();
        T result = default!;
        console.Progress()
            .AutoClear(true)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                _epochTask = ctx.AddTask($"{Markup.Escape(label)} epoch", maxValue: epochs);
                _stepTask = ctx.AddTask("step", maxValue: 1);
                result = work();
            });
        return result;
    }

    private bool _scheduled;

    private static string Pct(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F1", CultureInfo.InvariantCulture) + "%";

    public void RunStarted(RunConfig config, int startEpoch, int batchesPerEpoch)
    {
        _scheduled = config.Options.Schedule.Trim().ToLowerInvariant() != "constant";
        if (_epochTask is not null) _epochTask.Value = startEpoch;
        if (mode == OutputMode.Normal)
            console.MarkupLine($"[grey]{Markup.Escape(label)}: {config.Options.Method.ToString().ToLowerInvariant()} / {config.Options.Rule.ToString().ToLowerInvariant()}, " +
                               $"{config.Options.Arch.ToString().ToLowerInvariant()} x{F(config.Options.Width, "0.###")}, lr {F(config.Options.LearningRate, "G3")} {Markup.Escape(config.Options.Schedule)}, " +
                               $"{batchesPerEpoch} batches/epoch, on {Markup.Escape(config.Device)}[/]");
    }

    public void StepCompleted(int epoch, int batch, int batches, float? loss, double imagesPerSecond)
    {
        if (loss is float l) _lastLoss = l;
        if (_stepTask is null) return;
        _stepTask.MaxValue = batches;
        _stepTask.Value = batch + 1;
        _stepTask.Description = $"epoch {epoch + 1}/{_epochs}  loss {F(_lastLoss)}  {F(imagesPerSecond, "F0")} img/s";
    }

    public void EpochCompleted(EpochMetrics m)
    {
        if (_epochTask is not null) _epochTask.Value = m.Epoch + 1;
        switch (mode)
        {
            case OutputMode.Json:
                console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["event"] = "epoch", ["run"] = label, ["epoch"] = m.Epoch + 1, ["lr"] = m.LearningRate,
                    ["train_loss"] = Finite(m.TrainLoss), ["mapping_loss"] = m.MappingLoss is double x ? Finite(x) : null,
                    ["val_accuracy"] = Finite(m.ValidationAccuracy), ["val_balanced_accuracy"] = Finite(m.ValidationBalancedAccuracy),
                    ["best"] = m.Best, ["seconds"] = m.Seconds, ["images_per_second"] = m.ImagesPerSecond,
                }, CliJsonObjects.Options));
                break;
            case OutputMode.Normal:
                // One line that fits 80 columns: the learning rate only when a schedule changes it.
                console.MarkupLine(
                    $"{Markup.Escape(label)} {m.Epoch + 1,3}/{_epochs}" + (_scheduled ? $" lr {F(m.LearningRate, "G3")}" : "") +
                    $"  loss {F(m.TrainLoss)}" + (m.MappingLoss is double ml ? $" map {F(ml)}" : "") +
                    $"  val {Pct(m.ValidationAccuracy)} bal {Pct(m.ValidationBalancedAccuracy)}" +
                    $"  {F(m.Seconds, "F1")}s {F(m.ImagesPerSecond, "F0")}/s{(m.Best ? " [green]best[/]" : "")}");
                break;
        }
    }

    public void Message(string text)
    {
        if (mode != OutputMode.Quiet && mode != OutputMode.Json) console.MarkupLine($"[yellow]{Markup.Escape(text)}[/]");
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
}

/// <summary>JSON options for ad-hoc objects printed by --json (reflection-based; the CLI is not trimmed).</summary>
internal static class CliJsonObjects
{
    public static readonly JsonSerializerOptions Options = new()
    {
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };
}
