using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Training;

/// <summary>A seeded 30-step run of a narrow VGG11 on a tiny four-class pattern task.</summary>
public class SeededTrainingRunTests
{
    private const int Batch = 16, Side = 32, Classes = 4, Steps = 30;

    /// <summary>Stripes (horizontal / vertical), a bright square, or a dark square, with random phase, position and noise.</summary>
    internal static void DrawBatch(RandomStream r, float[] images, int[] labels)
    {
        for (int i = 0; i < labels.Length; i++)
        {
            int label = r.NextInt(Classes);
            labels[i] = label;
            int phase = r.NextInt(4), cx = 8 + r.NextInt(16), cy = 8 + r.NextInt(16);
            for (int y = 0; y < Side; y++)
                for (int x = 0; x < Side; x++)
                {
                    bool inSquare = Math.Abs(x - cx) < 6 && Math.Abs(y - cy) < 6;
                    float v = label switch
                    {
                        0 => (y + phase) / 2 % 2 == 0 ? 0.8f : 0.2f,
                        1 => (x + phase) / 2 % 2 == 0 ? 0.8f : 0.2f,
                        2 => inSquare ? 0.9f : 0.3f,
                        _ => inSquare ? 0.1f : 0.7f,
                    };
                    images[(i * Side + y) * Side + x] = v + (float)(0.15 * r.NextNormal());
                }
        }
    }

    private static float[] Train(ulong seed)
    {
        using var backend = new CpuBackend();
        var options = new VggOptions { Depth = VggDepth.Vgg11, InputSize = Side, Width = 0.125, Dropout = 0.2f };
        var model = new BaselineModel(backend, options, Classes,
            new ModelTrainingOptions { Sgd = new SgdOptions { Momentum = 0.9f, WeightDecay = 5e-4f }, Seed = seed });
        var images = backend.Create(new Shape(Batch, 1, Side, Side));
        var labels = backend.Create(new Shape(Batch), DType.Int32);
        var hostImages = new float[images.ElementCount];
        var hostLabels = new int[Batch];
        var data = new RandomStream(seed, stream: 1000);
        var losses = new float[Steps];
        for (int s = 0; s < Steps; s++)
        {
            DrawBatch(data, hostImages, hostLabels);
            backend.CopyIn<float>(images, hostImages);
            backend.CopyIn<int>(labels, hostLabels);
            model.TrainStep(images, labels, learningRate: 0.01f);
            losses[s] = model.ReadLosses().Main;
        }
        return losses;
    }

    [Test]
    public void LossFallsAndTheSameSeedGivesIdenticalLosses()
    {
        var first = Train(seed: 17);
        var second = Train(seed: 17);
        TestContext.Out.WriteLine(string.Join(" ", first.Select(l => l.ToString("F3"))));
        Assert.That(second, Is.EqualTo(first), "same seed must give bit-identical losses");

        double start = first.Take(5).Average(), end = first.Skip(Steps - 5).Average();
        Assert.That(start, Is.EqualTo(Math.Log(Classes)).Within(0.5), "an untrained 4-class model starts near ln 4");
        Assert.That(end, Is.LessThan(0.25 * start), $"loss should fall to under a quarter in {Steps} steps: {start:F3} -> {end:F3}");

        var other = Train(seed: 18);
        Assert.That(other, Is.Not.EqualTo(first), "a different seed gives a different run");
    }
}
