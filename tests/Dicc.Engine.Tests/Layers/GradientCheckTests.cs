using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Layers;
using Dicc.Engine.Tensors;
using Dicc.Engine.Tests.Support;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Layers;

/// <summary>Every layer's input and parameter gradients against central finite differences.</summary>
public class GradientCheckTests
{
    private CpuBackend _backend = null!;

    [SetUp] public void SetUp() => _backend = new CpuBackend();
    [TearDown] public void TearDown() => _backend.Dispose();

    private GradientCheck Check(double eps = 1e-2, double atol = 2e-3, double rtol = 1e-2, bool training = true) =>
        new() { Backend = _backend, Epsilon = eps, AbsoluteTolerance = atol, RelativeTolerance = rtol, Training = training };

    [TestCase(3, 1, 1, 2, 3, 7, 6, 4)]   // VGG's 3x3 same convolution
    [TestCase(3, 2, 0, 2, 2, 9, 8, 3)]   // strided, no padding
    [TestCase(1, 1, 0, 2, 4, 5, 5, 3)]   // pointwise
    [TestCase(5, 1, 2, 1, 2, 6, 9, 2)]   // large kernel, non-square input
    [TestCase(3, 1, 1, 40, 2, 2, 2, 3)]  // many images of a tiny map (chunked im2col path)
    public void Conv2d(int k, int stride, int pad, int n, int c, int h, int w, int outC) =>
        Check().Run(new Conv2d(c, outC, k, stride, pad), new Shape(n, c, h, w));

    [Test]
    public void Conv2dWithoutBias() => Check().Run(new Conv2d(2, 3, 3, 1, 1, bias: false), new Shape(2, 2, 5, 5));

    [Test]
    public void BatchNorm2dTrainingOnImages() => Check(eps: 1e-2, atol: 3e-3, rtol: 2e-2).Run(new BatchNorm2d(3), new Shape(4, 3, 3, 3));

    [Test]
    public void BatchNormTrainingOnVectors() => Check(eps: 1e-2, atol: 3e-3, rtol: 2e-2).Run(new BatchNorm2d(5), new Shape(6, 5));

    [Test]
    public void ReLU()
    {
        // Values at least 0.05 from the kink so that +-eps never crosses it.
        Check().Run(new ReLU(), new Shape(2, 3, 4, 4), i => (i % 2 == 0 ? 1 : -1) * (0.05f + (i * 37 % 17) / 10f));
    }

    [TestCase(2, 2, 0)]
    [TestCase(3, 2, 1)] // overlapping windows with padding
    public void MaxPool2d(int k, int s, int p)
    {
        // Distinct values 0.1 apart so that +-eps never changes a window's argmax.
        var shape = new Shape(2, 2, 6, 6);
        var order = Enumerable.Range(0, (int)shape.ElementCount).ToArray();
        new Dicc.Engine.Randomness.RandomStream(5).Shuffle<int>(order);
        Check().Run(new MaxPool2d(k, s, p), shape, i => order[i] * 0.1f - 7f);
    }

    [Test]
    public void DropoutInTraining() => Check().Run(new Dropout(0.5f), new Shape(4, 10));

    [Test]
    public void DropoutInEvaluationIsIdentity() => Check(training: false).Run(new Dropout(0.5f), new Shape(4, 10));

    [Test]
    public void Linear() => Check().Run(new Linear(7, 5), new Shape(3, 7));

    [Test]
    public void CosineLinear() => Check(eps: 1e-2, atol: 2e-3, rtol: 2e-2).Run(new CosineLinear(7, 5), new Shape(3, 7));

    [Test]
    public void Flatten() => Check().Run(new Flatten(), new Shape(2, 3, 2, 2));

    [Test]
    public void SequentialConvBlockChain() =>
        Check(eps: 1e-3, atol: 5e-3, rtol: 3e-2).Run(new Sequential(
            new Conv2d(1, 3, 3, 1, 1), new BatchNorm2d(3), new ReLU(), new MaxPool2d(2),
            new Conv2d(3, 4, 3, 1, 1), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Dropout(0.25f), new Linear(16, 3)), new Shape(3, 1, 8, 8), seed: 11);
}
