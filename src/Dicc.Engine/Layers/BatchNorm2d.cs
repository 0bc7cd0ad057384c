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

    /// <summary>Batch normalisation over the channels of [N, C, H, W] with PyTorch's defaults (momentum 0.1, eps 1e-5).</summary>
    public BatchNorm2d(int channels, float momentum = 0.1f, float epsilon = 1e-5f)
    {
        if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels));
        Channels = channels;
        Momentum = momentum;
        Epsilon = epsilon;
        Weight = new Parameter("weight", new Shape(channels), Initializer.Ones);
        Bias = new Parameter("bias", new Shape(channels), Initializer.Zeros);
    }

    /// <summary>C, the number of channels.</summary>
    public int Channels { get; }
    /// <summary>The running statistics' update rate: running = (1 - momentum) running + momentum batch.</summary>
    public float Momentum { get; }
    /// <summary>The epsilon added to the variance.</summary>
    public float Epsilon { get; }
    /// <summary>Gamma, the per-channel scale.</summary>
    public Parameter Weight { get; }
    /// <summary>Beta, the per-channel shift.</summary>
    public Parameter Bias { get; }

    /// <summary>The running mean per channel (state; used in evaluation).</summary>
    public Tensor RunningMean => _runningMean ?? throw Unbound();
    /// <summary>The running (unbiased) variance per channel (state; used in evaluation).</summary>
    public Tensor RunningVar => _runningVar ?? throw Unbound();

    /// <inheritdoc/>
    public override IEnumerable<Parameter> Parameters => [Weight, Bias];

    /// <inheritdoc/>
    public override IEnumerable<StateTensor> State =>
        [new(Join(Name, "running_mean"), RunningMean), new(Join(Name, "running_var"), RunningVar)];

    /// <inheritdoc/>
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

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input)
    {
        if ((input.Rank != 4 && input.Rank != 2) || input[1] != Channels)
            throw new ShapeMismatchException($"{this} expects [N, {Channels}, H, W] or [N, {Channels}], got {input}.");
        return input;
    }

    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend)
    {
        OutputShape(input);
        if (_runningMean is null) throw Unbound();
    }

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        var b = x.Backend;
        if (context.Training)
            b.BatchNormTrainingForward(x, Weight.Value, Bias.Value, y, RunningMean, RunningVar, Momentum, Epsilon,
                _saveMean!, _saveInvStd!);
        else
            b.BatchNormInferenceForward(x, Weight.Value, Bias.Value, RunningMean, RunningVar, Epsilon, y);
    }

    /// <inheritdoc/>
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
