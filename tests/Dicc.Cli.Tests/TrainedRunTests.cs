using Dicc.Engine;
using System.Buffers.Binary;
using System.Text.Json;
using Dicc.Cli.Reports;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Models;
using Dicc.Engine.Training;
using NUnit.Framework;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static Dicc.Cli.Tests.CliTestSupport;
using Dicc.Engine.Tests.Support;

namespace Dicc.Cli.Tests;

/// <summary>
/// dicc predict and the run pictures on a real run: a narrow DICC VGG11 trained for two epochs on small
/// synthetic faces (36x36, 32 crop), once for the fixture.
/// </summary>
public class TrainedRunTests
{
    private TempDirectory _temp = null!;
    private DatasetSplits _data = null!;
    private RunDirectory _run = null!;

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _temp = new TempDirectory();
        _data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 24, Beta = 4, ValidationPerClass = 3, TestPerClass = 4, Seed = 6, Size = 36 });
        var options = new TrainingOptions
        {
            Arch = VggDepth.Vgg11, Width = 0.125, Dropout = 0.2f, Crop = 32, Method = TrainingMethod.Dicc, Subclasses = "2,1,1,3,2,1,2",
            Epochs = 2, BatchSize = 16, LearningRate = 0.01, Seed = 3, LogEvery = 1, EvalBatchSize = 8,
        };
        _run = new RunDirectory(_temp["run"]);
        using var backend = new CpuBackend();
        new Trainer(backend, _data, options, _run).Run();
    }

    [OneTimeTearDown]
    public void CleanUp()
    {
        _data.Dispose();
        _temp.Dispose();
    }

    /// <summary>Writes the test split as PNG files; returns their paths in dataset order.</summary>
    private string[] WriteTestImages(string folder)
    {
        ImageFolderWriter.Write(_data.Test, folder);
        var seen = new int[_data.ClassNames.Count];
        return Enumerable.Range(0, _data.Test.Count).Select(i =>
        {
            string name = _data.ClassNames[_data.Test.Label(i)];
            return Path.Combine(folder, name, $"{name}_{seen[_data.Test.Label(i)]++:D6}.png");
        }).ToArray();
    }

    /// <summary>What the engine itself predicts for the test split with the run's best checkpoint.</summary>
    private float[] EnginePredictions()
    {
        var config = _run.ReadConfig();
        using var backend = new CpuBackend();
        var model = ModelFactory.Create(backend, config.Options, config.Dataset.ClassNames.Length, config.Dataset.TrainCounts, config.SubclassCounts);
        model.Load(new CheckpointReader(_run.BestCheckpoint));
        return new Evaluator(model, config.Options.Crop, config.Options.EvalBatchSize).Predict(_data.Test, tenCrop: false);
    }

    [Test]
    public void Predict_Json_GivesTheEnginesProbabilitiesForEachFile()
    {
        var files = WriteTestImages(_temp["test-images"]);
        var run = Run(["predict", "--run", _run.Path, "--size", "36", "--device", "cpu", "--json", .. files]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        float[] expected = EnginePredictions();
        using var json = JsonDocument.Parse(run.Output);
        var predictions = json.RootElement.GetProperty("predictions").EnumerateArray().ToArray();
        Assert.That(predictions, Has.Length.EqualTo(files.Length));
        Assert.That(json.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetString()), Is.EqualTo(EmotionClasses.Canonical));
        int c = EmotionClasses.Count;
        for (int i = 0; i < files.Length; i++)
        {
            Assert.That(predictions[i].GetProperty("file").GetString(), Is.EqualTo(files[i]));
            var p = predictions[i].GetProperty("probabilities").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            // PNG is lossless, so the pixels and hence the probabilities are the engine's own (float printed as double).
            Assert.That(p, Is.EqualTo(expected.AsSpan(i * c, c).ToArray().Select(v => (double)v)).Within(1e-7), files[i]);
            Assert.That(p.Sum(), Is.EqualTo(1).Within(1e-5));
            int best = Array.IndexOf(p, p.Max());
            Assert.That(predictions[i].GetProperty("label").GetString(), Is.EqualTo(EmotionClasses.Canonical[best]));
        }
    }

    [Test]
    public void Predict_Table_HasARowPerFileAndTheFaceCropCaveat()
    {
        var files = WriteTestImages(_temp["table-images"]);
        string folder = Path.GetDirectoryName(files[0])!; // one class folder, given as a folder
        var run = Run("predict", "--run", _run.Path, "--size", "36", "--device", "cpu", "--checkpoint", "last", folder, files[^1]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        var inFolder = Directory.GetFiles(folder, "*.png");
        foreach (var file in inFolder.Append(files[^1]))
        {
            var row = run.Lines.Single(l => l.Contains(file + " "));
            var cells = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(EmotionClasses.Canonical, Does.Contain(cells[1]), row);
            Assert.That(cells[2..].Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).Sum(), Is.EqualTo(100).Within(0.5), row);
        }
        Assert.That(run.Output, Does.Contain("tightly cropped, aligned grayscale face"));
        Assert.That(run.Output, Does.Contain("last checkpoint"));

        // On a narrow console a block per file: "file: label (p%)", then the classes' probabilities.
        var narrow = RunWithWidth(80, "predict", "--run", _run.Path, "--size", "36", "--device", "cpu", files[0]);
        Assert.That(narrow.ExitCode, Is.EqualTo(0), narrow.ToString());
        // (A long path makes the console wrap the line; compare with whitespace runs collapsed.)
        string flat = System.Text.RegularExpressions.Regex.Replace(narrow.Output, "\\s+", " ");
        Assert.That(EmotionClasses.Canonical.Count(n => flat.Contains($"{files[0]}: {n} (")), Is.EqualTo(1), narrow.Output);
        Assert.That(EmotionClasses.Canonical.All(n => System.Text.RegularExpressions.Regex.IsMatch(flat, $" {n} [0-9]+\\.[0-9] ")), narrow.Output);
    }

    [Test]
    public void Predict_BadInput_IsOneLineNamingIt()
    {
        var files = WriteTestImages(_temp["bad-images"]);
        string broken = _temp["broken.png"];
        File.WriteAllBytes(broken, [1, 2, 3, 4]);
        AssertBadUsage(Run("predict", "--run", _run.Path, "--size", "36", "--device", "cpu", files[0], broken), broken + ": ");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--size", "36", _temp["nothing.png"]), "does not exist");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--size", "30", files[0]), "--size 30 is smaller than the run's 32x32 crop");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--checkpoint", "first", files[0]), "--checkpoint: 'first' is not one of best, last");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--device", "tpu", "--size", "36", files[0]), "--device 'tpu' is unknown; use auto, cpu, cuda or cuda:N");
        AssertBadUsage(Run("predict", "--run", _temp["bad-images"], files[0]), "config.json: not found");
        AssertBadUsage(Run("predict", "--run", _run.Path), "FILES");

        var unfinished = new RunDirectory(_temp["unfinished"]);
        Directory.CreateDirectory(unfinished.Path);
        File.Copy(_run.ConfigFile, unfinished.ConfigFile);
        AssertBadUsage(Run("predict", "--run", unfinished.Path, files[0]), "--checkpoint best: ");
    }

    /// <summary>Width and height from a PNG's IHDR chunk.</summary>
    private static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), $"{path} is a PNG");
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    /// <summary>Distinct colours in an image: a blank or one-colour picture has a handful.</summary>
    private static int DistinctColours(string path)
    {
        using var image = SixLabors.ImageSharp.Image.Load<Rgba32>(path);
        var colours = new HashSet<Rgba32>();
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
                foreach (var p in rows.GetRowSpan(y)) colours.Add(p);
        });
        return colours.Count;
    }

    [Test]
    public void Pictures_AreWrittenAndNonTrivial()
    {
        var written = RunPictures.Write(_run);
        Assert.That(written.Select(Path.GetFileName), Is.EqualTo(new[] { "confusion.png", "pr.png", "reliability.png", "curves.png", "dicc.png" }), "a DICC run also gets its instruments");
        foreach (var file in written)
        {
            var (width, height) = PngSize(file);
            Assert.That(width, Is.GreaterThanOrEqualTo(700), file);
            Assert.That(height, Is.GreaterThanOrEqualTo(600), file);
            Assert.That(new FileInfo(file).Length, Is.GreaterThan(20_000), $"{file}: text, lines and cells, not an empty canvas");
            Assert.That(DistinctColours(file), Is.GreaterThan(100), $"{file}: anti-aliased text and several colours");
        }
    }

    [Test]
    public void Pictures_DrawTextWithAnInstalledSansSerifFont()
    {
        // Without an installed font SkiaSharp draws no text at all: the pictures would have no labels.
        var installed = SkiaSharp.SKFontManager.Default.GetFontFamilies();
        Assert.That(installed, Does.Contain(RunPictures.FontName), "scripts/install-prerequisites.sh installs fonts-dejavu-core");
    }

    [Test]
    public void Pictures_WithoutAReport_OnlyTheCurves_AndABrokenReportIsNamed()
    {
        var partial = new RunDirectory(_temp["partial"]);
        Directory.CreateDirectory(partial.Path);
        File.Copy(_run.ConfigFile, partial.ConfigFile);
        File.Copy(_run.MetricsFile, partial.MetricsFile);
        Assert.That(RunPictures.Write(partial).Select(Path.GetFileName), Is.EqualTo(new[] { "curves.png", "dicc.png" }));

        File.WriteAllText(partial.ReportFile, "{ \"classNames\": [");
        var e = Assert.Throws<InputException>(() => RunPictures.Write(partial));
        Assert.That(e!.Message, Does.Contain(partial.ReportFile));
    }

    [Test]
    public void Curves_WithoutValidation_AndAConfusionMatrixWithAnEmptyClass_AreDrawn()
    {
        // No validation split: NaN validation metrics, every epoch "best".
        var metrics = Enumerable.Range(0, 5).Select(e => new EpochMetrics(e, 0.01, 2.0 - 0.2 * e, null, double.NaN, double.NaN, double.NaN, true, 1, 100)).ToList();
        string curves = _temp["curves-noval.png"];
        RunPictures.WriteCurves(metrics, curves);
        Assert.That(PngSize(curves).Width, Is.GreaterThan(0));

        // Class 2 has no test samples: its row is grey and unlabelled, the rest is drawn.
        int[] labels = [0, 0, 1, 1, 1, 0];
        int[] predictions = [0, 1, 1, 1, 2, 0];
        var report = EvaluationReport.Compute(["a", "b", "c"], labels, predictions);
        string confusion = _temp["confusion-empty-class.png"];
        RunPictures.WriteConfusion(report, confusion);
        Assert.That(DistinctColours(confusion), Is.GreaterThan(100));
    }

    [Test]
    public void PrecisionRecallSteps_KeepTheAreaThatIsTheAveragePrecision()
    {
        // Scores with ties and with several thresholds at the same recall.
        int[] labels = [0, 1, 0, 0, 1, 1, 0, 1, 0, 0];
        float[] scores = [0.9f, 0.1f, 0.8f, 0.3f, 0.7f, 0.7f, 0.2f, 0.4f, 0.3f, 0.6f];
        var twoClass = scores.SelectMany(s => new[] { 1 - s, s }).ToArray();
        var curve = PrecisionRecallCurve.Compute(labels, twoClass, 2, 1, "b");
        var (recall, precision) = RunPictures.StepPoints(curve);
        Assert.That(recall.Zip(recall.Skip(1)).All(p => p.First > p.Second), "one point per recall, recall falling");
        double area = 0;
        for (int i = 0; i + 1 < recall.Length; i++) area += (recall[i] - recall[i + 1]) * precision[i];
        Assert.That(area, Is.EqualTo(curve.AveragePrecision!.Value).Within(1e-12));
        Assert.That(recall.Length, Is.LessThan(curve.Recall.Length), "points at a repeated recall were dropped");
    }
}
