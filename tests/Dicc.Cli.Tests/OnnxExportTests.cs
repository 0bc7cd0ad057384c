using System.Text.Json;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Data;
using Dicc.Engine.IO;
using Dicc.Engine.Tests.Support;
using Dicc.Engine.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>
/// <c>dicc export</c> checked by running the ONNX file in ONNX Runtime: its probabilities must equal <c>dicc predict</c>'s
/// within 1e-4 on the same image files, for a baseline run and DICC runs (MLP mapping with ten-crop testing, sum mapping),
/// with BatchNorm folded and kept, at the lowest, default and highest opset. The runs are short VGG19 x0.125 runs, trained
/// once per fixture by <c>dicc train</c>: on a slice of the real FER2013 images (skipped where FER2013 is absent), and on
/// synthetic faces written by <c>dicc synth</c> (runs everywhere).
///
/// Two epochs leave a model's answers close to uniform (a DICC model's about 1/7 each, differing between images by less
/// than 1e-2), which would let a wrong graph pass a 1e-4 comparison. So the runs' best checkpoints are sharpened before
/// the comparison: the last linear layers are scaled (the baseline's head x5; DICC's subclass head x20 and its mapping's
/// last layer x40), which keeps each architecture and makes the answers depend strongly on the image. Each comparison requires the probabilities of some class to differ
/// by more than 0.2 between images. (Without the sharpening, a graph without the ten-crop mirrors differs from
/// <c>dicc predict</c> by only 2e-4 on synthetic faces.)
/// </summary>
[TestFixture("fer2013")]
[TestFixture("synthetic")]
public class OnnxExportTests(string source)
{
    private const double Tolerance = 1e-4;

    /// <summary>
    /// The spread the DICC runs' answers must show. Two epochs on 20 images per class leave them answering nearly alike,
    /// and how nearly moves with any change in the engine's rounding (the ten-crop run's spread moved between 0.03 and
    /// 0.3 with the first layer's gradient rounding; the sum-mapping run, sharpened 40-fold, fell to 1e-4 when Winograd
    /// convolutions came in: the sharpening then saturated every image to one class). 0.02 still lets an export that
    /// mixed up images miss the tolerance 200 times over.
    /// </summary>
    private const double DiccSpread = 0.02;
    private TempDirectory _temp = null!;
    private string _data = "", _baseline = "", _dicc = "", _diccSum = "";
    private string[] _images = [], _common = [];

    [OneTimeSetUp]
    public void TrainRuns()
    {
        if (source == "fer2013" && Fer2013Data.Folder is null) Assert.Ignore(Fer2013Data.MissingReason);
        _temp = new TempDirectory();
        _data = _temp["data"];
        if (source == "fer2013") Fer2013Data.CopySubset(_data, trainPerClass: 20, validationPerClass: 3, testPerClass: 4);
        else Succeed(Run("synth", "--out", _data, "--per-class", "20", "--val-per-class", "3", "--test-per-class", "4", "--seed", "5"));
        // Every test image of every class, so that the comparison covers each class the model predicts.
        _images = Directory.GetDirectories(Path.Combine(_data, "test")).Order(StringComparer.Ordinal)
            .SelectMany(d => FaceImages.ListFolder(d)).ToArray();
        string[] common = _common = ["--data", _data, "--arch", "vgg19", "--width", "0.125", "--epochs", "2", "--batch", "16", "--lr", "0.01", "--device", "cpu", "--quiet"];
        _baseline = Train("baseline", [.. common, "--method", "baseline"]);
        _dicc = Train("dicc", [.. common, "--method", "dicc", "--subclasses", "auto", "--ten-crop"]);
        _diccSum = Train("dicc-sum", [.. common, "--method", "dicc", "--subclasses", "auto", "--mapping", "sum"]);
        Sharpen(_baseline, ("1.1.", 5f));
        Sharpen(_dicc, ("1.1.", 20f), ("mapping.4.", 40f));
        Sharpen(_diccSum, ("1.1.", 10f)); // 40-fold saturated it to one class for every image (see DiccSpread)
    }

    /// <summary>Scales the weights and biases whose names start with each prefix in the run's best checkpoint.</summary>
    private static void Sharpen(string run, params (string Prefix, float Factor)[] scales)
    {
        string file = new RunDirectory(run).BestCheckpoint;
        var content = SafetensorsFile.Load(file);
        var tensors = content.Tensors.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
        foreach (var (prefix, factor) in scales)
            foreach (string name in new[] { prefix + "weight", prefix + "bias" })
            {
                var values = tensors[name].ToArray<float>();
                for (int i = 0; i < values.Length; i++) values[i] *= factor;
                tensors[name] = SafetensorsTensor.From(values, tensors[name].Shape);
            }
        SafetensorsFile.Save(file, tensors, content.Metadata);
    }

    [OneTimeTearDown]
    public void CleanUp() => _temp?.Dispose();

    private string Train(string name, string[] args)
    {
        string run = _temp["runs/" + name];
        Succeed(Run(["train", .. args, "--out", run]));
        return run;
    }

    private static void Succeed(CliRun run) => Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

    /// <summary>dicc predict --json: the probabilities of each image, in the order given.</summary>
    private float[][] Predict(string run)
    {
        var result = Run(["predict", "--run", run, "--device", "cpu", "--json", .. _images]);
        Succeed(result);
        using var json = JsonDocument.Parse(result.Output);
        return json.RootElement.GetProperty("predictions").EnumerateArray()
            .Select(p => p.GetProperty("probabilities").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
    }

    /// <summary>ONNX Runtime on the images as the model's metadata says: decoded grayscale at input_size, pixel / 255.</summary>
    private float[][] RunOnnx(string onnx, int batch)
    {
        using var session = new InferenceSession(onnx);
        int size = int.Parse(session.ModelMetadata.CustomMetadataMap["input_size"], System.Globalization.CultureInfo.InvariantCulture);
        var pixels = FaceImages.Decode(_images, size);
        var rows = new List<float[]>();
        for (int start = 0; start < _images.Length; start += batch)
        {
            int n = Math.Min(batch, _images.Length - start);
            var input = new DenseTensor<float>([n, 1, size, size]);
            var values = input.Buffer.Span;
            for (int i = 0; i < values.Length; i++) values[i] = pixels[start * size * size + i] / 255f;
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", input)]);
            var output = results.Single(r => r.Name == "probabilities").AsTensor<float>();
            Assert.That(output.Dimensions.ToArray(), Is.EqualTo(new[] { n, output.Dimensions[1] }));
            for (int i = 0; i < n; i++) rows.Add(Enumerable.Range(0, output.Dimensions[1]).Select(k => output[i, k]).ToArray());
        }
        return rows.ToArray();
    }

    private string Export(string run, string name, params string[] options)
    {
        string onnx = _temp[name + ".onnx"];
        Succeed(Run(["export", "--run", run, "--onnx", onnx, .. options]));
        return onnx;
    }

    /// <summary>The largest |a - b| over all images and classes, after checking that the model is not trivial.</summary>
    private static double MaxDifference(float[][] expected, float[][] actual, double minimumSpread = 0.2)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        // A model that gives every image the same answer would make the comparison weak: the images must differ.
        double spread = Enumerable.Range(0, expected[0].Length).Max(k => expected.Max(r => r[k]) - expected.Min(r => r[k]));
        Assert.That(spread, Is.GreaterThan(minimumSpread), "the probabilities differ between images");
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.That(actual[i], Has.Length.EqualTo(expected[i].Length));
            Assert.That(actual[i].Sum(), Is.EqualTo(1.0).Within(1e-5), $"image {i}: probabilities sum to 1");
            for (int k = 0; k < expected[i].Length; k++) worst = Math.Max(worst, Math.Abs(expected[i][k] - actual[i][k]));
        }
        TestContext.Out.WriteLine($"largest |onnx - predict| = {worst:E2} over {expected.Length} images (largest spread of a class between images {spread:F3})");
        return worst;
    }

    [TestCase("13", "fold")]
    [TestCase("17", "keep")]
    [TestCase("23", "fold")]
    public void Baseline_OnnxRuntimeEqualsPredict(string opset, string batchNorm)
    {
        var onnx = Export(_baseline, $"baseline-{opset}-{batchNorm}", "--opset", opset, "--batchnorm", batchNorm);
        Assert.That(MaxDifference(Predict(_baseline), RunOnnx(onnx, batch: 5)), Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void PosthocAdjustedBaseline_OnnxRuntimeEqualsPredict()
    {
        // The same weights with post-hoc logit adjustment switched on in config.json (it changes predictions, not training).
        string run = _temp["runs/posthoc"];
        foreach (string file in Directory.GetFiles(_baseline, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(run, Path.GetRelativePath(_baseline, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        var directory = new RunDirectory(run);
        var config = directory.ReadConfig();
        directory.WriteConfig(config with { Options = config.Options with { PosthocTau = 1 } });
        var adjusted = Predict(run);
        Assert.That(adjusted, Is.Not.EqualTo(Predict(_baseline)), "the adjustment changes the probabilities");
        var onnx = Export(run, "posthoc");
        Assert.That(MaxDifference(adjusted, RunOnnx(onnx, batch: 5)), Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void LdamCosineHead_OnnxRuntimeEqualsPredict()
    {
        // Cosine logits cannot be sharpened by scaling weights, and a larger scale s saturates the softmax: after two
        // epochs this model gives every image the same class, its probabilities differing between images by 0.01-0.05
        // at s = 30. That is enough here: a graph without either normalisation or without the scale would be off by
        // far more than the tolerance (raw features have norms in the tens).
        string run = Train("ldam-cosine", [.. _common, "--method", "baseline", "--loss", "ldam", "--head", "cosine"]);
        var onnx = Export(run, "ldam-cosine");
        Assert.That(MaxDifference(Predict(run), RunOnnx(onnx, batch: 5), minimumSpread: 0.01), Is.LessThanOrEqualTo(Tolerance));
    }

    [TestCase("13", "keep")]
    [TestCase("17", "fold")]
    [TestCase("23", "fold")]
    public void DiccTenCrop_OnnxRuntimeEqualsPredict(string opset, string batchNorm)
    {
        var onnx = Export(_dicc, $"dicc-{opset}-{batchNorm}", "--opset", opset, "--batchnorm", batchNorm);
        using (var session = new InferenceSession(onnx))
            Assert.That(session.ModelMetadata.CustomMetadataMap["views"], Is.EqualTo("ten-crop"), "a ten-crop run exports its protocol");
        Assert.That(MaxDifference(Predict(_dicc), RunOnnx(onnx, batch: 7), DiccSpread), Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void DiccSumMapping_OnnxRuntimeEqualsPredict()
    {
        var onnx = Export(_diccSum, "dicc-sum");
        Assert.That(MaxDifference(Predict(_diccSum), RunOnnx(onnx, batch: 64), DiccSpread), Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void CentreViewsOfATenCropRun_EqualTheEnginesCentreCrop()
    {
        var onnx = Export(_dicc, "dicc-centre", "--views", "centre");
        var config = new RunDirectory(_dicc).ReadConfig();
        float[][] expected;
        using (var backend = new CpuBackend())
        {
            var (model, _) = RunModel.Load(backend, new RunDirectory(_dicc));
            var images = new ImageDataset(FaceImages.Decode(_images, config.Dataset.ImageSize), new int[_images.Length], config.Dataset.ClassNames,
                config.Dataset.ImageSize, config.Dataset.ImageSize, Split.Test);
            using var evaluator = new Evaluator(model, config.Options.Crop, 16);
            var flat = evaluator.Predict(images, tenCrop: false);
            int c = config.Dataset.ClassNames.Length;
            expected = Enumerable.Range(0, _images.Length).Select(i => flat.AsSpan(i * c, c).ToArray()).ToArray();
        }
        Assert.That(MaxDifference(expected, RunOnnx(onnx, batch: 3), DiccSpread), Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void Metadata_NamesTheClassesAndThePreprocessing_AndTheBatchIsDynamic()
    {
        var onnx = Export(_baseline, "metadata");
        var config = new RunDirectory(_baseline).ReadConfig();
        using var session = new InferenceSession(onnx);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Multiple(() =>
        {
            Assert.That(JsonSerializer.Deserialize<string[]>(metadata["class_names"]), Is.EqualTo(config.Dataset.ClassNames));
            Assert.That(metadata["input_size"], Is.EqualTo(config.Dataset.ImageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(metadata["crop"], Is.EqualTo("44"));
            Assert.That(metadata["views"], Is.EqualTo("centre"));
            Assert.That(metadata["normalization"], Does.Contain("pixel / 255"));
            Assert.That(metadata["method"], Is.EqualTo("baseline"));
            var input = session.InputMetadata["input"];
            Assert.That(input.Dimensions, Is.EqualTo(new[] { -1, 1, 48, 48 }), "batch dimension is symbolic");
            Assert.That(input.SymbolicDimensions[0], Is.EqualTo("N"));
            Assert.That(session.OutputMetadata["probabilities"].Dimensions, Is.EqualTo(new[] { -1, 7 }));
        });
        // One image at a time gives what a batch gives.
        var single = RunOnnx(onnx, batch: 1);
        var batched = RunOnnx(onnx, batch: 32);
        for (int i = 0; i < single.Length; i++) Assert.That(single[i], Is.EqualTo(batched[i]).Within(1e-6));
    }

    [Test]
    public void BadOptions_AreOneLineErrors()
    {
        AssertBadUsage(Run("export", "--run", _baseline, "--onnx", _temp["x.onnx"], "--opset", "12"), "--opset must be in 13..23, got 12.");
        AssertBadUsage(Run("export", "--run", _baseline, "--onnx", _temp["x.onnx"], "--batchnorm", "drop"), "--batchnorm: 'drop' is not one of fold, keep");
        AssertBadUsage(Run("export", "--run", _temp["nothing"], "--onnx", _temp["x.onnx"]), "--run: '" + _temp["nothing"] + "' does not exist.");
        AssertBadUsage(Run("export", "--run", _baseline, "--onnx", _temp["no-such-folder/x.onnx"]), "--onnx");
        Assert.That(File.Exists(_temp["x.onnx"]), Is.False, "nothing is written on bad usage");
    }
}
