using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>
/// A layer whose weights do not train (decoupled classifier re-training, cRT: docs/method.md, "Long-tail losses"): it
/// always runs in evaluation mode (BatchNorm with its running statistics, which therefore stay as they were; no
/// dropout), and its backward pass computes nothing. Names, parameters and state are the wrapped layer's, so
/// checkpoints are those of the unfrozen network. The optimiser must leave its parameters alone (their gradients are
/// never written).
/// </summary>
public sealed class Frozen(Layer inner) : Layer
{
    private readonly StepContext _evaluation = new() { Training = false };

    /// <summary>The frozen layer.</summary>
    public Layer Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <inheritdoc/>
    public override IEnumerable<Parameter> Parameters => Inner.Parameters;
    /// <inheritdoc/>
    public override IEnumerable<StateTensor> State => Inner.State;

    /// <inheritdoc/>
    public override void AssignNames(string prefix)
    {
        base.AssignNames(prefix);
        Inner.AssignNames(prefix);
    }

    /// <inheritdoc/>
    public override void Bind(Backend backend) => Inner.Bind(backend);
    /// <inheritdoc/>
    public override Shape OutputShape(Shape input) => Inner.OutputShape(input);
    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend) => Inner.Prepare(input, backend);

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        _evaluation.Step = context.Step;
        _evaluation.Seed = context.Seed;
        Inner.Forward(x, y, _evaluation);
    }

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is not null) throw new InvalidOperationException($"{this} is frozen: it passes no gradient to its input.");
    }

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) => Inner.ForwardFlops(input);
}
