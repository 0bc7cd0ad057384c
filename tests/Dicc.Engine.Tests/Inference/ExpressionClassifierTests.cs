using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Inference;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;
using Dicc.Engine.Tests.Support;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Inference;

/// <summary>
/// The classifier facade on a real run (a narrow DICC VGG11 trained for two epochs on 36x36 synthetic faces, 32 crop):
/// loading by run directory and by checkpoint file, the three inputs (files, pixels, device tensors) against the
/// evaluator the trainer uses, and its errors.
/// </summary>
public class ExpressionClassifierTests
{
    private TempDirectory _temp = null!;
    private DatasetSplits _data = null!;
    private RunDirectory _run = null!;
    private string[] _files = [];

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _temp = new TempDirectory();
        _data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 16, ValidationPerClass = 2, TestPerClass = 3, Seed = 4, Size = 36 });
        var options = new TrainingOptions
        {
            Arch = VggDepth.Vgg11, Width = 0.125, Crop = 32, Method = TrainingMethod.Dicc, Subclasses = "2,1,1,3,2,1,2",
            Epochs = 2, BatchSize = 16, LearningRate = 0.01, Seed = 3, EvalBatchSize = 8,
        };
        _run = new RunDirectory(_temp["run"]);
        using (var backend = new CpuBackend()) new Trainer(backend, _data, options, _run).Run();
        ImageFolderWriter.Write(_data, _temp["images"]);
        _files = Directory.GetDirectories(Path.Combine(_temp["images"], "test")).Order(StringComparer.Ordinal)
            .SelectMany(FaceImages.ListFolder).ToArray();
    }

    [OneTimeTearDown]
    public void CleanUp()
    {
        _data.Dispose();
        _temp.Dispose();
    }

    /// <summary>The trainer's evaluator on the files' pixels: what the classifier must reproduce.</summary>
    private float[] Expected(string checkpoint = "best")
    {
        using var backend = new CpuBackend();
        var (model, config) = RunModel.Load(backend, _run, checkpoint);
        var images = new ImageDataset(FaceImages.Decode(_files, 36), new int[_files.Length], config.Dataset.ClassNames, 36, 36, Split.Test);
        using var evaluator = new Evaluator(model, config.Options.Crop, config.Options.EvalBatchSize);
        return evaluator.Predict(images, tenCrop: false);
    }

    [Test]
    public void Files_Pixels_AndTensors_GiveTheEvaluatorsProbabilities()
    {
        using var classifier = ExpressionClassifier.Load(_run.Path, device: "cpu");
        Assert.Multiple(() =>
        {
            Assert.That(classifier.ImageSize, Is.EqualTo(36));
            Assert.That(classifier.CropSize, Is.EqualTo(32));
            Assert.That(classifier.TenCrop, Is.False);
            Assert.That(classifier.Method, Is.EqualTo(TrainingMethod.Dicc));
            Assert.That(classifier.ClassNames, Is.EqualTo(EmotionClasses.Canonical));
            Assert.That(classifier.CheckpointPath, Is.EqualTo(_run.BestCheckpoint));
        });
        var expected = Expected();

        var byFile = classifier.Classify(_files);
        Assert.That(byFile.Count, Is.EqualTo(_files.Length));
        Assert.That(byFile.Sources, Is.EqualTo(_files));
        Assert.That(byFile.Probabilities.ToArray(), Is.EqualTo(expected), "files: the evaluator's numbers, bit for bit");

        var byPixels = classifier.Classify(FaceImages.Decode(_files, 36), 36);
        Assert.That(byPixels.Probabilities.ToArray(), Is.EqualTo(expected));
        Assert.That(byPixels.Sources, Is.Null);

        // Tensors: centre crops made by hand, on the classifier's backend; the result stays there.
        int c = classifier.ClassNames.Count, n = _files.Length;
        var pixels = FaceImages.Decode(_files, 36);
        var crops = new float[n * 32 * 32];
        for (int i = 0; i < n; i++) Augmentation.Crop(pixels.AsSpan(i * 36 * 36, 36 * 36), 36, 2, 2, false, 32, crops.AsSpan(i * 32 * 32, 32 * 32));
        var input = classifier.Backend.Create(new Shape(n, 1, 32, 32));
        classifier.Backend.CopyIn<float>(input, crops);
        var output = classifier.Classify(input);
        Assert.That(output.Shape, Is.EqualTo(new Shape(n, c)));
        Assert.That(classifier.Backend.ToArray<float>(output), Is.EqualTo(expected).Within(1e-6));

        for (int i = 0; i < n; i++)
        {
            var row = byFile.Row(i);
            Assert.That(byFile.Index(i), Is.EqualTo(Array.IndexOf(row, row.Max())));
            Assert.That(byFile.Label(i), Is.EqualTo(classifier.ClassNames[byFile.Index(i)]));
        }
    }

    [Test]
    public void ACheckpointFile_LoadsWithItsRunsConfig_AndRepeatedCallsReuseTheBuffers()
    {
        using var classifier = ExpressionClassifier.Load(_run.LastCheckpoint, device: "cpu");
        Assert.That(classifier.CheckpointPath, Is.EqualTo(_run.LastCheckpoint));
        Assert.That(classifier.RunPath, Is.EqualTo(_run.Path));
        var expected = Expected("last");
        // One image, then all, then one again: the evaluator grows once and the answers do not change.
        Assert.That(classifier.Classify([_files[0]]).Row(0), Is.EqualTo(expected.AsSpan(0, 7).ToArray()));
        Assert.That(classifier.Classify(_files).Probabilities.ToArray(), Is.EqualTo(expected));
        Assert.That(classifier.Classify([_files[0]]).Row(0), Is.EqualTo(expected.AsSpan(0, 7).ToArray()));
        Assert.That(classifier.Classify(ReadOnlyMemory<byte>.Empty, 36).Count, Is.EqualTo(0));

        // A copy of the checkpoint beside the run's config.json (not in checkpoints/) loads too.
        string copy = Path.Combine(_run.Path, "deploy.safetensors");
        File.Copy(_run.LastCheckpoint, copy, overwrite: true);
        using var fromCopy = ExpressionClassifier.Load(copy, device: "cpu");
        Assert.That(fromCopy.Classify(_files).Probabilities.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void BadInput_NamesTheParameter()
    {
        static InputException Fails(TestDelegate action) => Assert.Throws(Is.InstanceOf<InputException>(), action) as InputException ?? throw new AssertionException("no exception");

        var missing = Fails(() => ExpressionClassifier.Load(_temp["nothing"], "cpu"));
        Assert.That(missing.Parameter, Is.EqualTo("path"));
        Assert.That(missing.Message, Does.StartWith("path ").And.Contain("nothing"));

        var notARun = Fails(() => ExpressionClassifier.Load(_temp["images"], "cpu"));
        Assert.That(notARun.Message, Does.Contain("not a run directory (no config.json)"));

        string stray = _temp["stray.safetensors"];
        File.Copy(_run.BestCheckpoint, stray, overwrite: true);
        var alone = Fails(() => ExpressionClassifier.Load(stray, "cpu"));
        Assert.That(alone.Message, Does.Contain("no config.json beside the checkpoint or one folder up"));

        var checkpoint = Fails(() => ExpressionClassifier.Load(_run.Path, "cpu", checkpoint: "middle"));
        Assert.That(checkpoint.Parameter, Is.EqualTo("checkpoint"));
        Assert.That(checkpoint.Message, Does.StartWith("checkpoint must be best, last or a .safetensors file"));

        var device = Fails(() => ExpressionClassifier.Load(_run.Path, "tpu"));
        Assert.That(device.Parameter, Is.EqualTo("device"));

        using var classifier = ExpressionClassifier.Load(_run.Path, "cpu");
        var size = Fails(() => classifier.Classify(new byte[30 * 30], 30));
        Assert.That(size.Parameter, Is.EqualTo("size"));
        Assert.That(size.Message, Is.EqualTo("size must be in 32..1024 (at least the run's 32x32 crop), got 30."));
        Assert.Throws<ArgumentException>(() => classifier.Classify(new byte[36 * 36 + 1], 36));
        Assert.Throws<ShapeMismatchException>(() => classifier.Classify(classifier.Backend.Create(new Shape(2, 1, 36, 36))));
        using (var other = new CpuBackend())
            Assert.Throws<ArgumentException>(() => classifier.Classify(other.Create(new Shape(2, 1, 32, 32))));
        classifier.Dispose();
        Assert.Throws<ObjectDisposedException>(() => classifier.Classify(_files));
    }
}
