using System.Globalization;
using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>
/// The graph: a chain of layers that owns the activations and gradients between them. Memory is planned
/// per input shape (grow-only, so alternating a full and a last partial batch allocates nothing new);
/// Forward and Backward then only launch ops. Nests: a Sequential is itself a layer.
/// </summary>
public sealed class Sequential : Layer
{
    private readonly List<Layer> _layers;
    private GrowOnlyBuffer[] _activationMemory = [], _gradientMemory = [];
    private Tensor[] _activations = [], _gradients = []; // index i = input of layer i (i >= 1)
    private Shape? _preparedFor;

    /// <summary>A chain of layers, each one's output the next one's input.</summary>
    public Sequential(params IEnumerable<Layer> layers)
    {
        _layers = layers.ToList();
        if (_layers.Count == 0) throw new ArgumentException("A Sequential needs at least one layer.");
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<Layer> Layers => _layers;
    /// <summary>Layer <paramref name="index"/>.</summary>
    public Layer this[int index] => _layers[index];

    /// <inheritdoc/>
    public override IEnumerable<Parameter> Parameters => _layers.SelectMany(l => l.Parameters);
    /// <inheritdoc/>
    public override IEnumerable<StateTensor> State => _layers.SelectMany(l => l.State);

    /// <inheritdoc/>
    public override void AssignNames(string prefix)
    {
        base.AssignNames(prefix);
        for (int i = 0; i < _layers.Count; i++) _layers[i].AssignNames(Join(prefix, i.ToString(CultureInfo.InvariantCulture)));
    }

    /// <inheritdoc/>
    public override void Bind(Backend backend)
    {
        foreach (var l in _layers) l.Bind(backend);
        _activationMemory = new GrowOnlyBuffer[_layers.Count];
        _gradientMemory = new GrowOnlyBuffer[_layers.Count];
        for (int i = 1; i < _layers.Count; i++)
        {
            _activationMemory[i] = new GrowOnlyBuffer(backend);
            _gradientMemory[i] = new GrowOnlyBuffer(backend);
        }
    }

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input)
    {
        var shape = input;
        foreach (var l in _layers) shape = l.OutputShape(shape);
        return shape;
    }

    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend)
    {
        if (_preparedFor == input) return;
        if (_activationMemory.Length != _layers.Count)
            throw new InvalidOperationException($"{this} has no memory yet: call Bind first.");
        var shape = input;
        var activations = new Tensor[_layers.Count];
        var gradients = new Tensor[_layers.Count];
        for (int i = 0; i < _layers.Count; i++)
        {
            if (i > 0)
            {
                activations[i] = _activationMemory[i].View(shape);
                gradients[i] = _gradientMemory[i].View(shape);
            }
            _layers[i].Prepare(shape, backend);
            shape = _layers[i].OutputShape(shape);
        }
        _activations = activations;
        _gradients = gradients;
        _preparedFor = input;
    }

    /// <summary>The input of layer <paramref name="index"/> (≥ 1) from the latest forward pass.</summary>
    public Tensor ActivationBefore(int index) => _activations[index];

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        CheckPrepared(x);
        int last = _layers.Count - 1;
        for (int i = 0; i <= last; i++)
            _layers[i].Forward(i == 0 ? x : _activations[i], i == last ? y : _activations[i + 1], context);
    }

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        CheckPrepared(x);
        int last = _layers.Count - 1;
        for (int i = last; i >= 0; i--)
        {
            _layers[i].Backward(
                i == 0 ? x : _activations[i],
                i == last ? y : _activations[i + 1],
                i == last ? dy : _gradients[i + 1],
                i == 0 ? dx : _gradients[i],
                context);
        }
    }

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input)
    {
        long flops = 0;
        var shape = input;
        foreach (var l in _layers)
        {
            flops += l.ForwardFlops(shape);
            shape = l.OutputShape(shape);
        }
        return flops;
    }

    private void CheckPrepared(Tensor x)
    {
        if (_preparedFor != x.Shape)
            throw new InvalidOperationException(
                $"{this} is planned for {_preparedFor?.ToString() ?? "nothing"}, got input {x.Shape}: call Prepare first.");
    }
}
