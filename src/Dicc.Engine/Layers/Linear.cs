using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>y = x W^T + b with W [out, in]; PyTorch's default initialisation U(-1/sqrt(in), 1/sqrt(in)).</summary>
public sealed class Linear : Layer
{
    public Linear(int inFeatures, int outFeatures, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"Invalid Linear({inFeatures}, {outFeatures}).");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = new Parameter("weight", new Shape(outFeatures, inFeatures), Initializer.UniformFanIn, inFeatures);
        Bias = bias ? new Parameter("bias", new Shape(outFeatures), Initializer.UniformFanIn, inFeatures) : null;
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public override IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    public override Shape OutputShape(Shape input)
    {
        if (input.Rank != 2 || input[1] != InFeatures)
            throw new ShapeMismatchException($"{this} expects [N, {InFeatures}], got {input}.");
        return new Shape(input[0], OutFeatures);
    }

    public override void Forward(Tensor x, Tensor y, StepContext context) =>
        x.Backend.LinearForward(x, Weight.Value, Bias?.Value, y);

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context) =>
        x.Backend.LinearBackward(x, Weight.Value, dy, dx, Weight.Grad, Bias?.Grad);

    public override long ForwardFlops(Shape input) => 2L * input[0] * InFeatures * OutFeatures;
}
