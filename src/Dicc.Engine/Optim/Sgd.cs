using Dicc.Engine.Layers;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Optim;

/// <summary>SGD settings (PyTorch's semantics).</summary>
public sealed record SgdOptions
{
    /// <summary>The momentum factor (0.9).</summary>
    public float Momentum { get; init; } = 0.9f;
    /// <summary>L2 weight decay, added to the gradient.</summary>
    public float WeightDecay { get; init; }
    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> for a momentum outside [0, 1), a negative or infinite weight decay, or Nesterov without momentum.</summary>
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
    private readonly Tensor _values, _grads, _momentum;

    /// <summary>
    /// SGD over one parameter arena, with a momentum buffer of the same size. With <paramref name="firstTrained"/> only
    /// that parameter and the ones after it in the arena train (a frozen backbone's parameters come first: cRT); the
    /// others keep their values, and their momentum stays zero.
    /// </summary>
    public Sgd(ParameterSet parameters, SgdOptions options, Parameter? firstTrained = null)
    {
        options.Validate();
        Parameters = parameters;
        Options = options;
        MomentumBuffer = parameters.Backend.Create(parameters.Values.Shape);
        if (firstTrained is null)
        {
            (_values, _grads, _momentum) = (parameters.Values, parameters.Grads, MomentumBuffer);
            return;
        }
        if (!parameters.Parameters.Contains(firstTrained)) throw new ArgumentException($"'{firstTrained.Name}' is not in the parameter set.", nameof(firstTrained));
        long offset = firstTrained.Value.Offset - parameters.Values.Offset;
        var shape = new Shape(checked((int)(parameters.Length - offset)));
        _values = new Tensor(parameters.Values.Storage, shape, DType.Float32, parameters.Values.Offset + offset);
        _grads = new Tensor(parameters.Grads.Storage, shape, DType.Float32, parameters.Grads.Offset + offset);
        _momentum = new Tensor(MomentumBuffer.Storage, shape, DType.Float32, MomentumBuffer.Offset + offset);
    }

    /// <summary>The parameters it updates.</summary>
    public ParameterSet Parameters { get; }
    /// <summary>Its settings.</summary>
    public SgdOptions Options { get; }

    /// <summary>The velocity of every parameter, aligned with <see cref="ParameterSet.Values"/> (checkpointed).</summary>
    public Tensor MomentumBuffer { get; }

    /// <summary>Number of steps taken (checkpointed).</summary>
    public long Steps { get; set; }

    /// <summary>One update of every trained parameter at <paramref name="learningRate"/> (one op over the whole arena).</summary>
    public void Step(float learningRate)
    {
        if (!(learningRate >= 0) || float.IsInfinity(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "Learning rate must be finite and non-negative.");
        Parameters.Backend.SgdStep(_values, _grads, _momentum, learningRate,
            Options.Momentum, Options.WeightDecay, Options.Nesterov);
        Steps++;
    }
}
