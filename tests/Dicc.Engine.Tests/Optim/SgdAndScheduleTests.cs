using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Layers;
using Dicc.Engine.Optim;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Optim;

public class SgdAndScheduleTests
{
    [Test]
    public void SgdMatchesHandComputedPyTorchSteps()
    {
        using var backend = new CpuBackend();
        var p = new Parameter("w", new Shape(2), Initializer.Zeros);
        var set = new ParameterSet(backend, [p]);
        backend.CopyIn<float>(p.Value, [1.0f, -2.0f]);
        var sgd = new Sgd(set, new SgdOptions { Momentum = 0.9f, WeightDecay = 0.1f });

        // Step 1: g = [0.5, 0.5] + 0.1 * [1, -2] = [0.6, 0.3]; v = g; w = [1, -2] - 0.1 * v = [0.94, -2.03]
        backend.CopyIn<float>(p.Grad, [0.5f, 0.5f]);
        sgd.Step(0.1f);
        Assert.That(backend.ToArray(p.Value), Is.EqualTo(new[] { 0.94f, -2.03f }).Within(1e-6f));
        // Step 2: g = [0.5, 0.5] + 0.1 * [0.94, -2.03] = [0.594, 0.297];
        // v = 0.9 * [0.6, 0.3] + g = [1.134, 0.567]; w = w - 0.1 * v = [0.8266, -2.0867]
        sgd.Step(0.1f);
        Assert.That(backend.ToArray(p.Value), Is.EqualTo(new[] { 0.8266f, -2.0867f }).Within(1e-6f));
        Assert.That(backend.ToArray(sgd.MomentumBuffer).Take(2), Is.EqualTo(new[] { 1.134f, 0.567f }).Within(1e-6f));
        Assert.That(sgd.Steps, Is.EqualTo(2));
    }

    [Test]
    public void NesterovMatchesHandComputedStep()
    {
        using var backend = new CpuBackend();
        var p = new Parameter("w", new Shape(1), Initializer.Zeros);
        var set = new ParameterSet(backend, [p]);
        backend.CopyIn<float>(p.Value, [1.0f]);
        var sgd = new Sgd(set, new SgdOptions { Momentum = 0.5f, Nesterov = true });
        backend.CopyIn<float>(p.Grad, [2.0f]);
        sgd.Step(0.1f); // v = 2; w = 1 - 0.1 * (2 + 0.5 * 2) = 0.7
        sgd.Step(0.1f); // v = 0.5 * 2 + 2 = 3; w = 0.7 - 0.1 * (2 + 0.5 * 3) = 0.35
        Assert.That(backend.ToArray(p.Value)[0], Is.EqualTo(0.35f).Within(1e-6f));
    }

    [Test]
    public void ConstantSchedule() =>
        Assert.That(LearningRateSchedule.Parse("constant", 1e-4).At(150), Is.EqualTo(1e-4));

    [Test]
    public void StepScheduleMultipliesByGammaEveryInterval()
    {
        var s = LearningRateSchedule.Parse("step:30:0.1", 0.1);
        Assert.That(s.At(0), Is.EqualTo(0.1).Within(1e-15));
        Assert.That(s.At(29), Is.EqualTo(0.1).Within(1e-15));
        Assert.That(s.At(30), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(s.At(65), Is.EqualTo(0.001).Within(1e-15));
    }

    [Test]
    public void FerScheduleDecaysEveryFiveEpochsAfterEighty()
    {
        var s = LearningRateSchedule.Parse("decay-after:80:5:0.9", 0.01);
        Assert.That(s.At(80), Is.EqualTo(0.01).Within(1e-15));   // not yet: epoch > 80 only
        Assert.That(s.At(81), Is.EqualTo(0.01).Within(1e-15));   // (81 - 80) / 5 = 0
        Assert.That(s.At(85), Is.EqualTo(0.009).Within(1e-15));  // one decay
        Assert.That(s.At(249), Is.EqualTo(0.01 * Math.Pow(0.9, 33)).Within(1e-15)); // (249 - 80) / 5 = 33
        Assert.That(s.Describe(), Is.EqualTo("decay-after:80:5:0.9"));
    }

    [Test]
    public void CosineScheduleFollowsHalfACosine()
    {
        var s = LearningRateSchedule.Parse("cosine:100:0.001", 0.1);
        Assert.That(s.At(0), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(s.At(50), Is.EqualTo(0.0505).Within(1e-12));
        Assert.That(s.At(100), Is.EqualTo(0.001).Within(1e-12));
        Assert.That(s.At(25), Is.EqualTo(0.001 + 0.099 * (1 + Math.Cos(Math.PI / 4)) / 2).Within(1e-12));
    }

    [TestCase("linear")]
    [TestCase("step:0:0.1")]
    [TestCase("step:ten:0.1")]
    [TestCase("decay-after:80:5")]
    public void BadScheduleTextIsAClearError(string text)
    {
        var ex = Assert.Catch(() => LearningRateSchedule.Parse(text, 0.1));
        Assert.That(ex, Is.InstanceOf<FormatException>().Or.InstanceOf<ArgumentException>());
        Assert.That(ex!.Message, Is.Not.Empty);
    }
}
