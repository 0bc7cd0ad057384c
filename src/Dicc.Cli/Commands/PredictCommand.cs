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
    public sealed class Settings : FaceCropSettings
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

        [CommandOption("--detect-faces")]
        [OptionHelp("Photos and whole-head images: find every face (OpenCV's Haar cascade), crop it and predict each one, with its box.")]
        public bool DetectFaces { get; init; }

        [CommandOption("--annotate <PNG|DIR>")]
        [OptionHelp("With --detect-faces: write the picture with each face's box and label drawn; a PNG file for one image, a folder for several.")]
        public string? Annotate { get; init; }
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
        if (settings.Annotate is not null && !settings.DetectFaces) throw new UsageException("--annotate goes with --detect-faces.");
        var faceCrop = settings.FaceCrop(settings.DetectFaces);

        // Decoded like the loaders do: grayscale (PIL's luminance), resized to size x size; with --detect-faces,
        // each face found cropped out of the whole image and resized the same way.
        byte[] pixels;
        List<Face>? faces = null;
        var photos = new List<(string File, GrayImage Image, List<int> Faces)>();
        if (faceCrop is null) pixels = FaceImages.Decode(files, size);
        else
        {
            (pixels, faces) = FindFaces(files, faceCrop, size, photos);
            if (faces.Count == 0)
                throw new UsageException($"no face found in {(files.Count == 1 ? files[0] : $"any of the {files.Count} images")} " +
                                         $"({faceCrop.Detector.Description}): the detector finds upright, frontal faces at least " +
                                         "30 pixels wide; give a photo in which the face is larger or more frontal, or a face crop without --detect-faces.");
        }
        // What each predicted image is: a file, or a face in a file.
        var inputs = faces is null ? files : faces.Select(f => $"{f.File} #{f.Index} {f.Box.Width}x{f.Box.Height}+{f.Box.X}+{f.Box.Y}").ToList();

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
            for (int i = 0; i < inputs.Count; i++)
            {
                var prediction = new JsonObject
                {
                    ["file"] = faces is null ? files[i] : faces[i].File, ["label"] = classNames[Best(i)], ["index"] = Best(i),
                    ["probabilities"] = JsonOutput.Numbers(probabilities.AsSpan(i * c, c).ToArray().Select(p => (double)p)),
                };
                if (faces is not null)
                {
                    prediction["face"] = faces[i].Index;
                    prediction["box"] = new JsonObject { ["x"] = faces[i].Box.X, ["y"] = faces[i].Box.Y, ["width"] = faces[i].Box.Width, ["height"] = faces[i].Box.Height };
                }
                predictions.Add(prediction);
            }
            var document = new JsonObject
            {
                ["run"] = run.Path, ["checkpoint"] = checkpoint, ["device"] = device, ["crop"] = tenCrop ? "ten-crop" : "centre",
                ["classes"] = JsonOutput.Strings(classNames), ["predictions"] = predictions,
            };
            if (faceCrop is not null)
            {
                document["detector"] = faceCrop.Detector.Description;
                document["face_margin"] = faceCrop.Margin;
                document["no_face"] = JsonOutput.Strings(photos.Where(p => p.Faces.Count == 0).Select(p => p.File));
            }
            Annotate(settings, photos, faces, classNames, probabilities);
            JsonOutput.Write(console, document);
            return ExitCodes.Success;
        }

        string P(int i, int k) => CliValues.Percent(probabilities[i * c + k], 1);
        // A column per class when that fits the console; otherwise a block per file.
        int wide = 1 + inputs.Max(f => f.Length) + 3 + Math.Max(5, classNames.Max(n => n.Length)) + 3 + classNames.Sum(n => Math.Max(5, n.Length) + 3);
        if (wide <= console.Profile.Width)
        {
            var table = new Table().Border(TableBorder.Simple).AddColumn("file").AddColumn("label");
            foreach (var name in classNames) table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
            for (int i = 0; i < inputs.Count; i++)
            {
                int best = Best(i);
                var cells = new List<string> { Markup.Escape(inputs[i]), $"[bold]{Markup.Escape(classNames[best])}[/]" };
                for (int k = 0; k < c; k++) cells.Add(k == best ? $"[bold]{P(i, k)}[/]" : P(i, k));
                table.AddRow(cells.ToArray());
            }
            console.Write(table);
        }
        else
        {
            for (int i = 0; i < inputs.Count; i++)
            {
                int best = Best(i);
                console.MarkupLine($"{Markup.Escape(inputs[i])}: [bold]{Markup.Escape(classNames[best])}[/] ({P(i, best)}%)");
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
        if (faceCrop is null) console.MarkupLine($"[grey]{Markup.Escape(FaceCropCaveat)}[/]");
        else
        {
            console.MarkupLine($"[grey]Faces found by the {Markup.Escape(faceCrop.Detector.Description)}; each is FILE #N WxH+X+Y (its box in the image), " +
                               $"cropped with a margin of {faceCrop.Margin.ToString(CliValues.Invariant)} of its side.[/]");
            Annotate(settings, photos, faces!, classNames, probabilities);
        }
        return ExitCodes.Success;
    }

    /// <summary>A face found in a file: which file, its number there (from 1, largest first) and its box.</summary>
    private sealed record Face(string File, int Index, FaceBox Box);

    /// <summary>
    /// Every face in every file, cropped and resized to size x size (one block, face after face). A file without a
    /// face gets a warning naming it; one that cannot be decoded is an error naming it, as without --detect-faces.
    /// </summary>
    private (byte[] Pixels, List<Face> Faces) FindFaces(List<string> files, FaceCropOptions faceCrop, int size,
        List<(string File, GrayImage Image, List<int> Faces)> photos)
    {
        var faces = new List<Face>();
        var crops = new List<byte[]>();
        foreach (string file in files)
        {
            var image = FaceCrops.Decode(file);
            var found = faceCrop.Detector.Detect(image);
            var indices = new List<int>();
            for (int k = 0; k < found.Count; k++)
            {
                indices.Add(faces.Count);
                faces.Add(new Face(file, k + 1, found[k]));
                crops.Add(FaceCrops.Crop(image, FaceCrops.Region(found[k], faceCrop.Margin, image.Width, image.Height), size));
            }
            if (found.Count == 0) errors.Warning($"{file}: no face found ({image.Width}x{image.Height} image).");
            photos.Add((file, image, indices));
        }
        var pixels = new byte[(long)crops.Count * size * size];
        for (int i = 0; i < crops.Count; i++) crops[i].CopyTo(pixels.AsSpan(i * size * size));
        return (pixels, faces);
    }

    /// <summary>--annotate: each image with its faces' boxes and labels drawn (a PNG for one image, a folder of them for several).</summary>
    private void Annotate(Settings settings, List<(string File, GrayImage Image, List<int> Faces)> photos, List<Face>? faces,
        IReadOnlyList<string> classNames, float[] probabilities)
    {
        if (settings.Annotate is not { } target || faces is null) return;
        int c = classNames.Count;
        bool single = photos.Count == 1;
        if (single && Directory.Exists(target)) throw new UsageException($"--annotate {target} is a folder; for one image give the PNG file to write.");
        if (!single)
        {
            if (File.Exists(target)) throw new UsageException($"--annotate {target} is a file; for {photos.Count} images give a folder.");
            Directory.CreateDirectory(target);
        }
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, image, indices) in photos)
        {
            var drawn = indices.Select(i =>
            {
                int best = 0;
                for (int k = 1; k < c; k++)
                    if (probabilities[i * c + k] > probabilities[i * c + best]) best = k;
                return (faces[i].Box, $"{classNames[best]} {CliValues.Percent(probabilities[i * c + best], 0)}%");
            }).ToList();
            string output = single ? CliValues.OutputFile(target, "--annotate") : Path.Combine(target, Path.GetFileNameWithoutExtension(file) + ".png");
            for (int n = 2; !single && !used.Add(output); n++)
                output = Path.Combine(target, $"{Path.GetFileNameWithoutExtension(file)}-{n}.png");
            FaceDetectors.Annotate(file, image, drawn, output);
        }
        if (!settings.Json)
            console.MarkupLine($"Annotated {(single ? "picture" : $"pictures ({photos.Count})")} written to [bold]{Markup.Escape(target)}[/].");
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
