using Dicc.Engine.Backends;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Training;

/// <summary>
/// The long-tail losses (docs/method.md, "Long-tail losses") against values computed here in double, independently of
/// the engine: the loss from its formula, the gradient by central differences of that formula, and a few by hand.
/// </summary>
public class ClassificationLossTests
{
    private CpuBackend _b = null!;

    [OneTimeSetUp]
    public void Open() => _b = new CpuBackend();

    [OneTimeTearDown]
    public void Close() => _b?.Dispose();

    // Three rows of three classes; row 2 is confident (p_y near 1), row 1 is wrong.
    private static readonly double[] Logits = [0.5, -1.0, 2.0, 1.5, 0.2, -0.3, -2.0, 0.1, 4.0];
    private static readonly int[] Labels = [2, 1, 2];
    private static readonly int[] Counts = [100, 10, 1];

    /// <summary>The loss by its definition: z' = s (z + b - [j = y] m_y), l = -(1 - p_y)^gamma log p_y, weighted mean.</summary>
    private static double Reference(double[] z, int[] y, double[]? w, double[]? b, double[]? m, double s, double gamma)
    {
        int k = z.Length / y.Length;
        double total = 0, weights = 0;
        for (int i = 0; i < y.Length; i++)
        {
            var a = new double[k];
            for (int j = 0; j < k; j++) a[j] = s * (z[i * k + j] + (b?[j] ?? 0) - (j == y[i] ? m?[y[i]] ?? 0 : 0));
            double denominator = a.Sum(Math.Exp), p = Math.Exp(a[y[i]]) / denominator;
            double wi = w?[y[i]] ?? 1;
            total += wi * -Math.Pow(1 - p, gamma) * Math.Log(p);
            weights += wi;
        }
        return total / weights;
    }

    /// <summary>dL/dz by central differences of <see cref="Reference"/> in double (error ~1e-9).</summary>
    private static double[] ReferenceGradient(double[] z, int[] y, double[]? w, double[]? b, double[]? m, double s, double gamma)
    {
        const double h = 1e-5;
        var g = new double[z.Length];
        for (int e = 0; e < z.Length; e++)
        {
            var plus = (double[])z.Clone();
            var minus = (double[])z.Clone();
            plus[e] += h;
            minus[e] -= h;
            g[e] = (Reference(plus, y, w, b, m, s, gamma) - Reference(minus, y, w, b, m, s, gamma)) / (2 * h);
        }
        return g;
    }

    private Tensor Floats(double[] values, params int[] shape)
    {
        var t = _b.Create(new Shape(shape));
        _b.CopyIn<float>(t, values.Select(v => (float)v).ToArray());
        return t;
    }

    private Tensor Ints(int[] values)
    {
        var t = _b.Create(new Shape(values.Length), DType.Int32);
        _b.CopyIn<int>(t, values);
        return t;
    }

    /// <summary>Runs <paramref name="loss"/> on the test logits; returns its value and gradient.</summary>
    private (double Loss, double[] Gradient) Run(ClassificationLoss loss, double[]? logits = null, int[]? labels = null)
    {
        logits ??= Logits;
        labels ??= Labels;
        var z = Floats(logits, labels.Length, logits.Length / labels.Length);
        var dz = _b.Create(z.Shape);
        loss.Compute(z, Ints(labels), dz);
        return (loss.Read(), _b.ToArray(dz).Select(v => (double)v).ToArray());
    }

    private static void AssertMatches((double Loss, double[] Gradient) actual, double expectedLoss, double[] expectedGradient)
    {
        Assert.That(actual.Loss, Is.EqualTo(expectedLoss).Within(1e-6 + 1e-5 * Math.Abs(expectedLoss)), "loss");
        for (int e = 0; e < expectedGradient.Length; e++)
            Assert.That(actual.Gradient[e], Is.EqualTo(expectedGradient[e]).Within(2e-6 + 1e-4 * Math.Abs(expectedGradient[e])), $"dL/dz[{e}]");
    }

    private ClassificationLoss Loss(LossOptions options, float[]? ruleWeights = null) =>
        new(_b, 3, options, Counts, ruleWeights ?? default);

    /// <summary>Cui et al.'s weights by hand: w_c proportional to (1 - b) / (1 - b^n_c), summing to C.</summary>
    private static double[] ClassBalanced(int[] counts)
    {
        const double beta = 0.9999;
        var w = counts.Select(n => (1 - beta) / (1 - Math.Pow(beta, n))).ToArray();
        double sum = w.Sum();
        return w.Select(v => v * counts.Length / sum).ToArray();
    }

    [Test]
    public void Focal_OneRowByHand()
    {
        // z = [0, ln 3], label 1: p = 3/4, q = 1/4. l = -q^2 ln p; g = q^2 - 2 q p ln p; dl/dz = g (p - onehot).
        var loss = new ClassificationLoss(_b, 2, new LossOptions { Kind = LossKind.Focal, FocalGamma = 2 });
        var result = Run(loss, [0, Math.Log(3)], [1]);
        double g = 1.0 / 16 - 2 * 0.25 * 0.75 * Math.Log(0.75);
        AssertMatches(result, -Math.Log(0.75) / 16, [0.25 * g, -0.25 * g]);
        Assert.That(result.Loss, Is.EqualTo(0.0179801).Within(1e-6), "0.0625 * 0.2876821");
    }

    [TestCase(0.0)]
    [TestCase(0.5)]
    [TestCase(2.0)]
    [TestCase(5.0)]
    public void Focal_MatchesItsDefinitionAndItsFiniteDifferences(double gamma)
    {
        var result = Run(Loss(new LossOptions { Kind = LossKind.Focal, FocalGamma = gamma }));
        AssertMatches(result, Reference(Logits, Labels, null, null, null, 1, gamma), ReferenceGradient(Logits, Labels, null, null, null, 1, gamma));
    }

    [Test]
    public void FocalWithClassBalancedWeights_IsTheWeightedMean()
    {
        var w = ClassBalanced(Counts);
        var result = Run(Loss(new LossOptions { Kind = LossKind.Focal, FocalGamma = 2, ClassBalancedWeights = true }));
        AssertMatches(result, Reference(Logits, Labels, w, null, null, 1, 2), ReferenceGradient(Logits, Labels, w, null, null, 1, 2));
    }

    [Test]
    public void FocalWithGammaZero_IsCrossEntropy()
    {
        var focal = Run(Loss(new LossOptions { Kind = LossKind.Focal, FocalGamma = 0 }));
        var ce = Run(Loss(new LossOptions()));
        Assert.That(focal.Loss, Is.EqualTo(ce.Loss).Within(1e-6));
        Assert.That(focal.Gradient, Is.EqualTo(ce.Gradient).Within(1e-7));
    }

    [Test]
    public void Focal_ACertainRowHasNoGradient()
    {
        // p_y rounds to 1: (1 - p)^gamma and its derivative vanish instead of giving 0 * inf.
        var result = Run(new ClassificationLoss(_b, 2, new LossOptions { Kind = LossKind.Focal, FocalGamma = 0.5 }), [0, 200], [1]);
        Assert.That(result.Loss, Is.Zero);
        Assert.That(result.Gradient, Is.EqualTo(new[] { 0.0, 0.0 }));
    }

    [Test]
    public void LdamMargins_AreProportionalToTheInverseFourthRootOfTheCounts()
    {
        // n^(-1/4) = [100^(-1/4), 10^(-1/4), 1] = [0.316228, 0.562341, 1]; the rarest class gets 0.5.
        Assert.That(ClassificationLoss.LdamMargins(Counts, 0.5), Is.EqualTo(new[] { 0.158114, 0.281171, 0.5 }).Within(1e-6));
        Assert.That(ClassificationLoss.LdamMargins([16, 16], 0.3), Is.EqualTo(new[] { 0.3, 0.3 }).Within(1e-12));
        Assert.Throws<ArgumentException>(() => ClassificationLoss.LdamMargins([5, 0], 0.5));
    }

    [Test]
    public void Ldam_OneRowByHand()
    {
        // counts [16, 1]: margins [0.25, 0.5]. z = [1, 0.5], label 0, s = 2: z' = 2 [1 - 0.25, 0.5] = [1.5, 1];
        // l = log(1 + e^(1 - 1.5)), dl/dz = s (p' - onehot).
        var loss = new ClassificationLoss(_b, 2, new LossOptions { Kind = LossKind.Ldam, LdamScale = 2, LdamMaxMargin = 0.5 }, [16, 1]);
        var result = Run(loss, [1, 0.5], [0]);
        double p1 = 1 / (1 + Math.Exp(0.5));
        AssertMatches(result, Math.Log(1 + Math.Exp(-0.5)), [2 * -p1, 2 * p1]);
    }

    [TestCase(1.0)]
    [TestCase(30.0)]
    public void Ldam_MatchesItsDefinitionAndItsFiniteDifferences(double scale)
    {
        double[] m = [0.158114, 0.281171, 0.5];
        var result = Run(Loss(new LossOptions { Kind = LossKind.Ldam, LdamScale = scale }));
        AssertMatches(result, Reference(Logits, Labels, null, null, m, scale, 0), ReferenceGradient(Logits, Labels, null, null, m, scale, 0));
    }

    [Test]
    public void EveryLoss_AllocatesNothingAfterItsFirstCall()
    {
        // A training step allocates nothing: the CPU loss keeps its host scratch between calls.
        var z = Floats(Logits, 3, 3);
        var dz = _b.Create(z.Shape);
        var y = Ints(Labels);
        foreach (var kind in Enum.GetValues<LossKind>())
        {
            var loss = Loss(new LossOptions { Kind = kind, DrwEpoch = 2 });
            loss.Compute(z, y, dz);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 5; i++) loss.Compute(z, y, dz);
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero, kind.Name());
        }
    }

    [Test]
    public void LdamDrw_SwitchesToClassBalancedWeightsAtTheDrwEpoch()
    {
        double[] m = [0.158114, 0.281171, 0.5];
        var w = ClassBalanced(Counts);
        var loss = Loss(new LossOptions { Kind = LossKind.Ldam, LdamScale = 30, DrwEpoch = 3 });
        loss.BeginEpoch(1); // the second epoch: unweighted
        AssertMatches(Run(loss), Reference(Logits, Labels, null, null, m, 30, 0), ReferenceGradient(Logits, Labels, null, null, m, 30, 0));
        loss.BeginEpoch(2); // the third epoch: the class-balanced weights
        AssertMatches(Run(loss), Reference(Logits, Labels, w, null, m, 30, 0), ReferenceGradient(Logits, Labels, w, null, m, 30, 0));
        loss.BeginEpoch(0); // a resume into an earlier epoch switches back
        AssertMatches(Run(loss), Reference(Logits, Labels, null, null, m, 30, 0), ReferenceGradient(Logits, Labels, null, null, m, 30, 0));
    }

    [Test]
    public void DrwWithCrossEntropy_KeepsTheRuleWeightsUntilTheSwitch()
    {
        float[] rule = [2, 1, 0.5f];
        var loss = Loss(new LossOptions { DrwEpoch = 2 }, rule);
        loss.BeginEpoch(0);
        var before = Run(loss);
        double[] r = [2, 1, 0.5];
        AssertMatches(before, Reference(Logits, Labels, r, null, null, 1, 0), ReferenceGradient(Logits, Labels, r, null, null, 1, 0));
        loss.BeginEpoch(1);
        var w = ClassBalanced(Counts);
        AssertMatches(Run(loss), Reference(Logits, Labels, w, null, null, 1, 0), ReferenceGradient(Logits, Labels, w, null, null, 1, 0));
    }

    [Test]
    public void BalancedSoftmax_AddsTheLogPrior()
    {
        // prior [100, 10, 1] / 111
        double[] b = [Math.Log(100.0 / 111), Math.Log(10.0 / 111), Math.Log(1.0 / 111)];
        Assert.That(ClassificationLoss.LogPriors(Counts), Is.EqualTo(b).Within(1e-12));
        var result = Run(Loss(new LossOptions { Kind = LossKind.BalancedSoftmax }));
        AssertMatches(result, Reference(Logits, Labels, null, b, null, 1, 0), ReferenceGradient(Logits, Labels, null, b, null, 1, 0));
    }

    [Test]
    public void BalancedSoftmax_OneRowByHand()
    {
        // counts [3, 1]: log prior [ln 3/4, ln 1/4]; z = [0, 0], label 1: z' = [ln 3/4, ln 1/4], p = [3/4, 1/4].
        var loss = new ClassificationLoss(_b, 2, new LossOptions { Kind = LossKind.BalancedSoftmax }, [3, 1]);
        AssertMatches(Run(loss, [0, 0], [1]), -Math.Log(0.25), [0.75, -0.75]);
    }

    [TestCase(0.5)]
    [TestCase(1.0)]
    [TestCase(2.0)]
    public void LogitAdjusted_AddsTauTimesTheLogPrior(double tau)
    {
        var b = ClassificationLoss.LogPriors(Counts).Select(v => tau * v).ToArray();
        var result = Run(Loss(new LossOptions { Kind = LossKind.LogitAdjusted, Tau = tau }));
        AssertMatches(result, Reference(Logits, Labels, null, b, null, 1, 0), ReferenceGradient(Logits, Labels, null, b, null, 1, 0));
        if (tau == 1.0)
            Assert.That(result.Loss, Is.EqualTo(Run(Loss(new LossOptions { Kind = LossKind.BalancedSoftmax })).Loss).Within(1e-6),
                "tau = 1 is balanced softmax");
    }

    [Test]
    public void EveryAdjustment_AtOnce_MatchesTheFiniteDifferencesOfTheFloatOp()
    {
        // The backend op itself, differentiated numerically in float (the layers' finite-difference check, on the loss).
        double[] w = [0.5, 2, 1], b = [-0.1, 0.3, -0.7], m = [0.1, 0.2, 0.3];
        var z = Floats(Logits, 3, 3);
        var y = Ints(Labels);
        Tensor wt = Floats(w, 3), bt = Floats(b, 3), mt = Floats(m, 3), value = _b.Create(new Shape(1)), dz = _b.Create(z.Shape);
        _b.AdjustedSoftmaxCrossEntropy(z, y, wt, bt, mt, 3f, 1.5f, value, dz);
        var analytic = _b.ToArray(dz);
        var host = Logits.Select(v => (float)v).ToArray();
        const float h = 1e-2f;
        for (int e = 0; e < host.Length; e++)
        {
            double At(float delta)
            {
                var x = (float[])host.Clone();
                x[e] += delta;
                _b.CopyIn<float>(z, x);
                _b.AdjustedSoftmaxCrossEntropy(z, y, wt, bt, mt, 3f, 1.5f, value, null);
                return _b.ToArray(value)[0];
            }
            double numeric = (At(h) - At(-h)) / (2 * h);
            Assert.That(analytic[e], Is.EqualTo(numeric).Within(2e-3 + 1e-2 * Math.Abs(numeric)), $"dL/dz[{e}]");
        }
        var reference = Reference(Logits, Labels, w, b, m, 3, 1.5);
        _b.CopyIn<float>(z, host);
        _b.AdjustedSoftmaxCrossEntropy(z, y, wt, bt, mt, 3f, 1.5f, value, null);
        Assert.That(_b.ToArray(value)[0], Is.EqualTo(reference).Within(1e-5));
    }

    [Test]
    public void WithoutAdjustments_TheOpIsSoftmaxCrossEntropy()
    {
        var z = Floats(Logits, 3, 3);
        var y = Ints(Labels);
        var w = Floats([0.5, 2, 1], 3);
        Tensor l1 = _b.Create(new Shape(1)), l2 = _b.Create(new Shape(1)), g1 = _b.Create(z.Shape), g2 = _b.Create(z.Shape);
        _b.SoftmaxCrossEntropy(z, y, w, l1, g1);
        _b.AdjustedSoftmaxCrossEntropy(z, y, w, null, null, 1f, 0f, l2, g2);
        Assert.That(_b.ToArray(l2)[0], Is.EqualTo(_b.ToArray(l1)[0]).Within(1e-7));
        Assert.That(_b.ToArray(g2), Is.EqualTo(_b.ToArray(g1)).Within(1e-7), "a float ulp: the same double arithmetic in another order");
    }

    [Test]
    public void TheOp_ChecksItsArguments()
    {
        var z = Floats(Logits, 3, 3);
        var y = Ints(Labels);
        var value = _b.Create(new Shape(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => _b.AdjustedSoftmaxCrossEntropy(z, y, null, null, null, 0f, 0f, value, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => _b.AdjustedSoftmaxCrossEntropy(z, y, null, null, null, 1f, -1f, value, null));
        Assert.That(() => _b.AdjustedSoftmaxCrossEntropy(z, y, null, Floats([1, 2], 2), null, 1f, 0f, value, null), Throws.Exception);
        var bad = Ints([0, 3, 1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => _b.AdjustedSoftmaxCrossEntropy(z, bad, null, null, null, 1f, 2f, value, null));
    }

    [Test]
    public void LossesThatNeedCounts_SayWhichClassHasNone()
    {
        var e = Assert.Throws<ArgumentException>(() => new ClassificationLoss(_b, 3, new LossOptions { Kind = LossKind.BalancedSoftmax }, [4, 0, 2]));
        Assert.That(e!.Message, Does.Contain("Class 1 has 0"));
        Assert.Throws<ArgumentException>(() => new ClassificationLoss(_b, 3, new LossOptions { Kind = LossKind.Ldam }));
    }

    [Test]
    public void LossNames_RoundTrip()
    {
        foreach (var kind in Enum.GetValues<LossKind>()) Assert.That(LossKinds.Parse(kind.Name()), Is.EqualTo(kind));
        Assert.That(LossKinds.Parse(" Balanced-Softmax "), Is.EqualTo(LossKind.BalancedSoftmax));
        Assert.That(() => LossKinds.Parse("ldam-drw"), Throws.InstanceOf<FormatException>().With.Message.Contains("logit-adjusted"));
    }

    [Test]
    public void TrainingOptions_RejectLossSettingsThatContradictEachOther()
    {
        var o = new TrainingOptions { Epochs = 10 };
        Assert.That(() => (o with { Loss = LossKind.Focal, FocalGamma = -1 }).Validate(), Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("focalGamma"));
        Assert.That(() => (o with { DrwEpoch = 11 }).Validate(), Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("drwEpoch"));
        Assert.That(() => (o with { LdamScale = 0 }).Validate(), Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("ldamScale"));
        Assert.That(() => (o with { Method = TrainingMethod.Dicc, Loss = LossKind.Ldam }).Validate(),
            Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("loss"));
        Assert.That(() => (o with { CbWeights = true, Rule = ImbalanceRule.Reweight }).Validate(),
            Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("cbWeights"));
        Assert.That(() => (o with { CbWeights = true, DrwEpoch = 5 }).Validate(),
            Throws.InstanceOf<InputException>().With.Property("Parameter").EqualTo("drwEpoch"));
        Assert.That(() => (o with { Loss = LossKind.Ldam, DrwEpoch = 5 }).Validate(), Throws.Nothing);
    }

    [Test]
    public void RunSettings_NameTheLossAndOnlyItsOwnSettings()
    {
        static string[] Names(TrainingOptions o) => [.. RunSettings.Of(o).Select(s => s.Name)];
        Assert.That(Names(new TrainingOptions()), Does.Contain("loss").And.Contain("drw-epoch").And.Contain("cb-weights").And.Not.Contain("focal-gamma"));
        Assert.That(Names(new TrainingOptions { Loss = LossKind.Focal }), Does.Contain("focal-gamma").And.Not.Contain("tau"));
        Assert.That(Names(new TrainingOptions { Loss = LossKind.Ldam }), Does.Contain("ldam-scale").And.Contain("ldam-max-margin"));
        Assert.That(Names(new TrainingOptions { Loss = LossKind.LogitAdjusted }), Does.Contain("tau"));
        Assert.That(RunSettings.Of(new TrainingOptions { Loss = LossKind.BalancedSoftmax }).First(s => s.Name == "loss").Value, Is.EqualTo("balanced-softmax"));
    }
}
