using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>What a forward or backward pass needs to know besides its tensors.</summary>
public sealed class StepContext
{
    /// <summary>Training mode: batch statistics in BatchNorm, active dropout.</summary>
    public bool Training { get; set; }

    /// <summary>Optimiser step counter; with <see cref="Seed"/> it fixes every random draw of the step.</summary>
    public long Step { get; set; }

    /// <summary>Run seed; layers derive their own streams from it.</summary>
    public ulong Seed { get; set; }

    /// <summary>A context for evaluation (training off).</summary>
    public static StepContext Evaluation(ulong seed = 0) => new() { Training = false, Seed = seed };
}

/// <summary>
/// A layer with an explicit forward and backward. Life cycle: construct (declares parameters) ->
/// <see cref="AssignNames"/> -> a <see cref="ParameterSet"/> gives parameters memory -> <see cref="Bind"/>
/// allocates state (running statistics) -> <see cref="Prepare"/> for each input shape plans scratch memory ->
/// Forward/Backward any number of times with no allocation.
/// </summary>
public abstract class Layer
{
    /// <summary>Full, PyTorch-style dotted name ("features.0"), set by <see cref="AssignNames"/>.</summary>
    public string Name { get; private set; } = "";

    /// <summary>The layer's trainable parameters.</summary>
    public virtual IEnumerable<Parameter> Parameters => [];

    /// <summary>Non-trainable state saved in checkpoints (running statistics).</summary>
    public virtual IEnumerable<StateTensor> State => [];

    /// <summary>Gives this layer and its parameters their full names (prefix "" for the root).</summary>
    public virtual void AssignNames(string prefix)
    {
        Name = prefix;
        foreach (var p in Parameters) p.Name = Join(prefix, p.LocalName);
    }

    /// <summary>Joins a name prefix and a local name with a dot (PyTorch's module naming).</summary>
    protected static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Allocates the layer's state on a backend (once, after its parameters have memory).</summary>
    public virtual void Bind(Backend backend) { }

    /// <summary>The output shape for an input shape; throws a <see cref="ShapeMismatchException"/> naming the layer if it does not fit.</summary>
    public abstract Shape OutputShape(Shape input);

    /// <summary>Plans scratch memory for this input shape (called whenever the input shape changes).</summary>
    public virtual void Prepare(Shape input, Backend backend) => OutputShape(input);

    /// <summary>Computes <paramref name="y"/> from <paramref name="x"/> (shapes planned by <see cref="Prepare"/>).</summary>
    public abstract void Forward(Tensor x, Tensor y, StepContext context);

    /// <summary>
    /// Writes the parameter gradients (overwriting) and, when <paramref name="dx"/> is given, the input
    /// gradient. x and y are the tensors of the latest forward pass.
    /// </summary>
    public abstract void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context);

    /// <summary>Floating-point operations of one forward pass (multiply-adds count two), for throughput reports.</summary>
    public virtual long ForwardFlops(Shape input) => 0;

    /// <inheritdoc/>
    public override string ToString() => $"{GetType().Name}({Name})";
}
