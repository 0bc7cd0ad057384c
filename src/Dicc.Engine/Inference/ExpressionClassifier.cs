using Dicc.Engine.Backends;
using Dicc.Engine.Data;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Engine.Inference;

/// <summary>
/// A trained model, ready to classify faces: load a run directory (or one of its checkpoint files) onto a device, then
/// classify image files, decoded pixels, or preprocessed tensors already on the device. <c>dicc predict</c> is this class
/// plus a table. See docs/embedding.md.
/// <code>
/// using var classifier = ExpressionClassifier.Load("runs/dicc-b10", device: "cuda");
/// var predictions = classifier.Classify(["face1.png", "face2.png"]);
/// Console.WriteLine($"{predictions.Label(0)} {predictions.Row(0)[predictions.Index(0)]:P1}");
/// </code>
/// Preprocessing is the engine's own: grayscale (PIL's luminance weights), resized to <see cref="ImageSize"/>, the centre
/// <see cref="CropSize"/> crop (or the average over ten crops when the run tests with ten-crop, <see cref="TenCrop"/>),
/// pixels divided by 255. The model expects a tightly cropped, aligned grayscale face, as in FER2013.
/// Not thread-safe: use one instance per thread.
/// </summary>
public sealed class ExpressionClassifier : IDisposable
{
    private readonly ExpressionModel _model;
    private readonly int _maxBatch;
    private Evaluator? _evaluator;
    private int _evaluatorBatch;
    private bool _disposed;

    private ExpressionClassifier(Backend backend, ExpressionModel model, RunConfig config, RunDirectory run, string checkpoint, string? fallback)
    {
        Backend = backend;
        _model = model;
        ClassNames = config.Dataset.ClassNames;
        ImageSize = config.Dataset.ImageSize;
        CropSize = config.Options.Crop;
        TenCrop = config.Options.TenCropTest;
        Method = config.Options.Method;
        RunPath = run.Path;
        CheckpointPath = checkpoint;
        DeviceFallbackReason = fallback;
        _maxBatch = Math.Max(1, config.Options.EvalBatchSize);
    }

    /// <summary>
    /// Loads a trained model onto a device.
    /// </summary>
    /// <param name="path">A run directory written by training (config.json and checkpoints/), or a checkpoint file of one
    /// (<c>RUN/checkpoints/NAME.safetensors</c>, or a .safetensors file beside the run's config.json).</param>
    /// <param name="device"><c>auto</c> (CUDA when usable, else the CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>, as
    /// <see cref="BackendFactory.Create"/> takes it. The classifier owns the backend it creates.</param>
    /// <param name="checkpoint">For a run directory: <c>best</c> (selected on validation accuracy) or <c>last</c>.
    /// Ignored when <paramref name="path"/> is a checkpoint file.</param>
    /// <exception cref="InputException">No model at <paramref name="path"/>, a checkpoint that does not fit the run's
    /// configuration, or a device that cannot be used (the message names the parameter).</exception>
    public static ExpressionClassifier Load(string path, string device = "auto", string checkpoint = "best")
    {
        var (run, file) = RunModel.Locate(path, checkpoint);
        var backend = BackendFactory.Create(device);
        string? fallback = BackendFactory.AutoFallbackReason;
        try
        {
            var (model, config) = RunModel.Load(backend, run, file);
            return new ExpressionClassifier(backend, model, config, run, file, fallback);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>The backend the model lives on (for <see cref="Classify(Tensor)"/>'s input tensors).</summary>
    public Backend Backend { get; }

    /// <summary>What the model runs on, e.g. "CPU, 8 threads, AVX2+FMA" or the GPU's name.</summary>
    public string Device => Backend.Description;

    /// <summary>Why <c>auto</c> chose the CPU although a GPU was found, or null.</summary>
    public string? DeviceFallbackReason { get; }

    /// <summary>The class names in output order (FER2013's seven emotions for a FER2013 run).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The side, in pixels, of the run's training images: files are resized to it before cropping.</summary>
    public int ImageSize { get; }

    /// <summary>The side of the square crop the network sees.</summary>
    public int CropSize { get; }

    /// <summary>True when the run's test protocol is the ten-crop average (else the centre crop).</summary>
    public bool TenCrop { get; }

    /// <summary>Baseline or DICC.</summary>
    public TrainingMethod Method { get; }

    /// <summary>The run directory the model came from.</summary>
    public string RunPath { get; }

    /// <summary>The checkpoint file that was loaded.</summary>
    public string CheckpointPath { get; }

    /// <summary>
    /// Classifies image files (png, jpg, bmp, gif, tif): decoded as the training loaders decode them, at
    /// <see cref="ImageSize"/>, then as <see cref="Classify(ReadOnlyMemory{byte}, int)"/>.
    /// </summary>
    /// <exception cref="DataFormatException">A file that is not a readable image (the message names it).</exception>
    public Predictions Classify(IReadOnlyList<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        return Classify(FaceImages.Decode(files, ImageSize), ImageSize, files);
    }

    /// <summary>
    /// Classifies decoded grayscale images: <paramref name="pixels"/> holds <c>count * size * size</c> bytes, image after
    /// image, row-major, 0 = black (what <see cref="FaceImages.Decode"/> returns). Each image is cropped to
    /// <see cref="CropSize"/> at its centre (or ten-crop, <see cref="TenCrop"/>) and divided by 255.
    /// </summary>
    /// <param name="pixels">The images.</param>
    /// <param name="size">Their side, at least <see cref="CropSize"/> (normally <see cref="ImageSize"/>).</param>
    public Predictions Classify(ReadOnlyMemory<byte> pixels, int size) => Classify(pixels, size, sources: null);

    /// <summary>
    /// The model on a batch already on <see cref="Backend"/>: float32 images [N, 1, <see cref="CropSize"/>,
    /// <see cref="CropSize"/>] holding pixel / 255 (cropped by the caller, one view per image) -> class probabilities
    /// [N, C], a tensor on the same backend that stays valid until the next call. Nothing is copied to the host, so a GPU
    /// application can keep working on the result in its own stream order (call <see cref="Backends.Backend.Synchronize"/>
    /// or <see cref="Backends.Backend.CopyOut{T}"/> before reading it from the host).
    /// </summary>
    public Tensor Classify(Tensor images)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(images);
        if (!ReferenceEquals(images.Backend, Backend))
            throw new ArgumentException($"images live on '{images.Backend.Name}'; the classifier's model is on '{Backend.Name}'.", nameof(images));
        images.RequireDType(DType.Float32);
        if (images.Shape.Rank != 4 || images.Shape[1] != 1 || images.Shape[2] != CropSize || images.Shape[3] != CropSize)
            throw new ShapeMismatchException($"images must be [N, 1, {CropSize}, {CropSize}] (grayscale crops of the run's size), got {images.Shape}.");
        return _model.PredictProbabilities(images);
    }

    private Predictions Classify(ReadOnlyMemory<byte> pixels, int size, IReadOnlyList<string>? sources)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (size < CropSize || size > 1024)
            throw new InputException($"size must be in {CropSize}..1024 (at least the run's {CropSize}x{CropSize} crop), got {size}.") { Parameter = "size" };
        long imageBytes = (long)size * size;
        if (pixels.Length % imageBytes != 0)
            throw new ArgumentException($"{pixels.Length} bytes are not a whole number of {size}x{size} images.", nameof(pixels));
        int count = checked((int)(pixels.Length / imageBytes));
        if (count == 0) return new Predictions([], ClassNames, sources);
        var images = new ImageDataset(pixels, new int[count], ClassNames, size, size, Split.Test, sources?.ToArray());
        return new Predictions(EvaluatorFor(count).Predict(images, TenCrop), ClassNames, sources);
    }

    /// <summary>The evaluator, with buffers for min(count, the run's evaluation batch) images (grown when a larger call comes).</summary>
    private Evaluator EvaluatorFor(int count)
    {
        int batch = Math.Min(count, _maxBatch);
        if (_evaluator is null || _evaluatorBatch < batch)
        {
            _evaluator?.Dispose();
            _evaluator = new Evaluator(_model, CropSize, batch);
            _evaluatorBatch = batch;
        }
        return _evaluator;
    }

    /// <summary>Frees the model's device memory and the backend.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _evaluator?.Dispose();
        Backend.Dispose();
    }
}

/// <summary>Class probabilities for a batch of images, with the label each one gets.</summary>
public sealed class Predictions
{
    private readonly float[] _probabilities;

    internal Predictions(float[] probabilities, IReadOnlyList<string> classNames, IReadOnlyList<string>? sources)
    {
        _probabilities = probabilities;
        ClassNames = classNames;
        Count = classNames.Count == 0 ? 0 : probabilities.Length / classNames.Count;
        Sources = sources;
    }

    /// <summary>The number of images.</summary>
    public int Count { get; }

    /// <summary>The class names, in the order of each row's probabilities.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The files the images came from (for <see cref="ExpressionClassifier.Classify(IReadOnlyList{string})"/>), else null.</summary>
    public IReadOnlyList<string>? Sources { get; }

    /// <summary>All probabilities, [Count, C] row-major; each row sums to 1.</summary>
    public ReadOnlySpan<float> Probabilities => _probabilities;

    /// <summary>The class probabilities of image <paramref name="index"/> (a copy, in <see cref="ClassNames"/> order).</summary>
    public float[] Row(int index) => RowSpan(index).ToArray();

    /// <summary>The most probable class of image <paramref name="index"/> (the first of equal maxima).</summary>
    public int Index(int index)
    {
        var row = RowSpan(index);
        int best = 0;
        for (int k = 1; k < row.Length; k++)
            if (row[k] > row[best]) best = k;
        return best;
    }

    /// <summary>The name of the most probable class of image <paramref name="index"/>.</summary>
    public string Label(int index) => ClassNames[Index(index)];

    private ReadOnlySpan<float> RowSpan(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _probabilities.AsSpan(index * ClassNames.Count, ClassNames.Count);
    }
}
