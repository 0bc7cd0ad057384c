using Dicc.Engine.Layers;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Optim;

public sealed record SgdOptions
{
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; }
    public bool Nesterov { get; init; }

    public void Validate()
    {
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentException($"Momentum must be in [0, 1), got {Momentum}.");
        if (!(WeightDecay >= 0) || float.IsInfinity(WeightDecay)) throw new ArgumentException($"Weight decay must be finite and non-negative, got {WeightDecay}.");
        if (Nesterov && Momentum == 0) throw new ArgumentException("Nesterov momentum needs a momentum > 0.");
    }
}

/// <summary>
/// SGD with momentum and weight decay, PyTorch semantics (dampening 0; the momentum buffer starts at zero,
/// which equals PyTorch's "first step copies the gradient"). Weight decay applies to every parameter, as
/// <c>torch.optim.SGD(model.parameters(), weight_decay=...)</c> does. One op updates the whole arena.
/// </summary>
public sealed class Sgd
{
    public Sgd(ParameterSet parameters, SgdOptions options)
    {
        options.Validate();
        Parameters = parameters;
        Options = options;
        MomentumBuffer = parameters.Backend.Create(parameters.Values.Shape);
    }

    public ParameterSet Parameters { get; }
    public SgdOptions Options { get; }

    /// <summary>The velocity of every parameter, aligned with <see cref="ParameterSet.Values"/> (checkpointed).</summary>
    public Tensor MomentumBuffer { get; }

    /// <summary>Number of steps taken (checkpointed).</summary>
    public long Steps { get; set; }

    public void Step(float learningRate)
    {
        if (!(learningRate >= 0) || float.IsInfinity(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "Learning rate must be finite and non-negative.");
        Parameters.Backend.SgdStep(Parameters.Values, Parameters.Grads, MomentumBuffer, learningRate,
            Options.Momentum, Options.WeightDecay, Options.Nesterov);
        Steps++;
    }
}
