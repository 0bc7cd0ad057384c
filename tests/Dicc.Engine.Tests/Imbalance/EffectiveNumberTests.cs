using Dicc.Engine.Imbalance;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Imbalance;

public class EffectiveNumberTests
{
    // The FER2013 beta = 100 training counts (the paper's Figure 3), in label order.
    internal static readonly int[] Fer2013Beta100 = [387, 43, 1077, 4300, 1796, 139, 2997];

    [Test]
    public void EffectiveNumber_FollowsTheFormula()
    {
        Assert.That(EffectiveNumber.Of(0), Is.EqualTo(0));
        Assert.That(EffectiveNumber.Of(1), Is.EqualTo(1).Within(1e-12));
        // (1 - 0.9999^2) / 0.0001 = (1 - 0.99980001) / 0.0001 = 1.9999.
        Assert.That(EffectiveNumber.Of(2), Is.EqualTo(1.9999).Within(1e-10));
        // 0.9999^4300 = exp(4300 ln 0.9999) = 0.65047...; E = 3495.2...
        Assert.That(EffectiveNumber.Of(4300), Is.EqualTo((1 - Math.Exp(4300 * Math.Log(0.9999))) / 1e-4).Within(1e-8).Percent);
        Assert.That(EffectiveNumber.Of(4300), Is.InRange(3495.0, 3496.0));
        // The limits: b = 0 counts every class as one sample, b = 1 is the plain count.
        Assert.That(EffectiveNumber.Of(4300, 0), Is.EqualTo(1));
        Assert.That(EffectiveNumber.Of(4300, 1), Is.EqualTo(4300));
        Assert.Throws<ArgumentOutOfRangeException>(() => EffectiveNumber.Of(5, 1.5));
    }

    [Test]
    public void ReweightWeights_AreInverseEffectiveNumbers_SummingToTheClassCount()
    {
        var weights = EffectiveNumber.ClassWeights(Fer2013Beta100);
        double[] inverse = Fer2013Beta100.Select(n => 1 / ((1 - Math.Pow(0.9999, n)) / (1 - 0.9999))).ToArray();
        double scale = 7 / inverse.Sum();
        Assert.That(weights, Is.EqualTo(inverse.Select(w => w * scale).ToArray()).Within(1e-12).Percent);
        Assert.That(weights.Sum(), Is.EqualTo(7).Within(1e-12));
        // The tail class (disgust, 43 samples) weighs the most, the head (happy, 4300) the least.
        Assert.That(weights.Max(), Is.EqualTo(weights[1]));
        Assert.That(weights.Min(), Is.EqualTo(weights[3]));
        Assert.That(EffectiveNumber.ClassWeights([50, 50, 50]), Is.EqualTo(new[] { 1.0, 1.0, 1.0 }).Within(1e-12));
    }

    [Test]
    public void ReweightWeights_NeedEveryClassPresent()
    {
        var e = Assert.Throws<ArgumentException>(() => EffectiveNumber.ClassWeights([5, 0, 3]));
        Assert.That(e!.Message, Does.Contain("Class 1 has 0 training samples"));
    }

    [Test]
    public void Rules_ParseAndPickTheirSamplerAndWeights()
    {
        Assert.That(ImbalanceRules.Parse(" Resample "), Is.EqualTo(ImbalanceRule.Resample));
        var e = Assert.Throws<FormatException>(() => ImbalanceRules.Parse("focal"));
        Assert.That(e!.Message, Does.Contain("unknown rule 'focal'; valid: none, resample, reweight"));
        int[] labels = [0, 0, 0, 1];
        Assert.That(ImbalanceRule.Resample.CreateSampler(labels, 2, 1), Is.InstanceOf<ClassBalancedSampler>());
        Assert.That(ImbalanceRule.Reweight.CreateSampler(labels, 2, 1), Is.InstanceOf<ShuffleSampler>());
        Assert.That(ImbalanceRule.None.LossWeights([3, 1]), Is.Null);
        Assert.That(ImbalanceRule.Resample.LossWeights([3, 1]), Is.Null);
        Assert.That(ImbalanceRule.Reweight.LossWeights([3, 1]), Is.EqualTo(EffectiveNumber.ClassWeights([3, 1])));
    }
}
