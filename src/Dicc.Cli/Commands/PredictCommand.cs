using System.ComponentModel;
using System.Text.Json.Nodes;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Data;
using Dicc.Engine.Inference;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Dicc.Cli.Commands;

/// <summary>dicc predict: a trained run's label and class probabilities for each image file.</summary>
public sealed class PredictCommand(IAnsiConsole console, ErrorConsole errors) : Command<PredictCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<FILES>")]
        [OptionHelp("Image files (png, jpg, bmp, gif, tif), or folders whose image files are all predicted.")]
        public string[] Files { get; init; } = [];

        [CommandOption("--run <DIR>", true)]
        [OptionHelp("A run directory written by dicc train (config.json and checkpoints/).")]
        public string Run { get; init; } = "";

        [CommandOption("--checkpoint <best|last>")]
        [OptionHelp("best: the model selected on validation accuracy (default); last: the latest epoch's.")]
        public string Checkpoint { get; init; } = "best";

        [CommandOption("--size <N>")]
        [OptionHelp("Side the images are resized to before the centre crop (default: the side of the run's training images).")]
        public int? Size { get; init; }

        [CommandOption("--device <DEVICE>")]
        [OptionHelp("auto (CUDA when usable, else CPU), cpu, cuda or cuda:N. Default auto.")]
        public string Device { get; init; } = "auto";

        [CommandOption("--json")]
        [OptionHelp("Print the predictions as JSON (for scripts).")]
        public bool Json { get; init; }
    }

    /// <summary>Said with every prediction table: the model only knows faces framed as in its training data.</summary>
    internal const string FaceCropCaveat =
        "The model expects a tightly cropped, aligned grayscale face, as in FER2013; whole photos or loose crops give meaningless answers.";

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var run = new RunDirectory(CliValues.ExistingDirectory(settings.Run, "--run"));
        string which = CliValues.Choice(settings.Checkpoint, "--checkpoint", "best", "last");
        var config = run.ReadConfig();
        string checkpoint = RunModel.CheckpointFile(run, which);
        int crop = config.Options.Crop;
        int size = settings.Size ?? config.Dataset.ImageSize;
        if (size is < 8 or > 1024) throw new UsageException($"--size must be in 8..1024, got {size}.");
        if (size < crop) throw new UsageException($"--size {size} is smaller than the run's {crop}x{crop} crop.");
        var files = ExpandFiles(settings.Files);

        // Decoded like the loaders do: grayscale (PIL's luminance), resized to size x size.
        var pixels = FaceImages.Decode(files, size);

        using var classifier = ExpressionClassifier.Load(checkpoint, settings.Device);
        if (classifier.DeviceFallbackReason is { } why)
            errors.Warning($"a GPU was found but cannot be used, predicting on the CPU: {why}");
        string device = classifier.Device;
        var classNames = classifier.ClassNames;
        bool tenCrop = classifier.TenCrop;
        var result = classifier.Classify(pixels, size);
        var probabilities = result.Probabilities.ToArray();

        int c = classNames.Count;
        int Best(int i) => result.Index(i);

        if (settings.Json)
        {
            var predictions = new JsonArray();
            for (int i = 0; i < files.Count; i++)
                predictions.Add(new JsonObject
                {
                    ["file"] = files[i], ["label"] = classNames[Best(i)], ["index"] = Best(i),
                    ["probabilities"] = JsonOutput.Numbers(probabilities.AsSpan(i * c, c).ToArray().Select(p => (double)p)),
                });
            JsonOutput.Write(console, new JsonObject
            {
                ["run"] = run.Path, ["checkpoint"] = checkpoint, ["device"] = device, ["crop"] = tenCrop ? "ten-crop" : "centre",
                ["classes"] = JsonOutput.Strings(classNames), ["predictions"] = predictions,
            });
            return ExitCodes.Success;
        }

        string P(int i, int k) => CliValues.Percent(probabilities[i * c + k], 1);
        // A column per class when that fits the console; otherwise a block per file.
        int wide = 1 + files.Max(f => f.Length) + 3 + Math.Max(5, classNames.Max(n => n.Length)) + 3 + classNames.Sum(n => Math.Max(5, n.Length) + 3);
        if (wide <= console.Profile.Width)
        {
            var table = new Table().Border(TableBorder.Simple).AddColumn("file").AddColumn("label");
            foreach (var name in classNames) table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
            for (int i = 0; i < files.Count; i++)
            {
                int best = Best(i);
                var cells = new List<string> { Markup.Escape(files[i]), $"[bold]{Markup.Escape(classNames[best])}[/]" };
                for (int k = 0; k < c; k++) cells.Add(k == best ? $"[bold]{P(i, k)}[/]" : P(i, k));
                table.AddRow(cells.ToArray());
            }
            console.Write(table);
        }
        else
        {
            for (int i = 0; i < files.Count; i++)
            {
                int best = Best(i);
                console.MarkupLine($"{Markup.Escape(files[i])}: [bold]{Markup.Escape(classNames[best])}[/] ({P(i, best)}%)");
                // Items wrap as wholes: "name value" is never split across lines.
                var line = new System.Text.StringBuilder("  ");
                int length = 2;
                for (int k = 0; k < c; k++)
                {
                    string item = $"{classNames[k]} {P(i, k)}";
                    if (length > 2 && length + 2 + item.Length > console.Profile.Width)
                    {
                        console.MarkupLine(line.ToString());
                        line.Clear().Append("  ");
                        length = 2;
                    }
                    if (length > 2) line.Append("  ");
                    line.Append(k == best ? $"[bold]{Markup.Escape(item)}[/]" : Markup.Escape(item));
                    length += (length > 2 ? 2 : 0) + item.Length;
                }
                console.MarkupLine(line.ToString());
            }
        }
        console.MarkupLine($"[grey]Probabilities in %, {which} checkpoint of {Markup.Escape(run.Path)}, {(tenCrop ? "ten-crop average" : "centre crop")} " +
                           $"{crop}x{crop} of {size}x{size}, on {Markup.Escape(device)}.[/]");
        console.MarkupLine($"[grey]{Markup.Escape(FaceCropCaveat)}[/]");
        return ExitCodes.Success;
    }

    /// <summary>The files named, with each folder replaced by its image files (sorted by name).</summary>
    private static List<string> ExpandFiles(string[] arguments)
    {
        if (arguments.Length == 0) throw new UsageException("give at least one image file.");
        var files = new List<string>();
        foreach (string argument in arguments)
        {
            if (Directory.Exists(argument))
            {
                var images = FaceImages.ListFolder(argument);
                if (images.Count == 0) throw new UsageException($"folder '{argument}' holds no image files ({string.Join(", ", FaceImages.Extensions)}).");
                files.AddRange(images);
            }
            else if (File.Exists(argument)) files.Add(argument);
            else throw new UsageException($"'{argument}' does not exist.");
        }
        return files;
    }
}
