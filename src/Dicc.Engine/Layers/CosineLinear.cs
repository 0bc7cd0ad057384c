using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>
/// The cosine classifier (LDAM's "normed linear" head, docs/method.md "Long-tail losses"): <c>y_ij = cos(x_i, w_j) =
/// (x_i / |x_i|) . (w_j / |w_j|)</c>, weights [out, in] and no bias. Its logits lie in [-1, 1], so a loss that scales
/// them (LDAM's s = 30) sees a fixed range whatever the feature norms.
/// </summary>
public sealed class CosineLinear : Layer
{
    private Tensor? _normalizedWeight, _weightNorms, _normalizedWeightGrad;
    private GrowOnlyBuffer? _normalizedInputMemory, _inputNormsMemory, _normalizedInputGradMemory;
    // Views for the planned input shape (Prepare runs whenever it changes), so a step makes none.
    private Tensor? _normalizedInput, _inputNorms, _normalizedInputGrad;

    /// <summary>A cosine classifier from <paramref name="inFeatures"/> to <paramref name="outFeatures"/> (weights drawn like <see cref="Linear"/>'s).</summary>
    public CosineLinear(int inFeatures, int outFeatures)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"Invalid CosineLinear({inFeatures}, {outFeatures}).");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = new Parameter("weight", new Shape(outFeatures, inFeatures), Initializer.UniformFanIn, inFeatures);
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features (classes).</summary>
    public int OutFeatures { get; }
    /// <summary>The weights [out, in]; only their directions matter.</summary>
    public Parameter Weight { get; }

    /// <inheritdoc/>
    public override IEnumerable<Parameter> Parameters => [Weight];

    /// <inheritdoc/>
    public override void Bind(Backend backend)
    {
        var shape = new Shape(OutFeatures, InFeatures);
        _normalizedWeight = backend.Create(shape);
        _normalizedWeightGrad = backend.Create(shape);
        _weightNorms = backend.Create(new Shape(OutFeatures));
        _normalizedInputMemory = new GrowOnlyBuffer(backend);
        _inputNormsMemory = new GrowOnlyBuffer(backend);
        _normalizedInputGradMemory = new GrowOnlyBuffer(backend);
    }

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input)
    {
        if (input.Rank != 2 || input[1] != InFeatures)
            throw new ShapeMismatchException($"{this} expects [N, {InFeatures}], got {input}.");
        return new Shape(input[0], OutFeatures);
    }

    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend)
    {
        OutputShape(input);
        if (_normalizedWeight is null) throw new InvalidOperationException($"{this} has no state yet: call Bind first.");
        _normalizedInput = _normalizedInputMemory!.View(input);
        _normalizedInputGrad = _normalizedInputGradMemory!.View(input);
        _inputNorms = _inputNormsMemory!.View(new Shape(input[0]));
    }

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        var b = x.Backend;
        b.NormalizeRows(x, _normalizedInput!, _inputNorms!);
        b.NormalizeRows(Weight.Value, _normalizedWeight!, _weightNorms!);
        b.LinearForward(_normalizedInput!, _normalizedWeight!, null, y);
    }

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        var b = x.Backend;
        b.LinearBackward(_normalizedInput!, _normalizedWeight!, dy, dx is null ? null : _normalizedInputGrad, _normalizedWeightGrad!, null);
        b.NormalizeRowsBackward(_normalizedWeight!, _weightNorms!, _normalizedWeightGrad!, Weight.Grad);
        if (dx is not null) b.NormalizeRowsBackward(_normalizedInput!, _inputNorms!, _normalizedInputGrad!, dx);
    }

    /// <summary>The weights as the layer uses them, each row divided by its norm (the backend's <see cref="Backend.NormalizeRows"/>), on the host.</summary>
    public float[] NormalizedWeight()
    {
        var b = Weight.Value.Backend;
        b.NormalizeRows(Weight.Value, _normalizedWeight!, _weightNorms!);
        return b.ToArray(_normalizedWeight!);
    }

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) => 2L * input[0] * InFeatures * OutFeatures;
}
