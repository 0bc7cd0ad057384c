using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Models;

/// <summary>Post-hoc logit adjustment (docs/method.md, "Long-tail losses"): predictions from softmax(z - tau log pi).</summary>
public class PosthocAdjustmentTests
{
    [Test]
    public void AdjustedProbabilities_AreThePlainOnesTimesThePriorToTheMinusTau()
    {
        using var backend = new CpuBackend();
        var vgg = new VggOptions { Depth = VggDepth.Vgg11, Width = 0.125, InputSize = 32 };
        int[] counts = [400, 40, 10];
        const double tau = 1.5;
        var offsets = ClassificationLoss.LogPriors(counts).Select(v => (float)(-tau * v)).ToArray();
        var plain = new BaselineModel(backend, vgg, 3, new ModelTrainingOptions { Seed = 3 });
        var adjusted = new BaselineModel(backend, vgg, 3, new ModelTrainingOptions { Seed = 3, PosthocOffsets = offsets });
        var images = backend.Create(new Shape(4, 1, 32, 32));
        backend.CopyIn<float>(images, Enumerable.Range(0, 4 * 32 * 32).Select(i => (i * 7 % 23) / 23f).ToArray());
        var p = backend.ToArray(plain.PredictProbabilities(images));
        var q = backend.ToArray(adjusted.PredictProbabilities(images));
        // softmax(z - tau log pi)_c = p_c pi_c^(-tau) / sum_k p_k pi_k^(-tau), pi = counts / 450, in double.
        var factor = counts.Select(n => Math.Pow(n / 450.0, -tau)).ToArray();
        for (int i = 0; i < 4; i++)
        {
            double norm = Enumerable.Range(0, 3).Sum(k => p[i * 3 + k] * factor[k]);
            for (int c = 0; c < 3; c++)
                Assert.That(q[i * 3 + c], Is.EqualTo(p[i * 3 + c] * factor[c] / norm).Within(1e-6), $"image {i}, class {c}");
        }
        Assert.That(adjusted.PosthocOffsets, Is.EqualTo(offsets));
        Assert.That(plain.PosthocOffsets, Is.Null);
    }

    [Test]
    public void TheFactory_TakesTheOffsetsFromTheTrainingCounts_AndDiccRefusesThem()
    {
        using var backend = new CpuBackend();
        var options = new TrainingOptions { Arch = VggDepth.Vgg11, Width = 0.125, Crop = 32, PosthocTau = 2 };
        var model = (BaselineModel)ModelFactory.Create(backend, options, 2, [30, 10]);
        Assert.That(model.PosthocOffsets!.Select(v => (double)v), Is.EqualTo(new[] { -2 * Math.Log(0.75), -2 * Math.Log(0.25) }).Within(1e-6));
        Assert.That(() => (options with { Method = TrainingMethod.Dicc }).Validate(),
            Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("posthocTau"));
        Assert.That(RunSettings.Of(options).Single(s => s.Name == "posthoc-tau").Value, Is.EqualTo("2"));
    }
}
