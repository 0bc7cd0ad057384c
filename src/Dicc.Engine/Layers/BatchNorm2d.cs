using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>
/// Batch normalisation over [N, C, H, W] (or [N, C]), PyTorch semantics: training uses batch statistics
/// and updates running statistics with momentum 0.1 (unbiased variance); evaluation uses the running ones.
/// </summary>
public sealed class BatchNorm2d : Layer
{
    private Tensor? _runningMean, _runningVar, _saveMean, _saveInvStd;
    private GrowOnlyBuffer? _dxScratch;

    public BatchNorm2d(int channels, float momentum = 0.1f, float epsilon = 1e-5f)
    {
        if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels));
        Channels = channels;
        Momentum = momentum;
        Epsilon = epsilon;
        Weight = new Parameter("weight", new Shape(channels), Initializer.Ones);
        Bias = new Parameter("bias", new Shape(channels), Initializer.Zeros);
    }

    public int Channels { get; }
    public float Momentum { get; }
    public float Epsilon { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public Tensor RunningMean => _runningMean ?? throw Unbound();
    public Tensor RunningVar => _runningVar ?? throw Unbound();

    public override IEnumerable<Parameter> Parameters => [Weight, Bias];

    public override IEnumerable<StateTensor> State =>
        [new(Join(Name, "running_mean"), RunningMean), new(Join(Name, "running_var"), RunningVar)];

    public override void Bind(Backend backend)
    {
        var shape = new Shape(Channels);
        _runningMean = backend.Create(shape);
        _runningVar = backend.Create(shape);
        backend.Fill(_runningVar, 1f);
        _saveMean = backend.Create(shape);
        _saveInvStd = backend.Create(shape);
        _dxScratch = new GrowOnlyBuffer(backend);
    }

    public override Shape OutputShape(Shape input)
    {
        if ((input.Rank != 4 && input.Rank != 2) || input[1] != Channels)
            throw new ShapeMismatchException($"{this} expects [N, {Channels}, H, W] or [N, {Channels}], got {input}.");
        return input;
    }

    public override void Prepare(Shape input, Backend backend)
    {
        OutputShape(input);
        if (_runningMean is null) throw Unbound();
    }

    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        var b = x.Backend;
        if (context.Training)
            b.BatchNormTrainingForward(x, Weight.Value, Bias.Value, y, RunningMean, RunningVar, Momentum, Epsilon,
                _saveMean!, _saveInvStd!);
        else
            b.BatchNormInferenceForward(x, Weight.Value, Bias.Value, RunningMean, RunningVar, Epsilon, y);
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (!context.Training)
            throw new InvalidOperationException($"{this}: backward needs a training-mode forward pass.");
        // The batch-norm backward computes dx together with dgamma and dbeta; without a caller's dx it goes to scratch.
        dx ??= _dxScratch!.View(x.Shape);
        x.Backend.BatchNormBackward(x, dy, Weight.Value, _saveMean!, _saveInvStd!, dx, Weight.Grad, Bias.Grad);
    }

    private InvalidOperationException Unbound() => new($"{this} has no state yet: call Bind first.");
}
