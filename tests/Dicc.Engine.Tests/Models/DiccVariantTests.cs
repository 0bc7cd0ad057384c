using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Clustering;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Layers;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Models;

/// <summary>
/// DICC's variants do what they say: each mapping and mapping input computes its formula, the warm-up is plain class
/// cross-entropy on the mean subclass logit without clustering, and the joint variant adds w times the gradient of the
/// mapped-class cross-entropy (checked against finite differences); plus the instruments' arithmetic on a hand example.
/// </summary>
public class DiccVariantTests
{
    private const int Classes = 3, Batch = 12, Side = 32;
    private static readonly VggOptions Vgg = new() { Depth = VggDepth.Vgg11, InputSize = Side, Width = 0.125, Dropout = 0f };

    private static DiccModel Build(CpuBackend backend, int[] plan, MappingKind mapping = MappingKind.Mlp, MappingInput input = MappingInput.Softmax,
        int warmup = 0, double joint = 0) =>
        new(backend, Vgg, Classes, new DiccOptions
        {
            Clustering = new ClusteringConfig(SubclassPlan.FromCounts(plan), Engine.Models.Vgg.FeatureSize(Vgg), PartitionMode.Rank),
            Mapping = mapping, MappingInput = input, WarmupEpochs = warmup, JointWeight = joint,
        }, new ModelTrainingOptions { Sgd = new SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }, Seed = 7 });

    /// <summary>A fixed batch: noise images, labels 0, 1, 2, 0, 1, 2, ...</summary>
    private static (Tensor Images, Tensor Labels, int[] HostLabels) Batch_(CpuBackend backend, ulong seed = 3)
    {
        var r = new RandomStream(seed, stream: 11);
        var pixels = new float[Batch * Side * Side];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)r.NextDouble();
        var labels = Enumerable.Range(0, Batch).Select(i => i % Classes).ToArray();
        var x = backend.Create(new Shape(Batch, 1, Side, Side));
        var y = backend.Create(new Shape(Batch), DType.Int32);
        backend.CopyIn<float>(x, pixels);
        backend.CopyIn<int>(y, labels);
        return (x, y, labels);
    }

    private static double[] Softmax(ReadOnlySpan<double> z)
    {
        double max = double.NegativeInfinity;
        foreach (double v in z) max = Math.Max(max, v);
        var e = new double[z.Length];
        double sum = 0;
        for (int i = 0; i < z.Length; i++) sum += e[i] = Math.Exp(z[i] - max);
        for (int i = 0; i < z.Length; i++) e[i] /= sum;
        return e;
    }

    /// <summary>y = W x + b for W [out, in] row-major.</summary>
    private static double[] Affine(float[] w, float[] b, double[] x)
    {
        var y = new double[b.Length];
        for (int o = 0; o < b.Length; o++)
        {
            double s = b[o];
            for (int i = 0; i < x.Length; i++) s += w[o * x.Length + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private static float[] Value(Network network, string name) => network.Backend.ToArray(network.Parameters[name].Value);

    [TestCase(MappingKind.Linear, MappingInput.Softmax)]
    [TestCase(MappingKind.Linear, MappingInput.Logits)]
    [TestCase(MappingKind.Mlp, MappingInput.Softmax)]
    [TestCase(MappingKind.Mlp, MappingInput.Logits)]
    [TestCase(MappingKind.Sum, MappingInput.Softmax)]
    public void EachMappingPredictsWhatItsFormulaGives(MappingKind kind, MappingInput input)
    {
        using var backend = new CpuBackend();
        int[] plan = [2, 1, 3];
        var model = Build(backend, plan, kind, input);
        var (x, y, _) = Batch_(backend);
        model.BeginEpoch(0);
        for (int s = 0; s < 3; s++) model.TrainStep(x, y, 0.05f);

        var z = backend.ToArray(model.Main.Forward(x, StepContext.Evaluation(7)));
        var predicted = backend.ToArray(model.PredictProbabilities(x));
        int k = plan.Sum();
        for (int i = 0; i < Batch; i++)
        {
            var logits = z.AsSpan(i * k, k).ToArray().Select(v => (double)v).ToArray();
            var p = Softmax(logits);
            double[] expected;
            if (kind == MappingKind.Sum)
                expected = [p[0] + p[1], p[2], p[3] + p[4] + p[5]];
            else
            {
                var h = input == MappingInput.Softmax ? p : logits;
                var m = model.Mapping!;
                if (kind == MappingKind.Linear)
                    h = Affine(Value(m, "mapping.0.weight"), Value(m, "mapping.0.bias"), h);
                else
                {
                    h = Affine(Value(m, "mapping.0.weight"), Value(m, "mapping.0.bias"), h).Select(v => Math.Max(0, v)).ToArray();
                    h = Affine(Value(m, "mapping.2.weight"), Value(m, "mapping.2.bias"), h).Select(v => Math.Max(0, v)).ToArray();
                    h = Affine(Value(m, "mapping.4.weight"), Value(m, "mapping.4.bias"), h);
                }
                expected = Softmax(h);
            }
            for (int c = 0; c < Classes; c++)
                Assert.That(predicted[i * Classes + c], Is.EqualTo(expected[c]).Within(2e-5), $"sample {i}, class {c}");
        }
        Assert.That(model.Mapping is null, Is.EqualTo(kind == MappingKind.Sum));
        if (kind == MappingKind.Linear) Assert.That(model.Mapping!.Parameters.Parameters.Select(p => p.Name), Is.EqualTo(new[] { "mapping.0.weight", "mapping.0.bias" }));
    }

    [Test]
    public void WarmupWithOneSubclassPerClassIsExactlyTheClusteredStep_AndDoesNotCluster()
    {
        using var backend = new CpuBackend();
        // With Ns = 1 every pseudo-label is the class itself, so the DICC step and the warm-up's class cross-entropy
        // (mean of one logit) must give the same parameters bit for bit; only the clustering state differs.
        var warm = Build(backend, [1, 1, 1], warmup: 1);
        var dicc = Build(backend, [1, 1, 1]);
        var (x, y, _) = Batch_(backend);
        warm.BeginEpoch(0);
        dicc.BeginEpoch(0);
        for (int s = 0; s < 2; s++)
        {
            warm.TrainStep(x, y, 0.05f);
            dicc.TrainStep(x, y, 0.05f);
        }
        Assert.That(backend.ToArray(warm.Main.Parameters.Values), Is.EqualTo(backend.ToArray(dicc.Main.Parameters.Values)));
        Assert.That(backend.ToArray(warm.Mapping!.Parameters.Values), Is.EqualTo(backend.ToArray(dicc.Mapping!.Parameters.Values)));
        Assert.That(warm.InWarmup, Is.True);
        Assert.That(warm.LastPseudoLabels, Is.Null, "no clustering in the warm-up");
        Assert.That(warm.Clustering.ReadState().Step, Is.Zero);
        Assert.That(dicc.Clustering.ReadState().Step, Is.EqualTo(2));

        warm.BeginEpoch(1);
        Assert.That(warm.InWarmup, Is.False);
        warm.TrainStep(x, y, 0.05f);
        Assert.That(warm.Clustering.ReadState().Step, Is.EqualTo(1), "the clustering starts after the warm-up");
    }

    [Test]
    public void WarmupLossAndPredictionAreOnTheMeanSubclassLogitOfEachClass()
    {
        using var backend = new CpuBackend();
        int[] plan = [2, 1, 3];
        var model = Build(backend, plan, warmup: 2);
        var (x, y, labels) = Batch_(backend);
        model.BeginEpoch(1);
        model.TrainStep(x, y, 0.05f);
        model.TrainStep(x, y, 0.05f);
        // The step's logits (training mode; dropout is 0, so the forward is deterministic) and its loss.
        var z = backend.ToArray(model.Main.Output);
        float loss = model.ReadLosses().Main;
        double expected = 0;
        double[] Pooled(float[] logits, int i) =>
        [
            (logits[i * 6 + 0] + (double)logits[i * 6 + 1]) / 2, logits[i * 6 + 2],
            (logits[i * 6 + 3] + (double)logits[i * 6 + 4] + logits[i * 6 + 5]) / 3,
        ];
        for (int i = 0; i < Batch; i++) expected -= Math.Log(Softmax(Pooled(z, i))[labels[i]]) / Batch;
        Assert.That(loss, Is.EqualTo(expected).Within(1e-5));

        var evalLogits = backend.ToArray(model.Main.Forward(x, StepContext.Evaluation(7)));
        var predicted = backend.ToArray(model.PredictProbabilities(x));
        for (int i = 0; i < Batch; i++)
        {
            var p = Softmax(Pooled(evalLogits, i));
            for (int c = 0; c < Classes; c++) Assert.That(predicted[i * Classes + c], Is.EqualTo(p[c]).Within(2e-6));
        }
    }

    /// <summary>
    /// The joint variant's extra gradient on the subclass head's bias equals w times the finite-difference gradient of the
    /// mapped-class cross-entropy (computed here in double from the step's logits and the linear mapping's weights), and it
    /// reaches the backbone.
    /// </summary>
    [TestCase(MappingInput.Softmax)]
    [TestCase(MappingInput.Logits)]
    public void JointGradientIsTheMappedCrossEntropysGradient(MappingInput input)
    {
        using var backend = new CpuBackend();
        int[] plan = [2, 1, 3];
        const double w = 0.7;
        var plain = Build(backend, plan, MappingKind.Linear, input);
        var joint = Build(backend, plan, MappingKind.Linear, input, joint: w);
        var (x, y, labels) = Batch_(backend);
        plain.BeginEpoch(0);
        joint.BeginEpoch(0);
        // A learning rate of 0 keeps the weights, so the gradients of both models belong to the same point.
        plain.TrainStep(x, y, 0f);
        joint.TrainStep(x, y, 0f);

        var z = backend.ToArray(joint.Main.Output).Select(v => (double)v).ToArray();
        Assert.That(z, Is.EqualTo(backend.ToArray(plain.Main.Output).Select(v => (double)v).ToArray()));
        var weight = Value(joint.Mapping!, "mapping.0.weight");
        var bias = Value(joint.Mapping!, "mapping.0.bias");
        int k = plan.Sum();
        double MappedLoss(int column, double shift)
        {
            double sum = 0;
            for (int i = 0; i < Batch; i++)
            {
                var logits = z.AsSpan(i * k, k).ToArray();
                logits[column] += shift;
                var q = Softmax(Affine(weight, bias, input == MappingInput.Softmax ? Softmax(logits) : logits));
                sum -= Math.Log(q[labels[i]]);
            }
            return sum / Batch;
        }

        var jointBias = backend.ToArray(joint.Main.Parameters["1.1.bias"].Grad);
        var plainBias = backend.ToArray(plain.Main.Parameters["1.1.bias"].Grad);
        for (int j = 0; j < k; j++)
        {
            const double h = 1e-4;
            double numeric = (MappedLoss(j, h) - MappedLoss(j, -h)) / (2 * h);
            Assert.That(jointBias[j] - plainBias[j], Is.EqualTo(w * numeric).Within(2e-5 + 1e-3 * Math.Abs(w * numeric)), $"subclass {j}");
        }
        Assert.That(jointBias.Zip(plainBias).Any(p => Math.Abs(p.First - p.Second) > 1e-4), "the mapped loss has a gradient here");
        var jointConv = backend.ToArray(joint.Main.Parameters["0.0.weight"].Grad);
        var plainConv = backend.ToArray(plain.Main.Parameters["0.0.weight"].Grad);
        Assert.That(jointConv, Is.Not.EqualTo(plainConv), "the mapped loss reaches the backbone");
    }

    [Test]
    public void SumMappingRefusesLogitsAndTheJointLoss()
    {
        using var backend = new CpuBackend();
        Assert.Throws<ArgumentException>(() => Build(backend, [1, 1, 1], MappingKind.Sum, MappingInput.Logits));
        Assert.Throws<ArgumentException>(() => Build(backend, [1, 1, 1], MappingKind.Sum, joint: 0.5));
        var options = new TrainingOptions { Method = TrainingMethod.Dicc, Mapping = MappingKind.Sum, JointWeight = 1 };
        var e = Assert.Throws<InputException>(() => options.Validate());
        Assert.That(e!.Parameter, Is.EqualTo("jointWeight"));
        Assert.That(e.Message, Does.StartWith("jointWeight "));
        e = Assert.Throws<InputException>(() => (new TrainingOptions { Method = TrainingMethod.Dicc, Epochs = 3, WarmupEpochs = 3 }).Validate());
        Assert.That(e!.Parameter, Is.EqualTo("warmupEpochs"));
    }

    /// <summary>
    /// Plan 2,1,3 (pseudo-labels 0-1 class 0, 2 class 1, 3-5 class 2); five samples of classes 0,0,1,2,2; an epoch of six
    /// written slots in which sample 3 is drawn twice, and one slot no step wrote. By hand: latest labels 1,0,2,5,3; subclass sizes 1,1,1,1,0,2, so
    /// class 2 uses 2 of 3 (min 0, max 2). Against previous labels 1,1,-,4,4: sample 0 kept, 1 changed, 2 not drawn
    /// before, 3 and 4 changed: churn 3/4, class 0 1/2, class 1 none, class 2 2/2.
    /// </summary>
    [Test]
    public void InstrumentsTallyAHandComputedEpoch()
    {
        var plan = SubclassPlan.FromCounts([2, 1, 3]);
        int[] labels = [0, 0, 1, 2, 2];
        int[] order = [3, 0, 4, 1, 2, 3, 0];
        int[] log = [5, 1, 3, 0, 2, 5, -1]; // the last slot was never written: it counts for nothing
        var current = new int[5];
        var sizes = new long[6];
        var (occupancy, churn, perClass) = DiccInstruments.Tally(log, order, labels, plan, [1, 1, -1, 4, 4], current, sizes);
        Assert.That(current, Is.EqualTo(new[] { 1, 0, 2, 5, 3 }));
        Assert.That(sizes, Is.EqualTo(new long[] { 1, 1, 1, 1, 0, 2 }));
        Assert.That(occupancy, Is.EqualTo(new[]
        {
            new SubclassOccupancy(2, 2, 1, 1), new SubclassOccupancy(1, 1, 1, 1), new SubclassOccupancy(3, 2, 0, 2),
        }));
        Assert.That(churn, Is.EqualTo(0.75));
        Assert.That(perClass, Is.EqualTo(new double?[] { 0.5, null, 1.0 }));

        var (_, first, firstPerClass) = DiccInstruments.Tally(log, order, labels, plan, null, current, sizes);
        Assert.That(first, Is.Null, "no churn in the first DICC epoch");
        Assert.That(firstPerClass, Is.Null);
    }

    /// <summary>Counts 3 and 1: entropy of (3/4, 1/4) = 0.5623 nats; resample and reweight move it towards ln 2.</summary>
    [Test]
    public void MappingPriorEntropyIsTheEntropyOfTheClassesTheMappingSees()
    {
        int[] counts = [3, 1];
        Assert.That(DiccInstruments.MappingPriorEntropy(ImbalanceRule.None, counts), Is.EqualTo(-(0.75 * Math.Log(0.75) + 0.25 * Math.Log(0.25))).Within(1e-12));
        // Reweight: mass_c = n_c / E(n_c) with E(3) = 1 + b + b^2, E(1) = 1 (b = 0.9999): shares 3/E(3) : 1.
        double b = EffectiveNumber.DefaultBeta, e3 = 1 + b + b * b;
        double p0 = 3 / e3 / (3 / e3 + 1), p1 = 1 - p0;
        double expected = -(p0 * Math.Log(p0) + p1 * Math.Log(p1));
        Assert.That(DiccInstruments.MappingPriorEntropy(ImbalanceRule.Reweight, counts), Is.EqualTo(expected).Within(1e-12));
        // Resample draws class c with probability proportional to n_c / E(n_c): the same distribution.
        Assert.That(DiccInstruments.MappingPriorEntropy(ImbalanceRule.Resample, counts), Is.EqualTo(expected).Within(1e-12));
    }
}
