using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Layers;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Layers;

/// <summary>Forward values against independent references and hand-computed numbers.</summary>
public class LayerSemanticsTests
{
    private CpuBackend _b = null!;

    [SetUp] public void SetUp() => _b = new CpuBackend();
    [TearDown] public void TearDown() => _b.Dispose();

    private Tensor Make(Shape s, float[] values)
    {
        var t = _b.Create(s);
        _b.CopyIn<float>(t, values);
        return t;
    }

    [TestCase(3, 1, 1)]
    [TestCase(3, 2, 1)]
    [TestCase(2, 2, 0)]
    [TestCase(5, 3, 2)]
    public void ConvolutionMatchesDirectSummation(int k, int stride, int pad)
    {
        var r = new RandomStream(4);
        int n = 3, c = 2, h = 9, w = 7, outC = 4;
        var g = new Dicc.Engine.Backends.ConvolutionGeometry(n, c, h, w, outC, k, k, stride, stride, pad, pad);
        var xs = Enumerable.Range(0, n * c * h * w).Select(_ => (float)r.NextNormal()).ToArray();
        var ws = Enumerable.Range(0, outC * c * k * k).Select(_ => (float)r.NextNormal()).ToArray();
        var bs = Enumerable.Range(0, outC).Select(_ => (float)r.NextNormal()).ToArray();
        var y = _b.Create(g.OutputShape);
        _b.ConvolutionForward(g, Make(g.InputShape, xs), Make(g.WeightShape, ws), Make(new Shape(outC), bs), y);
        var got = _b.ToArray(y);
        int i = 0;
        for (int ni = 0; ni < n; ni++)
            for (int o = 0; o < outC; o++)
                for (int p = 0; p < g.P; p++)
                    for (int q = 0; q < g.Q; q++, i++)
                    {
                        double sum = bs[o];
                        for (int ci = 0; ci < c; ci++)
                            for (int rr = 0; rr < k; rr++)
                                for (int ss = 0; ss < k; ss++)
                                {
                                    int hh = p * stride - pad + rr, ww = q * stride - pad + ss;
                                    if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
                                    sum += (double)xs[((ni * c + ci) * h + hh) * w + ww] * ws[((o * c + ci) * k + rr) * k + ss];
                                }
                        Assert.That(got[i], Is.EqualTo(sum).Within(1e-4), $"y[{ni},{o},{p},{q}]");
                    }
    }

    [Test]
    public void MaxPoolTakesTheFirstMaximumAndRoutesTheGradientThere()
    {
        var g = new Dicc.Engine.Backends.PoolGeometry(1, 1, 2, 4, 2, 2, 2, 2, 0, 0);
        var x = Make(g.InputShape, [1, 5, 3, 3,
                                    5, 2, 3, 0]);
        var y = _b.Create(g.OutputShape);
        _b.MaxPoolForward(g, x, y);
        Assert.That(_b.ToArray(y), Is.EqualTo(new float[] { 5, 3 }));
        var dx = _b.Create(g.InputShape);
        _b.MaxPoolBackward(g, x, y, Make(g.OutputShape, [10, 20]), dx);
        Assert.That(_b.ToArray(dx), Is.EqualTo(new float[] { 0, 10, 20, 0, 0, 0, 0, 0 }));
    }

    [TestCase(6, 8)]
    [TestCase(5, 7)] // odd sides: the last row and column are not pooled
    public void TwoByTwoPoolingMatchesAReferenceWithTiesAndNaN(int h, int w)
    {
        var r = new RandomStream(9);
        var g = new Dicc.Engine.Backends.PoolGeometry(3, 2, h, w, 2, 2, 2, 2, 0, 0);
        // Values from a small set, so windows often tie; a few NaNs.
        var xs = Enumerable.Range(0, (int)g.InputShape.ElementCount).Select(_ => r.NextInt(20) == 0 ? float.NaN : r.NextInt(4)).ToArray();
        var dys = Enumerable.Range(0, (int)g.OutputShape.ElementCount).Select(i => (float)(i + 1)).ToArray();
        var x = Make(g.InputShape, xs);
        var y = _b.Create(g.OutputShape);
        var dx = _b.Create(g.InputShape);
        _b.MaxPoolForward(g, x, y);
        _b.MaxPoolBackward(g, x, y, Make(g.OutputShape, dys), dx);
        var expectedY = new float[dys.Length];
        var expectedDx = new float[xs.Length];
        for (int plane = 0; plane < 6; plane++)
            for (int p = 0; p < g.P; p++)
                for (int q = 0; q < g.Q; q++)
                {
                    int best = -1;
                    foreach (var (dh, dw) in new[] { (0, 0), (0, 1), (1, 0), (1, 1) })
                    {
                        int i = (plane * h + 2 * p + dh) * w + 2 * q + dw;
                        if (best < 0 || xs[i] > xs[best] || (float.IsNaN(xs[i]) && !float.IsNaN(xs[best]))) best = i;
                        if (float.IsNaN(xs[best])) break;
                    }
                    int o = (plane * g.P + p) * g.Q + q;
                    expectedY[o] = xs[best];
                    expectedDx[best] += dys[o];
                }
        Assert.That(_b.ToArray(y), Is.EqualTo(expectedY));
        Assert.That(_b.ToArray(dx), Is.EqualTo(expectedDx));
    }

    [Test]
    public void BatchNormTrainingUpdatesRunningStatisticsAndEvaluationUsesThem()
    {
        var bn = new BatchNorm2d(1);
        bn.AssignNames("bn");
        _ = new ParameterSet(_b, bn.Parameters);
        _b.Fill(bn.Weight.Value, 1f);
        bn.Bind(_b);
        var shape = new Shape(4, 1);
        bn.Prepare(shape, _b);
        var x = Make(shape, [1, 2, 3, 6]); // mean 3, biased var 3.5, unbiased var 14/3
        var y = _b.Create(shape);
        bn.Forward(x, y, new StepContext { Training = true });
        Assert.That(_b.ToArray(bn.RunningMean)[0], Is.EqualTo(0.9 * 0 + 0.1 * 3).Within(1e-6));
        Assert.That(_b.ToArray(bn.RunningVar)[0], Is.EqualTo(0.9 * 1 + 0.1 * 14.0 / 3).Within(1e-6));
        var expectedTrain = new[] { 1, 2, 3, 6 }.Select(v => (float)((v - 3) / Math.Sqrt(3.5 + 1e-5))).ToArray();
        Assert.That(_b.ToArray(y), Is.EqualTo(expectedTrain).Within(1e-5));

        bn.Forward(x, y, StepContext.Evaluation());
        double rm = 0.3, rv = 0.9 + 0.1 * 14.0 / 3;
        var expectedEval = new[] { 1, 2, 3, 6 }.Select(v => (float)((v - rm) / Math.Sqrt(rv + 1e-5))).ToArray();
        Assert.That(_b.ToArray(y), Is.EqualTo(expectedEval).Within(1e-5));
        Assert.That(_b.ToArray(bn.RunningMean)[0], Is.EqualTo(0.3f).Within(1e-6), "evaluation must not change running statistics");
    }

    [Test]
    public void WeightedCrossEntropyIsPyTorchsWeightedMean()
    {
        // logits rows: [0, ln 3] (p = [1/4, 3/4]) label 1; [0, 0] (p = [1/2, 1/2]) label 0; weights [2, 1].
        var logits = Make(new Shape(2, 2), [0f, MathF.Log(3f), 0f, 0f]);
        var labels = _b.Create(new Shape(2), DType.Int32);
        _b.CopyIn<int>(labels, [1, 0]);
        var weights = Make(new Shape(2), [2f, 1f]);
        var loss = _b.Create(new Shape(1));
        var grad = _b.Create(new Shape(2, 2));
        _b.SoftmaxCrossEntropy(logits, labels, weights, loss, grad);
        // (1 * -ln(3/4) + 2 * -ln(1/2)) / (1 + 2)
        Assert.That(_b.ToArray(loss)[0], Is.EqualTo((-Math.Log(0.75) - 2 * Math.Log(0.5)) / 3).Within(1e-6));
        // d/dz = w_i (p - onehot) / 3
        Assert.That(_b.ToArray(grad), Is.EqualTo(new[] { 0.25f / 3, -0.25f / 3, 2 * -0.5f / 3, 2 * 0.5f / 3 }).Within(1e-6));

        _b.SoftmaxCrossEntropy(logits, labels, null, loss, null);
        Assert.That(_b.ToArray(loss)[0], Is.EqualTo((-Math.Log(0.75) - Math.Log(0.5)) / 2).Within(1e-6));
    }

    [Test]
    public void CrossEntropyRejectsALabelOutOfRange()
    {
        var logits = Make(new Shape(2, 3), new float[6]);
        var labels = _b.Create(new Shape(2), DType.Int32);
        _b.CopyIn<int>(labels, [1, 3]);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => _b.SoftmaxCrossEntropy(logits, labels, null, _b.Create(new Shape(1)), null));
        Assert.That(ex!.Message, Does.Contain("row 1"));
    }

    [Test]
    public void DropoutKeepsAboutOneMinusPAndScales()
    {
        var shape = new Shape(100, 100);
        var x = Make(shape, Enumerable.Repeat(1f, 10000).ToArray());
        var y = _b.Create(shape);
        var mask = _b.Create(shape);
        _b.DropoutForward(x, y, mask, 0.3f, seed: 5, offset: 0);
        var ys = _b.ToArray(y);
        Assert.That(ys.All(v => v == 0f || Math.Abs(v - 1 / 0.7f) < 1e-6));
        Assert.That(ys.Count(v => v != 0) / 10000.0, Is.EqualTo(0.7).Within(0.02));
        // Same seed and offset: same mask; another offset: another mask.
        var y2 = _b.Create(shape);
        _b.DropoutForward(x, y2, mask, 0.3f, seed: 5, offset: 0);
        Assert.That(_b.ToArray(y2), Is.EqualTo(ys));
        _b.DropoutForward(x, y2, mask, 0.3f, seed: 5, offset: 1UL << 32);
        Assert.That(_b.ToArray(y2), Is.Not.EqualTo(ys));
    }

    [TestCase(1, 0UL)]
    [TestCase(7, 3UL)]
    [TestCase(70001, 0UL)]
    [TestCase(70001, 6UL)]
    public void DropoutMask_IsPhiloxWordOfEachElementsPosition(int n, ulong offset)
    {
        // The CPU draws one Philox block per four elements; every element must still get word offset + i, whatever
        // the offset's alignment and wherever the parallel ranges split.
        const float p = 0.4f;
        var shape = new Shape(n);
        var x = Make(shape, Enumerable.Range(0, n).Select(i => 1f + i % 5).ToArray());
        var y = _b.Create(shape);
        var mask = _b.Create(shape);
        _b.DropoutForward(x, y, mask, p, seed: 11, offset: offset);
        float scale = 1f / (1f - p);
        var expected = Enumerable.Range(0, n)
            .Select(i => Philox.ToUniform(Philox.Word(11, 0, offset + (ulong)i)) >= p ? scale : 0f).ToArray();
        Assert.That(_b.ToArray(mask), Is.EqualTo(expected));
        Assert.That(_b.ToArray(y), Is.EqualTo(expected.Select((m, i) => (1f + i % 5) * m).ToArray()));
    }

    [Test]
    public void ShapeMismatchNamesBothShapes()
    {
        var g = new Dicc.Engine.Backends.ConvolutionGeometry(1, 1, 4, 4, 2, 3, 3, 1, 1, 1, 1);
        var ex = Assert.Throws<ShapeMismatchException>(() =>
            _b.ConvolutionForward(g, _b.Create(new Shape(1, 2, 4, 4)), _b.Create(g.WeightShape), null, _b.Create(g.OutputShape)));
        Assert.That(ex!.Message, Does.Contain("[1x1x4x4]").And.Contain("[1x2x4x4]"));
    }
}

public class ReluNanTests
{
    [Test]
    public void ReluLetsNaNThroughInTheVectorLoopAndTheTail()
    {
        using var b = new CpuBackend();
        var values = new float[11];
        values[0] = float.NaN;   // vector loop
        values[10] = float.NaN;  // scalar tail
        values[3] = -2f;
        values[4] = 3f;
        var x = b.Create(new Shape(11));
        b.CopyIn<float>(x, values);
        var y = b.Create(new Shape(11));
        b.ReluForward(x, y);
        var r = b.ToArray(y);
        Assert.That(float.IsNaN(r[0]) && float.IsNaN(r[10]), "NaN must propagate");
        Assert.That(r[3], Is.EqualTo(0f));
        Assert.That(r[4], Is.EqualTo(3f));
    }
}
