// Classify face images with a trained run, from the Dicc.Engine package (docs/embedding.md).
//   dotnet run -- RUN_OR_CHECKPOINT IMAGE_OR_FOLDER... [--device auto|cpu|cuda|cuda:N]
// RUN_OR_CHECKPOINT: a run directory written by 'dicc train' (or the engine's Trainer), or one of its checkpoint files.
// The same images also go through the tensor API (crops made here, the model on the classifier's backend), which must
// give the same probabilities. Exit code 0 when it does; 2 for bad arguments or input.
using Dicc.Engine;
using Dicc.Engine.Data;
using Dicc.Engine.Inference;
using Dicc.Engine.Tensors;

var arguments = args.ToList();
string device = "auto";
int at = arguments.IndexOf("--device");
if (at >= 0 && at + 1 < arguments.Count)
{
    device = arguments[at + 1];
    arguments.RemoveRange(at, 2);
}
if (arguments.Count < 2)
{
    Console.Error.WriteLine("usage: ClassifySample RUN_OR_CHECKPOINT IMAGE_OR_FOLDER... [--device auto|cpu|cuda|cuda:N]");
    return 2;
}
var files = arguments.Skip(1).SelectMany(a => Directory.Exists(a) ? FaceImages.ListFolder(a) : [a]).ToList();

try
{
    using var classifier = ExpressionClassifier.Load(arguments[0], device);
    Console.WriteLine($"{classifier.Method} model from {classifier.CheckpointPath} on {classifier.Device}");
    Console.WriteLine($"preprocessing: grayscale, {classifier.ImageSize}x{classifier.ImageSize}, " +
                      $"{(classifier.TenCrop ? "ten-crop average" : "centre crop")} {classifier.CropSize}x{classifier.CropSize}, pixel / 255");

    // 1. Files: decoded, cropped and batched by the engine.
    var predictions = classifier.Classify(files);
    for (int i = 0; i < predictions.Count; i++)
    {
        var row = predictions.Row(i);
        string all = string.Join("  ", predictions.ClassNames.Select((name, k) => $"{name} {row[k]:P0}"));
        Console.WriteLine($"{Path.GetFileName(files[i])}: {predictions.Label(i)} ({row[predictions.Index(i)]:P1})  [{all}]");
    }

    // 2. Tensors: centre crops made here, [N, 1, crop, crop] floats on the classifier's backend; probabilities stay there.
    int size = classifier.ImageSize, crop = classifier.CropSize, offset = (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);
    byte[] pixels = FaceImages.Decode(files, size);
    var crops = new float[files.Count * crop * crop];
    for (int i = 0; i < files.Count; i++)
        for (int y = 0; y < crop; y++)
            for (int x = 0; x < crop; x++)
                crops[(i * crop + y) * crop + x] = pixels[(i * size + y + offset) * size + x + offset] / 255f;
    var input = classifier.Backend.Create(new Shape(files.Count, 1, crop, crop));
    classifier.Backend.CopyIn<float>(input, crops);
    var probabilities = classifier.Backend.ToArray<float>(classifier.Classify(input));
    if (classifier.TenCrop)
    {
        Console.WriteLine("the run tests with ten-crop: the single centre crop of the tensor path is not compared.");
        return 0;
    }
    double worst = 0;
    for (int i = 0; i < probabilities.Length; i++) worst = Math.Max(worst, Math.Abs(probabilities[i] - predictions.Probabilities[i]));
    Console.WriteLine($"{(worst <= 1e-5 ? "ok" : "FAILED")}: the tensor path gives the file path's probabilities (largest difference {worst:E1})");
    return worst <= 1e-5 ? 0 : 1;
}
catch (InputException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
