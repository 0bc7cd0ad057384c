using System.Text.Json;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Data;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Models;
using Dicc.Engine.Tests.Support;
using Dicc.Engine.Training;
using Dicc.FaceDetection;
using NUnit.Framework;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests.Faces;

/// <summary>
/// dicc predict, pack and train with --detect-faces on pictures with faces at known boxes (synthetic faces
/// scaled up into larger pictures), with OpenCV's Haar cascade; a narrow VGG11 trained once for the fixture.
/// </summary>
public class FaceVerbTests
{
    private TempDirectory _temp = null!;
    private RunDirectory _run = null!;
    private HaarFaceDetector _detector = null!;
    private ImageDataset _faces = null!;
    private List<int> _detectable = null!;

    [OneTimeSetUp]
    public void SetUp()
    {
        _detector = HaarFaceDetectorTests.OpenOrSkip();
        _temp = new TempDirectory();
        var data = SyntheticFaces.Generate(new SyntheticFaceOptions { TrainPerClass = 12, ValidationPerClass = 2, TestPerClass = 2, Seed = 6 });
        var options = new TrainingOptions
        {
            Arch = VggDepth.Vgg11, Width = 0.125, Dropout = 0.2f, Epochs = 1, BatchSize = 16, LearningRate = 0.01, Seed = 3, LogEvery = 1, EvalBatchSize = 8,
        };
        _run = new RunDirectory(_temp["run"]);
        using (var backend = new CpuBackend()) new Trainer(backend, data, options, _run).Run();
        // Faces the cascade finds on their own, at 120 pixels in a plain 256x256 picture.
        _faces = FacePictures.Faces(perClass: 2, seed: 11);
        _detectable = Enumerable.Range(0, _faces.Count).Where(i =>
        {
            var p = FacePictures.Background(256, 256, 0, plain: true, grey: 140);
            var box = FacePictures.Paste(p, 256, _faces, i, 60, 60, 120);
            var found = _detector.Detect(new GrayImage(256, 256, p));
            return found.Count == 1 && FacePictures.IoU(found[0], box) >= 0.6;
        }).ToList();
        Assert.That(_detectable, Has.Count.GreaterThanOrEqualTo(4), "enough synthetic faces are found for these tests");
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _temp?.Dispose();
        _detector?.Dispose();
    }

    /// <summary>A 480x320 colour photo with two faces (120 and 100 pixels) at known boxes.</summary>
    private (string Path, FaceBox[] Boxes) GroupPhoto(string name)
    {
        var picture = FacePictures.Background(480, 320, 3, plain: true, grey: 120);
        var a = FacePictures.Paste(picture, 480, _faces, _detectable[0], 40, 60, 120);
        var b = FacePictures.Paste(picture, 480, _faces, _detectable[1], 300, 150, 100);
        string path = _temp[name];
        FacePictures.Save(path, picture, 480, 320, colour: true);
        return (path, [a, b]);
    }

    [Test]
    public void Predict_DetectFaces_GivesEveryFaceItsBoxAndTheModelsProbabilitiesOfItsCrop_AndDrawsThem()
    {
        var (photo, boxes) = GroupPhoto("group.png");
        var run = Run("predict", "--run", _run.Path, "--device", "cpu", "--detect-faces", "--json", "--annotate", _temp["group-annotated.png"], photo);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var json = JsonDocument.Parse(run.Output);
        var predictions = json.RootElement.GetProperty("predictions").EnumerateArray().ToArray();
        Assert.That(predictions, Has.Length.EqualTo(2), run.Output);
        var found = predictions.Select(p =>
        {
            var box = p.GetProperty("box");
            return new FaceBox(box.GetProperty("x").GetInt32(), box.GetProperty("y").GetInt32(), box.GetProperty("width").GetInt32(), box.GetProperty("height").GetInt32());
        }).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(FacePictures.IoU(found[0], boxes[0]), Is.GreaterThanOrEqualTo(0.5), $"the larger face first: {found[0]} vs {boxes[0]}");
            Assert.That(FacePictures.IoU(found[1], boxes[1]), Is.GreaterThanOrEqualTo(0.5), $"{found[1]} vs {boxes[1]}");
            Assert.That(predictions.Select(p => p.GetProperty("face").GetInt32()), Is.EqualTo(new[] { 1, 2 }));
            Assert.That(predictions.Select(p => p.GetProperty("file").GetString()), Is.All.EqualTo(photo));
            Assert.That(json.RootElement.GetProperty("detector").GetString(), Does.Contain("haarcascade_frontalface_default.xml"));
        });

        // Each face is classified as its crop (margin 0.1, resized to 48) is by the engine.
        var config = _run.ReadConfig();
        using var backend = new CpuBackend();
        var model = ModelFactory.Create(backend, config.Options, config.Dataset.ClassNames.Length, config.Dataset.TrainCounts, config.SubclassCounts);
        model.Load(new CheckpointReader(_run.BestCheckpoint));
        var image = FaceCrops.Decode(photo);
        var crops = found.SelectMany(f => FaceCrops.Crop(image, FaceCrops.Region(f, 0.1, image.Width, image.Height), 48)).ToArray();
        var expected = new Evaluator(model, config.Options.Crop, 8).Predict(new ImageDataset(crops, new int[2], config.Dataset.ClassNames), tenCrop: false);
        for (int i = 0; i < 2; i++)
            Assert.That(predictions[i].GetProperty("probabilities").EnumerateArray().Select(v => v.GetDouble()),
                Is.EqualTo(expected.AsSpan(i * 7, 7).ToArray().Select(v => (double)v)).Within(1e-7), $"face {i + 1}");

        // The picture: the photo's size, the boxes drawn in amber, the rest untouched.
        using var drawn = Image.Load<Rgb24>(_temp["group-annotated.png"]);
        Assert.That((drawn.Width, drawn.Height), Is.EqualTo((480, 320)));
        var edge = drawn[found[0].X + found[0].Width / 2, found[0].Y + found[0].Height - 1];
        Assert.That((edge.R, edge.G, edge.B), Is.EqualTo(((byte)255, (byte)200, (byte)0)), "the box's lower edge");
        Assert.That(drawn[470, 10], Is.EqualTo(new Rgb24(120, 120, 120)), "far from the faces");
    }

    [Test]
    public void Predict_DetectFaces_Table_AndPhotosWithoutFaces()
    {
        var (photo, _) = GroupPhoto("table.png");
        string blank = _temp["blank.png"];
        FacePictures.Save(blank, FacePictures.Background(300, 200, 0, plain: true), 300, 200);
        var run = Run("predict", "--run", _run.Path, "--device", "cpu", "--detect-faces", photo, blank);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Lines.Count(l => l.Contains(photo + " #")), Is.EqualTo(2), run.Output);
        Assert.That(run.ErrorOutput, Does.Contain($"warning: {blank}: no face found (300x200 image)."));
        Assert.That(run.Output, Does.Contain("Faces found by the OpenCV Haar cascade").And.Not.Contain("tightly cropped"));

        AssertBadUsage(Run("predict", "--run", _run.Path, "--device", "cpu", "--detect-faces", blank), $"no face found in {blank} (OpenCV Haar cascade");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--annotate", _temp["x.png"], photo), "--annotate goes with --detect-faces.");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--face-margin", "0.2", photo), "--face-margin goes with --detect-faces.");
        AssertBadUsage(Run("predict", "--run", _run.Path, "--detect-faces", "--face-margin", "2", photo), "--face-margin must be in [0, 1], got 2.");
        var cascade = Run("predict", "--run", _run.Path, "--detect-faces", "--face-cascade", _temp["none.xml"], photo);
        AssertBadUsage(cascade, $"--face-cascade: {_temp["none.xml"]} does not exist; install Debian's opencv-data (apt-get install opencv-data)");
    }

    [Test]
    public void Pack_And_Train_DetectFaces_CropWholeHeadImages_NameImagesWithoutAFace_AndEvalReusesTheDetector()
    {
        // Whole-head "lab" images, 256x256, a face of 120 to 150 pixels, and one image without a face.
        int n = 0;
        foreach (int i in _detectable)
            for (int copy = 0; copy < 2; copy++)
            {
                var picture = FacePictures.Background(256, 256, (ulong)n, plain: true, grey: (byte)(110 + 20 * copy));
                FacePictures.Paste(picture, 256, _faces, i, 50 + 10 * copy, 60 - 10 * copy, 120 + 30 * copy);
                FacePictures.Save(_temp[$"heads/{EmotionClasses.Canonical[_faces.Label(i)]}/head_{n++:D3}.png"], picture, 256, 256);
            }
        string blank = _temp[$"heads/{EmotionClasses.Canonical[_faces.Label(_detectable[0])]}/empty_room.png"];
        FacePictures.Save(blank, FacePictures.Background(256, 256, 0, plain: true), 256, 256);
        string classes = string.Join(',', _detectable.Select(i => EmotionClasses.Canonical[_faces.Label(i)]).Distinct());

        AssertBadUsage(Run("pack", "--data", _temp["heads"], "--out", _temp["heads.diccpack"], "--classes", classes, "--detect-faces"),
            $"{blank}: no face found (OpenCV Haar cascade haarcascade_frontalface_default.xml");
        var pack = Run("pack", "--data", _temp["heads"], "--out", _temp["heads.diccpack"], "--classes", classes, "--detect-faces",
            "--face-margin", "0.15", "--on-bad-image", "skip");
        Assert.That(pack.ExitCode, Is.EqualTo(0), pack.ToString());
        Assert.That(pack.ToString(), Does.Contain(blank).And.Contain("no face found"));
        using (var packed = DatasetPack.Open(_temp["heads.diccpack"]))
        {
            Assert.That(packed.Train.Count, Is.EqualTo(n), "every head but the empty room");
            Assert.That((packed.Height, packed.Width), Is.EqualTo((48, 48)));
        }

        var train = Run("train", "--data", _temp["heads"], "--classes", classes, "--detect-faces", "--on-bad-image", "skip", "--test-fraction", "0.25",
            "--arch", "vgg11", "--width", "0.125", "--epochs", "1", "--batch", "4", "--device", "cpu", "--out", _temp["heads-run"], "--quiet");
        Assert.That(train.ExitCode, Is.EqualTo(0), train.ToString());
        var settings = new RunDirectory(_temp["heads-run"]).ReadConfig().Dataset.Settings!;
        Assert.That(settings.FaceCrop, Is.Not.Null);
        Assert.That((settings.FaceCrop!.Detector, settings.FaceCrop.Model, settings.FaceCrop.Margin),
            Is.EqualTo(("haar", HaarFaceDetector.FindCascade(), 0.1)));
        var eval = Run("eval", "--run", _temp["heads-run"], "--device", "cpu");
        Assert.That(eval.ExitCode, Is.EqualTo(0), eval.ToString());
    }
}
