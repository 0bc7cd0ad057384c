using Dicc.Engine.Backends;
using Dicc.Engine.Layers;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;
using NUnit.Framework;

namespace Dicc.Engine.Tests.Support;

/// <summary>
/// Finite-difference check of a layer's backward pass. The scalar is L = sum(y * r) for a fixed random r,
/// so dL/dy = r; central differences of L (summed in double) are compared with the analytic input and
/// parameter gradients, element by element: |numeric - analytic| &lt;= atol + rtol * |analytic|.
/// </summary>
public sealed class GradientCheck
{
    public required Backend Backend { get; init; }
    public double Epsilon { get; init; } = 1e-2;
    public double AbsoluteTolerance { get; init; } = 2e-3;
    public double RelativeTolerance { get; init; } = 1e-2;
    public int MaxCheckedPerTensor { get; init; } = 60;
    public bool Training { get; init; } = true;

    /// <summary>Runs the check; <paramref name="input"/> fills x (default: N(0,1)).</summary>
    public void Run(Layer layer, Shape inputShape, Func<int, float>? input = null, ulong seed = 1)
    {
        var random = new RandomStream(seed, 99);
        layer.AssignNames("layer");
        var parameters = new ParameterSet(Backend, layer.Parameters);
        parameters.Initialize(new RandomStream(seed, 1));
        layer.Bind(Backend);
        layer.Prepare(inputShape, Backend);
        var outputShape = layer.OutputShape(inputShape);

        var xHost = new float[inputShape.ElementCount];
        for (int i = 0; i < xHost.Length; i++) xHost[i] = input?.Invoke(i) ?? (float)random.NextNormal();
        var rHost = new float[outputShape.ElementCount];
        for (int i = 0; i < rHost.Length; i++) rHost[i] = (float)random.NextNormal();

        var x = Backend.Create(inputShape);
        var y = Backend.Create(outputShape);
        var dy = Backend.Create(outputShape);
        var dx = Backend.Create(inputShape);
        Backend.CopyIn<float>(x, xHost);
        Backend.CopyIn<float>(dy, rHost);
        var context = new StepContext { Training = Training, Seed = 7, Step = 3 };

        double Objective()
        {
            layer.Forward(x, y, context);
            var yHost = Backend.ToArray(y);
            double sum = 0;
            for (int i = 0; i < yHost.Length; i++) sum += (double)yHost[i] * rHost[i];
            return sum;
        }

        Objective();
        layer.Backward(x, y, dy, dx, context);
        var analyticInput = Backend.ToArray(dx);
        var analyticParams = layer.Parameters.ToDictionary(p => p.Name, p => Backend.ToArray(p.Grad));

        Compare("input", x, xHost, analyticInput, Objective, random);
        foreach (var p in layer.Parameters)
            Compare(p.Name, p.Value, Backend.ToArray(p.Value), analyticParams[p.Name], Objective, random);
    }

    private void Compare(string what, Tensor tensor, float[] values, float[] analytic, Func<double> objective, RandomStream random)
    {
        int n = values.Length;
        var indices = n <= MaxCheckedPerTensor
            ? Enumerable.Range(0, n).ToArray()
            : Enumerable.Range(0, MaxCheckedPerTensor).Select(_ => random.NextInt(n)).Distinct().ToArray();
        double maxDiff = 0;
        foreach (int i in indices)
        {
            float original = values[i];
            values[i] = (float)(original + Epsilon);
            Backend.CopyIn<float>(tensor, values);
            double plus = objective();
            values[i] = (float)(original - Epsilon);
            Backend.CopyIn<float>(tensor, values);
            double minus = objective();
            values[i] = original;
            Backend.CopyIn<float>(tensor, values);
            // The perturbation actually applied (float rounding of original +- eps).
            double h = ((double)(float)(original + Epsilon) - (float)(original - Epsilon));
            double numeric = (plus - minus) / h;
            double diff = Math.Abs(numeric - analytic[i]);
            maxDiff = Math.Max(maxDiff, diff);
            Assert.That(diff, Is.LessThanOrEqualTo(AbsoluteTolerance + RelativeTolerance * Math.Abs(analytic[i])),
                $"d/d{what}[{i}]: numeric {numeric:G6}, analytic {analytic[i]:G6}");
        }
        TestContext.Out.WriteLine($"{what}: {indices.Length} entries checked, max |numeric - analytic| = {maxDiff:E2}");
    }
}
