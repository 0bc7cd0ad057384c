using System.ComponentModel;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Export;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc export: a trained run's inference graph as an ONNX model (docs/embedding.md, "ONNX export").</summary>
public sealed class ExportCommand(IAnsiConsole console) : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--run <DIR>", true)]
        [OptionHelp("A run directory written by dicc train (config.json and checkpoints/), or a checkpoint file of one.")]
        public string Run { get; init; } = "";

        [CommandOption("--onnx <FILE>", true)]
        [OptionHelp("The ONNX file to write (overwritten atomically).")]
        public string Onnx { get; init; } = "";

        [CommandOption("--opset <N>")]
        [OptionHelp("ONNX operator set, 13..23 (default 17).")]
        public int? Opset { get; init; }

        [CommandOption("--checkpoint <best|last>")]
        [OptionHelp("best: the model selected on validation accuracy (default); last: the latest epoch's.")]
        public string Checkpoint { get; init; } = "best";

        [CommandOption("--batchnorm <fold|keep>")]
        [OptionHelp("fold (default): BatchNorm folded into the convolutions; keep: BatchNormalization nodes with the running statistics.")]
        public string BatchNorm { get; init; } = "fold";

        [CommandOption("--views <run|centre|ten-crop>")]
        [OptionHelp("The crops the graph takes of each image: run (default: the run's test protocol, as dicc predict), centre, or the ten-crop average.")]
        public string Views { get; init; } = "run";

        [CommandOption("--json")]
        [OptionHelp("Print what was written as JSON (for scripts).")]
        public bool Json { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string run = CliValues.ExistingPath(settings.Run, "--run");
        string onnx = CliValues.OutputFile(settings.Onnx, "--onnx");
        string checkpoint = CliValues.Choice(settings.Checkpoint, "--checkpoint", "best", "last");
        bool fold = CliValues.Choice(settings.BatchNorm, "--batchnorm", "fold", "keep") == "fold";
        var views = CliValues.Choice(settings.Views, "--views", "run", "centre", "center", "ten-crop") switch
        {
            "run" => OnnxViews.Run,
            "ten-crop" => OnnxViews.TenCrop,
            _ => OnnxViews.Center,
        };
        int opset = settings.Opset ?? OnnxExportOptions.DefaultOpset;
        if (opset is < OnnxExportOptions.MinOpset or > OnnxExportOptions.MaxOpset)
            throw new UsageException($"--opset must be in {OnnxExportOptions.MinOpset}..{OnnxExportOptions.MaxOpset}, got {opset}.");

        var result = OnnxExporter.Export(run, onnx, new OnnxExportOptions { Opset = opset, FoldBatchNorm = fold, Views = views, Checkpoint = checkpoint });

        string crop = result.TenCrop ? "ten-crop" : "centre";
        if (settings.Json)
        {
            JsonOutput.Write(console, new JsonObject
            {
                ["onnx"] = result.Path, ["checkpoint"] = result.Checkpoint, ["method"] = result.Method.ToString().ToLowerInvariant(),
                ["opset"] = result.Opset, ["ir_version"] = result.IrVersion, ["input"] = OnnxExporter.InputName, ["output"] = OnnxExporter.OutputName,
                ["input_size"] = result.InputSize, ["crop"] = result.Crop, ["views"] = crop, ["batchnorm"] = result.FoldedBatchNorm ? "folded" : "kept",
                ["nodes"] = result.NodeCount, ["bytes"] = result.Bytes, ["classes"] = JsonOutput.Strings(result.ClassNames),
            });
            return ExitCodes.Success;
        }
        console.MarkupLine($"wrote [bold]{Markup.Escape(result.Path)}[/] ({result.Bytes / 1024.0 / 1024.0:F1} MiB, {result.NodeCount} nodes, opset {result.Opset}, " +
                           $"BatchNorm {(result.FoldedBatchNorm ? "folded" : "kept")}) from {Markup.Escape(result.Checkpoint)}");
        console.MarkupLine(Markup.Escape($"input '{OnnxExporter.InputName}': float32 [N, 1, {result.InputSize}, {result.InputSize}], grayscale, pixel / 255; " +
                           $"output '{OnnxExporter.OutputName}': float32 [N, {result.ClassNames.Count}] ({crop} {result.Crop}x{result.Crop}, " +
                           $"classes {string.Join(", ", result.ClassNames)})"));
        return ExitCodes.Success;
    }
}
