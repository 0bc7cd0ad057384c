using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
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
/// JSON object per epoch (and the caller prints a final one). Epoch lines and JSON objects use the names and
/// the numbering of metrics.jsonl (epochs count from 1). The trainer's messages (resume notes, interruptions)
/// go to standard error.
/// </summary>
public sealed class TrainingDisplay(IAnsiConsole console, ErrorConsole errors, OutputMode mode, string label) : ITrainingObserver
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
            Line($"[grey]{Markup.Escape(label)}: {config.Options.Method.ToString().ToLowerInvariant()} / {config.Options.Rule.ToString().ToLowerInvariant()}, " +
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
        if (_epochTask is not null) _epochTask.Value = m.Epoch;
        switch (mode)
        {
            case OutputMode.Json:
                // The metrics.jsonl line itself, with the event and the run in front.
                var line = new JsonObject { ["event"] = "epoch", ["run"] = label };
                foreach (var (key, value) in JsonNode.Parse(RunDirectory.Serialize(m))!.AsObject().ToList())
                    line[key] = value?.DeepClone();
                console.Profile.Out.Writer.WriteLine(line.ToJsonString());
                break;
            case OutputMode.Normal:
                // The names of metrics.jsonl; the learning rate only when a schedule changes it.
                Line(
                    $"{Markup.Escape(label)} {m.Epoch,3}/{_epochs}" + (_scheduled ? $" lr {F(m.LearningRate, "G3")}" : "") +
                    $"  loss {F(m.TrainLoss)}" + (m.MappingLoss is double ml ? $" map_loss {F(ml)}" : "") +
                    $"  val_acc {Pct(m.ValidationAccuracy)} val_bal_acc {Pct(m.ValidationBalancedAccuracy)}" +
                    $"  {F(m.Seconds, "F1")}s {F(m.ImagesPerSecond, "F0")} img/s{(m.Best ? " [green]best[/]" : "")}");
                break;
        }
    }

    public void Message(string text) => errors.Note(text);

    /// <summary>
    /// A log line: on a terminal through the console (coloured, wrapped at its width); elsewhere (a log file, a
    /// pipe) written whole, so that each epoch is one line a script can read.
    /// </summary>
    private void Line(string markup)
    {
        if (console.Profile.Capabilities.Ansi) console.MarkupLine(markup);
        else console.Profile.Out.Writer.WriteLine(Markup.Remove(markup));
    }
}

/// <summary>JSON options for ad-hoc objects printed by --json (reflection-based; the CLI is not trimmed).</summary>
internal static class CliJsonObjects
{
    public static readonly JsonSerializerOptions Options = new()
    {
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };
}
