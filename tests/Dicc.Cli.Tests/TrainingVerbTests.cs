using System.Text.Json;
using Dicc.Cli.Infrastructure;
using Dicc.Cli.Training;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Data.Synthetic;
using Dicc.Engine.Training;
using NUnit.Framework;
using static Dicc.Cli.Tests.CliTestSupport;

namespace Dicc.Cli.Tests;

/// <summary>dicc train, eval, bench and demo, in-process on tiny synthetic data.</summary>
public class TrainingVerbTests
{
    private const string TinyData = "synthetic:per-class=30,size=36,val=4,test=6,seed=2";
    private static readonly string[] TinyModel = ["--arch", "vgg11", "--width", "0.125", "--crop", "32", "--lr", "0.01", "--device", "cpu"];
    private string _root = null!;

    [SetUp] public void SetUp() => _root = Directory.CreateTempSubdirectory("dicc-cli-train-").FullName;
    [TearDown] public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Out(string name) => Path.Combine(_root, name);

    [Test]
    public void TrainWritesTheRunDirectoryAndEvalReproducesItsTestReport()
    {
        var train = Run(["train", "--data", TinyData, "--method", "dicc", "--rule", "reweight", "--subclasses", "sqrt",
            "--epochs", "2", "--out", Out("run"), .. TinyModel]);
        Assert.That(train.ExitCode, Is.EqualTo(ExitCodes.Success), train.ToString());
        Assert.That(train.Output, Does.Contain("run   2/2").And.Contain("test top-1 accuracy").And.Contain("per class (test)").And.Contain("test ECE (15 bins"));
        foreach (var file in new[] { "config.json", "metrics.jsonl", "report.json", "result.json", "checkpoints/best.safetensors",
                     "checkpoints/last.safetensors", "confusion.png", "pr.png", "curves.png", "reliability.png" })
            Assert.That(File.Exists(Path.Combine(Out("run"), file)), file);
        var config = new RunDirectory(Out("run")).ReadConfig();
        Assert.That(config.Options.Method, Is.EqualTo(TrainingMethod.Dicc));
        Assert.That(config.Dataset.Name, Is.EqualTo("synthetic"));
        Assert.That(config.Dataset.ImageSize, Is.EqualTo(36));
        Assert.That(config.SubclassCounts, Is.Not.Null);

        var eval = Run("eval", "--run", Out("run"), "--device", "cpu", "--json");
        Assert.That(eval.ExitCode, Is.EqualTo(ExitCodes.Success), eval.ToString());
        var again = Engine.Evaluation.EvaluationReport.FromJson(eval.Output);
        var original = Engine.Evaluation.EvaluationReport.Load(Path.Combine(Out("run"), "report.json"));
        Assert.That(again.ConfusionMatrix, Is.EqualTo(original.ConfusionMatrix), "eval of the best checkpoint = the training report");
        Assert.That(File.Exists(Path.Combine(Out("run"), "eval-test.json")));
    }

    [Test]
    public void VariantFlagsReachTheRunAndItsPictures()
    {
        var train = Run(["train", "--data", TinyData, "--method", "dicc", "--subclasses", "sqrt", "--partition", "rank", "--mapping", "linear",
            "--mapping-input", "logits", "--warmup-epochs", "1", "--joint-weight", "0.5", "--select-on", "macro-f1", "--epochs", "3",
            "--out", Out("variant"), .. TinyModel]);
        Assert.That(train.ExitCode, Is.EqualTo(ExitCodes.Success), train.ToString());
        Assert.That(train.Output, Does.Contain("selected epoch (validation macro-f1)"));
        var run = new RunDirectory(Out("variant"));
        var o = run.ReadConfig().Options;
        Assert.That((o.Mapping, o.MappingInput, o.WarmupEpochs, o.JointWeight, o.SelectOn),
            Is.EqualTo((Engine.Models.MappingKind.Linear, Engine.Models.MappingInput.Logits, 1, 0.5, ModelSelection.MacroF1)));
        var metrics = run.ReadMetrics();
        Assert.That(metrics[0].Dicc, Is.Null, "warm-up epoch");
        Assert.That(metrics[0].Best, Is.False, "warm-up epochs are not selected");
        Assert.That(metrics[2].Dicc!.Churn, Is.Not.Null);
        Assert.That(File.Exists(Path.Combine(Out("variant"), "dicc.png")), "the instruments picture");
        Assert.That(new FileInfo(Path.Combine(Out("variant"), "dicc.png")).Length, Is.GreaterThan(20_000));
    }

    [TestCase("focal", new[] { "--focal-gamma", "1.5", "--cb-weights" })]
    [TestCase("ldam", new[] { "--ldam-scale", "10", "--ldam-max-margin", "0.4", "--drw-epoch", "2" })]
    [TestCase("balanced-softmax", new string[0])]
    [TestCase("logit-adjusted", new[] { "--tau", "0.5" })]
    [TestCase("ce", new[] { "--posthoc-tau", "1" })]
    public void LongTailLossesTrainFromTheCommandLine(string loss, string[] flags)
    {
        var train = Run(["train", "--data", TinyData, "--loss", loss, .. flags, "--epochs", "2", "--out", Out(loss), .. TinyModel]);
        Assert.That(train.ExitCode, Is.EqualTo(ExitCodes.Success), train.ToString());
        var run = new RunDirectory(Out(loss));
        var o = run.ReadConfig().Options;
        Assert.That(o.Loss.Name(), Is.EqualTo(loss));
        Assert.That(run.ReadMetrics().Select(m => double.IsFinite(m.TrainLoss)), Is.All.True);
        Assert.That(train.ErrorOutput.Contains("--loss ldam with the linear head", StringComparison.Ordinal), Is.EqualTo(loss == "ldam"),
            "LDAM on the linear head is warned about");
        switch (loss)
        {
            case "focal": Assert.That((o.FocalGamma, o.CbWeights), Is.EqualTo((1.5, true))); break;
            case "ldam": Assert.That((o.LdamScale, o.LdamMaxMargin, o.DrwEpoch), Is.EqualTo((10.0, 0.4, 2))); break;
            case "logit-adjusted": Assert.That(o.Tau, Is.EqualTo(0.5)); break;
            case "ce": Assert.That(o.PosthocTau, Is.EqualTo(1.0)); break;
        }
        Assert.That(File.ReadAllText(run.ConfigFile), Does.Contain("\"loss\""), "config.json records the loss");
    }

    [Test]
    public void LdamTrainsWithTheCosineHead_AndItsModelExportsAndPredicts()
    {
        var train = Run(["train", "--data", TinyData, "--loss", "ldam", "--head", "cosine", "--drw-epoch", "2", "--epochs", "2",
            "--out", Out("ldam-cosine"), .. TinyModel]);
        Assert.That(train.ExitCode, Is.EqualTo(ExitCodes.Success), train.ToString());
        var run = new RunDirectory(Out("ldam-cosine"));
        Assert.That(run.ReadConfig().Options.Head, Is.EqualTo(Engine.Models.ClassifierHead.Cosine));
        // Cosine logits lie in [-1, 1]: with s = 30 the first loss is at most s * (2 + max margin) + log C, not the
        // hundreds a linear head's raw logits give.
        Assert.That(run.ReadMetrics()[0].TrainLoss, Is.LessThan(30 * 2.5 + Math.Log(3)));
        Assert.That(RunSettings.Of(run.ReadConfig().Options).Single(x => x.Name == "head").Value, Is.EqualTo("cosine"));
        Assert.That(File.ReadAllText(run.ResultFile), Does.Contain("\"ece\""), "result.json carries the calibration error for dicc compare");
        Assert.That(train.ErrorOutput, Does.Not.Contain("with the linear head"));
        var eval = Run("eval", "--run", Out("ldam-cosine"), "--device", "cpu", "--json");
        Assert.That(eval.ExitCode, Is.EqualTo(ExitCodes.Success), eval.ToString());
    }

    [Test]
    public void Crt_RetrainsAFreshHeadOnTheFrozenBackboneOfABaselineRun()
    {
        var baseline = Run(["train", "--data", TinyData, "--epochs", "2", "--out", Out("base"), .. TinyModel]);
        Assert.That(baseline.ExitCode, Is.EqualTo(ExitCodes.Success), baseline.ToString());
        var crt = Run(["train", "--data", TinyData, "--init-from", Out("base"), "--freeze", "backbone", "--reset-head", "--rule", "resample",
            "--epochs", "2", "--seed", "5", "--out", Out("crt"), .. TinyModel]);
        Assert.That(crt.ExitCode, Is.EqualTo(ExitCodes.Success), crt.ToString());
        Assert.That(crt.ErrorOutput, Does.Contain("Initialised from").And.Contain("the backbone is frozen"), "a note on standard error");

        var source = new Engine.Checkpoints.CheckpointReader(new RunDirectory(Out("base")).BestCheckpoint);
        foreach (var which in new[] { "best", "last" })
        {
            var trained = new Engine.Checkpoints.CheckpointReader(Path.Combine(Out("crt"), "checkpoints", which + ".safetensors"));
            // Every backbone tensor (layer 0: weights and BatchNorm statistics) is the source's, bit for bit; the head trained.
            var backbone = source.TensorNames.Where(n => n.StartsWith("0.", StringComparison.Ordinal) && !n.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToArray();
            Assert.That(backbone, Has.Length.GreaterThan(10));
            foreach (var name in backbone)
                Assert.That(Floats(trained, name), Is.EqualTo(Floats(source, name)), $"{which}: {name}");
            Assert.That(Floats(trained, "1.1.weight"), Is.Not.EqualTo(Floats(source, "1.1.weight")), $"{which}: the head");
        }
        var o = new RunDirectory(Out("crt")).ReadConfig().Options;
        Assert.That((o.InitFrom, o.Freeze, o.ResetHead), Is.EqualTo((Path.GetFullPath(Out("base")), FreezeKind.Backbone, true)));
        Assert.That(RunSettings.Of(o).Select(x => x.ToString()), Is.SupersetOf(new[] { "init-from=run", "freeze=backbone", "reset-head=yes" }));
    }

    private static float[] Floats(Engine.Checkpoints.CheckpointReader r, string name) => r.ReadFloats(name);

    [Test]
    public void InitFromRefusesARunOfAnotherWidth()
    {
        var baseline = Run(["train", "--data", TinyData, "--epochs", "1", "--out", Out("base"), .. TinyModel]);
        Assert.That(baseline.ExitCode, Is.EqualTo(ExitCodes.Success), baseline.ToString());
        var wider = Run(["train", "--data", TinyData, "--init-from", Out("base"), "--epochs", "1", "--out", Out("wide"),
            "--arch", "vgg11", "--width", "0.25", "--crop", "32", "--device", "cpu"]);
        AssertBadUsage(wider, "--init-from");
        Assert.That(wider.ErrorOutput, Does.Contain("at width 0.125, this run vgg11 at width 0.25"));
        Assert.That(Directory.Exists(Out("wide")) && File.Exists(Path.Combine(Out("wide"), "config.json")), Is.False, "nothing is written");
    }

    [Test]
    public void SeedsWriteOneRunEachAndAnAggregateTable()
    {
        var run = Run(["train", "--data", TinyData, "--epochs", "1", "--seeds", "2", "--seed", "7", "--out", Out("seeds"), .. TinyModel]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        Assert.That(Directory.Exists(Out("seeds/seed-7")) && Directory.Exists(Out("seeds/seed-8")));
        Assert.That(run.Output, Does.Contain("best of 2 seeds"));
    }

    [Test]
    public void JsonModePrintsOneObjectPerEpochAndAResult()
    {
        var run = Run(["train", "--data", TinyData, "--epochs", "2", "--json", "--out", Out("json"), .. TinyModel]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        var events = run.Lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("event").GetString()).ToArray();
        Assert.That(events, Is.EqualTo(new[] { "epoch", "epoch", "result" }));
    }

    [Test]
    public void ResumeContinuesAnInterruptedRunToTheEnd()
    {
        // Interrupt a run after its first epoch, as Ctrl-C would, then continue it from the command line.
        using (var data = DataArguments.Load(TinyData, null, null, new Engine.Data.DatasetLoadOptions(), out _))
        using (var backend = new CpuBackend())
        using (var cancel = new CancellationTokenSource())
        {
            var train = Run(["train", "--data", TinyData, "--epochs", "1", "--out", Out("probe"), .. TinyModel]);
            var config = new RunDirectory(Out("probe")).ReadConfig();
            var options = config.Options with { Epochs = 3 };
            var description = config.Dataset; // what the command records, fingerprint included
            var trainer = new Trainer(backend, data, options, new RunDirectory(Out("resume")), description) { Observer = new StopAfterFirstEpoch(cancel) };
            Assert.That(trainer.Run(false, cancel.Token).Status, Is.EqualTo(RunStatus.Interrupted));
        }
        var resumed = Run("train", "--resume", Out("resume"), "--device", "cpu");
        Assert.That(resumed.ExitCode, Is.EqualTo(ExitCodes.Success), resumed.ToString());
        Assert.That(resumed.ErrorOutput, Does.Contain("Resuming"));
        Assert.That(resumed.Output, Does.Contain("resume   3/3"));
        Assert.That(new RunDirectory(Out("resume")).ReadMetrics().Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2, 3 }), "epochs count from 1");
    }

    private sealed class StopAfterFirstEpoch(CancellationTokenSource source) : ITrainingObserver
    {
        public void EpochCompleted(EpochMetrics metrics) => source.Cancel();
    }

    [Test]
    public void BenchReportsStepTimesAndTheClusteringShare()
    {
        var run = Run("bench", "--device", "cpu", "--arch", "vgg11", "--width", "0.125", "--batch", "8", "--steps", "1", "--json");
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        var json = JsonDocument.Parse(run.Lines.Single(l => l.StartsWith('{'))).RootElement;
        Assert.That(json.GetProperty("baseline_ms").GetDouble(), Is.GreaterThan(0));
        Assert.That(json.GetProperty("dicc_ms").GetDouble(), Is.GreaterThan(0));
        Assert.That(json.GetProperty("clustering_share").GetDouble(), Is.InRange(0, 1));
    }

    [Test]
    public void DemoInAReducedSizeComparesBaselineAndDicc()
    {
        var run = Run("demo", "--device", "cpu", "--epochs", "1", "--per-class", "20", "--out", Out("demo"));
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success), run.ToString());
        Assert.That(run.Output, Does.Contain("baseline vs DICC").And.Contain("few-shot accuracy"));
        Assert.That(run.Lines.Count(l => l.Contains("│ baseline") || l.Contains("│ DICC")), Is.EqualTo(2), run.Output);
        Assert.That(File.Exists(Path.Combine(Out("demo"), "baseline", "report.json")));
        Assert.That(File.Exists(Path.Combine(Out("demo"), "dicc", "confusion.png")));
    }

    [TestCase(new[] { "train" }, "--data is required")]
    [TestCase(new[] { "train", "--data", TinyData, "--rule", "oversample" }, "--rule")]
    [TestCase(new[] { "train", "--data", TinyData, "--method", "dic" }, "--method")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--subclasses", "1,2,3" }, "has 3 entries; expected 7")]
    [TestCase(new[] { "train", "--data", TinyData }, "smaller than the 44x44 crop; use a crop of 32 or less")]
    [TestCase(new[] { "train", "--data", TinyData, "--arch", "resnet50" }, "--arch")]
    [TestCase(new[] { "train", "--data", TinyData, "--device", "tpu" }, "--device")]
    [TestCase(new[] { "train", "--data", TinyData, "--schedule", "linear" }, "--schedule")]
    [TestCase(new[] { "train", "--data", TinyData, "--lr", "-1" }, "--lr")]
    [TestCase(new[] { "train", "--data", "/no/such/folder" }, "/no/such/folder")]
    [TestCase(new[] { "train", "--data", TinyData, "--frobnicate" }, "frobnicate")]
    [TestCase(new[] { "train", "--resume", "/no/such/run" }, "/no/such/run")]
    [TestCase(new[] { "eval", "--run", "/no/such/run" }, "/no/such/run")]
    [TestCase(new[] { "bench", "--arch", "vgg7" }, "--arch")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--select-on", "loss" }, "--select-on 'loss' is not one of accuracy, balanced-accuracy, macro-f1, last")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--epochs", "2", "--warmup-epochs", "2" }, "--warmup-epochs (2) must be less than epochs (2)")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--mapping", "sum", "--joint-weight", "1" }, "--joint-weight needs a trained mapping")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--mapping", "sum", "--mapping-input", "logits" }, "--mapping-input logits needs a trained mapping")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--mapping", "tree" }, "--mapping: 'tree' is not one of mlp, linear, sum")]
    [TestCase(new[] { "demo", "--rule", "nope" }, "--rule")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--loss", "ldam-drw" }, "--loss: 'ldam-drw' is not a loss")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--loss", "focal" }, "--loss focal trains the baseline")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--loss", "focal", "--focal-gamma", "-1" }, "--focal-gamma must be non-negative")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--epochs", "5", "--drw-epoch", "6" }, "--drw-epoch must be in 0..epochs")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--rule", "reweight", "--cb-weights" }, "--cb-weights repeats --rule reweight")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--posthoc-tau", "1" }, "--posthoc-tau adjusts the baseline's logits")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--freeze", "backbone" }, "--freeze backbone needs trained weights to keep: give --init-from RUN")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--reset-head" }, "--reset-head keeps a fresh head")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--head", "arc" }, "--head: 'arc' is not one of linear, cosine")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--freeze", "all" }, "--freeze: 'all' is not one of none, backbone")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--method", "dicc", "--head", "cosine" }, "--head cosine is the baseline's classifier")]
    [TestCase(new[] { "train", "--data", TinyData, "--crop", "32", "--init-from", "/no/such/run", "--epochs", "1" }, "--init-from /no/such/run: path /no/such/run: no such run directory")]
    public void BadUsageIsOneLineAndExitCode2(string[] args, string expected) => AssertBadUsage(Run(args), expected);
}
