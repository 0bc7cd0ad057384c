using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Layers;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Models;

public class VggTests
{
    /// <summary>
    /// VGG19 as FER repositories define it in PyTorch (conv3x3 with bias + BatchNorm2d + ReLU, Linear(512, 7)),
    /// counted by hand from the configuration:
    ///   convs (weights + bias): 1->64: 640; 64->64: 36,928; 64->128: 73,856; 128->128: 147,584;
    ///   128->256: 295,168; 3 x 256->256: 1,770,240; 256->512: 1,180,160; 3 x 512->512: 7,079,424;
    ///   4 x 512->512: 9,439,232 -> 20,023,232.
    ///   BatchNorm (gamma + beta): 2 x (2x64 + 2x128 + 4x256 + 8x512) = 11,008.
    ///   Linear(512, 7): 3,591.  Total 20,037,831.
    /// (The same network with 3 input channels and 10 classes has 20,040,522 parameters, the figure commonly
    /// quoted for the CIFAR-10 VGG19 of these repositories.)
    /// </summary>
    [Test]
    public void Vgg19ParameterCountMatchesThePyTorchDefinition()
    {
        var options = new VggOptions { Depth = VggDepth.Vgg19 };
        Assert.That(Count(Vgg.Backbone(options)), Is.EqualTo(20_034_240));
        Assert.That(Count(Vgg.Classifier(options, 7)), Is.EqualTo(20_037_831));
        Assert.That(Count(Vgg.Classifier(options with { InputChannels = 3 }, 10)), Is.EqualTo(20_040_522));
    }

    private static long Count(Layer l) => l.Parameters.Sum(p => p.Shape.ElementCount);

    [TestCase(44)]
    [TestCase(48)]
    public void Vgg19GivesA512DimensionalFeature(int size)
    {
        using var backend = new CpuBackend();
        var options = new VggOptions { InputSize = size };
        var net = new Network(Vgg.Backbone(options), backend, seed: 1);
        var x = backend.Create(new Shape(2, 1, size, size));
        var pixels = new float[x.ElementCount];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (i * 7919 % 255) / 255f;
        backend.CopyIn<float>(x, pixels);
        var features = net.Forward(x, StepContext.Evaluation());
        Assert.That(features.Shape, Is.EqualTo(new Shape(2, 512)));
        var values = backend.ToArray(features);
        Assert.That(values.All(float.IsFinite));
        Assert.That(values.Count(v => v != 0), Is.GreaterThan(50), "features should not be all zero after ReLU");
    }

    [TestCase(VggDepth.Vgg11, 8)]
    [TestCase(VggDepth.Vgg13, 10)]
    [TestCase(VggDepth.Vgg16, 13)]
    [TestCase(VggDepth.Vgg19, 16)]
    public void DepthsHaveTheirConvolutionCount(VggDepth depth, int convolutions)
    {
        var backbone = Vgg.Backbone(new VggOptions { Depth = depth });
        Assert.That(backbone.Layers.OfType<Conv2d>().Count(), Is.EqualTo(convolutions));
        Assert.That(backbone.Layers.OfType<MaxPool2d>().Count(), Is.EqualTo(5));
    }

    [Test]
    public void WidthMultiplierScalesChannelsAndFeature()
    {
        var options = new VggOptions { Width = 0.25 };
        Assert.That(Vgg.FeatureSize(options), Is.EqualTo(128));
        var output = Vgg.Backbone(options).OutputShape(new Shape(5, 1, 44, 44));
        Assert.That(output, Is.EqualTo(new Shape(5, 128)));
    }

    [TestCase(31)]
    [TestCase(64)]
    public void UnsupportedInputSizeIsAClearError(int size)
    {
        var ex = Assert.Throws<ArgumentException>(() => Vgg.Backbone(new VggOptions { InputSize = size }));
        Assert.That(ex!.Message, Does.Contain($"Input size {size}"));
    }

    [Test]
    public void ForwardFlopsOfVgg19At44()
    {
        // Sum over layers of 2 * K * P * Q * C * 9 per image, computed from the configuration:
        long expected = 0;
        int channels = 1, side = 44;
        foreach (int c in Vgg.Configuration(VggDepth.Vgg19))
        {
            if (c == 0) { side /= 2; continue; }
            expected += 2L * c * side * side * channels * 9;
            channels = c;
        }
        expected += 2L * 512 * 7;
        var flops = Vgg.Classifier(new VggOptions(), 7).ForwardFlops(new Shape(1, 1, 44, 44));
        Assert.That(flops, Is.EqualTo(expected));
        Assert.That(flops / 1e9, Is.InRange(1.2, 1.5), "VGG19 at 44x44 is about 1.35 GFLOP per image");
    }
}
