using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>How a parameter's initial values are drawn (PyTorch's conventions; docs/method.md, "The model").</summary>
public enum Initializer
{
    /// <summary>All zeros (biases).</summary>
    Zeros,
    /// <summary>All ones (BatchNorm scales).</summary>
    Ones,
    /// <summary>Kaiming normal, fan-out, ReLU gain: N(0, 2 / fan_out), fan_out = K*R*S (torchvision's VGG).</summary>
    KaimingNormalFanOut,
    /// <summary>PyTorch's default for Linear/Conv weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).</summary>
    UniformFanIn,
}

/// <summary>
/// A trainable tensor and its gradient. Layers declare parameters (name, shape, initialiser); a
/// <see cref="ParameterSet"/> gives them memory in one arena, so the optimiser updates all of them in one op.
/// </summary>
public sealed class Parameter(string name, Shape shape, Initializer initializer, int fanIn = 0, int fanOut = 0)
{
    /// <summary>Full dotted name ("features.0.weight"), assigned by the owning layers.</summary>
    public string Name { get; internal set; } = name;

    /// <summary>Name within its layer ("weight", "bias").</summary>
    public string LocalName { get; } = name;
    /// <summary>The parameter's shape.</summary>
    public Shape Shape { get; } = shape;
    /// <summary>How its initial values are drawn.</summary>
    public Initializer Initializer { get; } = initializer;
    /// <summary>The fan-in its initialiser uses.</summary>
    public int FanIn { get; } = fanIn;
    /// <summary>The fan-out its initialiser uses.</summary>
    public int FanOut { get; } = fanOut;

    private Tensor? _value, _grad;
    /// <summary>The values (a view of the parameter set's arena).</summary>
    public Tensor Value => _value ?? throw new InvalidOperationException($"Parameter '{Name}' has no memory yet: create a ParameterSet first.");
    /// <summary>The gradient (a view of the parameter set's gradient arena).</summary>
    public Tensor Grad => _grad ?? throw new InvalidOperationException($"Parameter '{Name}' has no memory yet: create a ParameterSet first.");
    /// <summary>True once a parameter set gave the parameter its memory.</summary>
    public bool IsBound => _value is not null;

    internal void Bind(Tensor value, Tensor grad)
    {
        _value = value;
        _grad = grad;
    }

    /// <summary>Fills <paramref name="values"/> with this parameter's initial values drawn from <paramref name="random"/>.</summary>
    public void DrawInitialValues(RandomStream random, Span<float> values)
    {
        switch (Initializer)
        {
            case Initializer.Zeros: values.Clear(); break;
            case Initializer.Ones: values.Fill(1f); break;
            case Initializer.KaimingNormalFanOut:
            {
                double std = Math.Sqrt(2.0 / RequirePositive(FanOut, "fan-out"));
                for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextNormal() * std);
                break;
            }
            case Initializer.UniformFanIn:
            {
                double bound = 1.0 / Math.Sqrt(RequirePositive(FanIn, "fan-in"));
                for (int i = 0; i < values.Length; i++) values[i] = (float)((random.NextDouble() * 2 - 1) * bound);
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(Initializer), Initializer, null);
        }
    }

    private int RequirePositive(int v, string what) =>
        v > 0 ? v : throw new InvalidOperationException($"Parameter '{Name}' needs a positive {what} for {Initializer}.");

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {Shape}";
}

/// <summary>A named non-trainable tensor that is part of a model's state (BatchNorm running statistics).</summary>
public sealed record StateTensor(string Name, Tensor Tensor);
