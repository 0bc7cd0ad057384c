using Dicc.Engine.Backends;
using Dicc.Engine.Layers;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Models;

/// <summary>
/// A layer graph bound to a backend: names assigned, parameters in one arena and initialised from a seed,
/// state allocated, and output/gradient memory planned per input shape.
/// </summary>
public sealed class Network
{
    private readonly GrowOnlyBuffer _output, _outputGrad;
    private Shape? _inputShape;
    private Tensor? _y, _dy;

    /// <summary>Binds <paramref name="root"/> to <paramref name="backend"/>: names its parameters (prefixed by <paramref name="name"/>), gives them memory and draws their initial values from <paramref name="seed"/>.</summary>
    public Network(Layer root, Backend backend, ulong seed, string name = "")
    {
        Root = root;
        Backend = backend;
        root.AssignNames(name);
        Parameters = new ParameterSet(backend, root.Parameters);
        Parameters.Initialize(new RandomStream(seed, stream: Dropout.StableHash("init:" + name)));
        root.Bind(backend);
        _output = new GrowOnlyBuffer(backend);
        _outputGrad = new GrowOnlyBuffer(backend);
    }

    /// <summary>The graph.</summary>
    public Layer Root { get; }
    /// <summary>The backend it runs on.</summary>
    public Backend Backend { get; }
    /// <summary>Its parameters (one arena).</summary>
    public ParameterSet Parameters { get; }
    /// <summary>Its state tensors (BatchNorm running statistics).</summary>
    public IEnumerable<StateTensor> State => Root.State;

    /// <summary>The output of the latest forward pass.</summary>
    public Tensor Output => _y ?? throw new InvalidOperationException("No forward pass yet.");

    /// <summary>Where the caller writes dL/dOutput before <see cref="Backward"/>.</summary>
    public Tensor OutputGrad => _dy ?? throw new InvalidOperationException("No forward pass yet.");

    /// <summary>Plans memory for this input shape (a no-op when it is the current one).</summary>
    public void Prepare(Shape input)
    {
        if (_inputShape == input) return;
        var outShape = Root.OutputShape(input);
        Root.Prepare(input, Backend);
        _y = _output.View(outShape);
        _dy = _outputGrad.View(outShape);
        _inputShape = input;
    }

    /// <summary>The forward pass (planning memory on the first call with a new input shape); returns the output, valid until the next pass.</summary>
    public Tensor Forward(Tensor x, StepContext context)
    {
        Prepare(x.Shape);
        Root.Forward(x, _y!, context);
        return _y!;
    }

    /// <summary>Backpropagates <see cref="OutputGrad"/>; writes parameter gradients and, if given, dx.</summary>
    public void Backward(Tensor x, StepContext context, Tensor? dx = null)
    {
        if (_inputShape != x.Shape) throw new InvalidOperationException($"Backward for input {x.Shape} after a forward pass for {_inputShape}.");
        Root.Backward(x, _y!, _dy!, dx, context);
    }

    /// <summary>FLOPs of one forward pass for an input shape (convolutions and linear layers).</summary>
    public long ForwardFlops(Shape input) => Root.ForwardFlops(input);
}
