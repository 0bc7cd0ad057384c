using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>y = x W^T + b with W [out, in]; PyTorch's default initialisation U(-1/sqrt(in), 1/sqrt(in)).</summary>
public sealed class Linear : Layer
{
    /// <summary>A fully connected layer y = x W^T + b (weights [out, in], PyTorch's default uniform initialisation).</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"Invalid Linear({inFeatures}, {outFeatures}).");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = new Parameter("weight", new Shape(outFeatures, inFeatures), Initializer.UniformFanIn, inFeatures);
        Bias = bias ? new Parameter("bias", new Shape(outFeatures), Initializer.UniformFanIn, inFeatures) : null;
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features.</summary>
    public int OutFeatures { get; }
    /// <summary>The weights [out, in].</summary>
    public Parameter Weight { get; }
    /// <summary>The bias [out], or null.</summary>
    public Parameter? Bias { get; }

    /// <inheritdoc/>
    public override IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input)
    {
        if (input.Rank != 2 || input[1] != InFeatures)
            throw new ShapeMismatchException($"{this} expects [N, {InFeatures}], got {input}.");
        return new Shape(input[0], OutFeatures);
    }

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context) =>
        x.Backend.LinearForward(x, Weight.Value, Bias?.Value, y);

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context) =>
        x.Backend.LinearBackward(x, Weight.Value, dy, dx, Weight.Grad, Bias?.Grad);

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) => 2L * input[0] * InFeatures * OutFeatures;
}
