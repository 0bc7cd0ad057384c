using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Layers;
using Dicc.Engine.Optim;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Models;

/// <summary>How DICC maps subclass probabilities back to the C classes.</summary>
public enum MappingKind
{
    /// <summary>The paper's label-mapping module: a 3-layer MLP K -> H -> H -> C, trained in phase 2.</summary>
    Mlp,

    /// <summary>One linear layer K -> C, trained in phase 2 like the MLP.</summary>
    Linear,

    /// <summary>Ablation: a class's probability is the sum of its subclasses' probabilities (nothing to train).</summary>
    Sum,
}

/// <summary>What a trained DICC mapping reads from the subclass head.</summary>
public enum MappingInput
{
    /// <summary>The softmax of the subclass logits (the paper).</summary>
    Softmax,

    /// <summary>The subclass logits themselves.</summary>
    Logits,
}

/// <summary>Everything a model needs besides its architecture.</summary>
public sealed record ModelTrainingOptions
{
    /// <summary>The optimiser's settings.</summary>
    public SgdOptions Sgd { get; init; } = new();

    /// <summary>CE class weights over the C true classes (the reweight rule), or null.</summary>
    public float[]? ClassWeights { get; init; }

    /// <summary>The seed of initial weights and dropout masks.</summary>
    public ulong Seed { get; init; }

    /// <summary>The baseline's loss (docs/method.md, "Long-tail losses"); DICC keeps its cross-entropies.</summary>
    public Training.LossOptions Loss { get; init; } = new();

    /// <summary>The baseline's post-hoc logit offsets <c>-tau log pi</c> [C], added to the logits at prediction; null for none.</summary>
    public float[]? PosthocOffsets { get; init; }

    /// <summary>Training images per class: the prior, margins and class-balanced weights of <see cref="Loss"/>; null when it needs none.</summary>
    public int[]? ClassCounts { get; init; }

    /// <summary>Train the baseline's head only: the backbone runs in evaluation mode and its weights stay as loaded (cRT).</summary>
    public bool FreezeBackbone { get; init; }
}

/// <summary>
/// A trainable facial-expression classifier on a backend: a training step on a device batch, class
/// probabilities for evaluation, and its whole state for checkpoints. The baseline and DICC models are the
/// two implementations; the trainer does not know which it drives.
/// </summary>
public abstract class ExpressionModel
{
    /// <summary>A model for <paramref name="classes"/> classes on <paramref name="backend"/>.</summary>
    protected ExpressionModel(Backend backend, int classes)
    {
        Backend = backend;
        Classes = classes;
    }

    /// <summary>The backend the model lives on.</summary>
    public Backend Backend { get; }
    /// <summary>C, the number of classes.</summary>
    public int Classes { get; }

    /// <summary>Optimiser steps taken (phase-1 steps for DICC).</summary>
    public abstract long Steps { get; }

    /// <summary>
    /// Called by the trainer before each epoch's steps (and before evaluating a checkpoint of that epoch): a model
    /// whose training changes with the epoch (DICC's warm-up) switches here. The default does nothing.
    /// </summary>
    public virtual void BeginEpoch(int epoch) { }

    /// <summary>One training step on images [N, 1, S, S] and int32 labels [N] already on the device.</summary>
    public abstract void TrainStep(Tensor images, Tensor labels, float learningRate);

    /// <summary>Losses of the latest step (a host sync): the main loss, and DICC's phase-2 loss (NaN for the baseline).</summary>
    public abstract (float Main, float Mapping) ReadLosses();

    /// <summary>Class probabilities [N, C] in evaluation mode (a device tensor valid until the next call).</summary>
    public abstract Tensor PredictProbabilities(Tensor images);

    /// <summary>Trainable parameter count.</summary>
    public abstract long ParameterCount { get; }

    /// <summary>The networks whose parameters train (the backbone and its heads; DICC's mapping too).</summary>
    protected abstract IEnumerable<Network> TrainedNetworks { get; }

    /// <summary>
    /// The name of the first parameter or BatchNorm statistic that holds a NaN or an infinity, or null when all are
    /// finite. One copy of the weights to the host: the trainer calls it once per epoch, because a diverged run
    /// whose activations saturate (normalised, rectified, max-pooled) can keep a finite loss while its weights or
    /// running statistics are no longer numbers.
    /// </summary>
    public string? FindNonFiniteParameter()
    {
        foreach (var network in TrainedNetworks)
        {
            foreach (var p in network.Parameters.Parameters)
                if (!Array.TrueForAll(Backend.ToArray(p.Value), float.IsFinite)) return p.Name;
            foreach (var s in network.State)
                if (s.Tensor.DType == DType.Float32 && !Array.TrueForAll(Backend.ToArray(s.Tensor), float.IsFinite)) return s.Name;
        }
        return null;
    }

    /// <summary>FLOPs of one forward pass for this input shape.</summary>
    public abstract long ForwardFlops(Shape input);

    /// <summary>Writes the whole training state (weights, BatchNorm statistics, optimiser and clustering state) into a checkpoint.</summary>
    public abstract void Save(CheckpointWriter writer);
    /// <summary>Reads the whole training state back from a checkpoint (every name, type and shape is checked).</summary>
    public abstract void Load(CheckpointReader reader);

    /// <summary>Writes parameters (PyTorch names), BatchNorm statistics and SGD momentum of a network.</summary>
    protected static void SaveNetwork(CheckpointWriter w, Network network, Sgd? optimizer, long batchesTracked)
    {
        foreach (var p in network.Parameters.Parameters) w.Add(p.Name, p.Value);
        foreach (var s in network.State)
        {
            w.Add(s.Name, s.Tensor);
            // PyTorch's BatchNorm also keeps a batch counter; writing it lets load_state_dict be strict.
            if (s.Name.EndsWith(".running_mean", StringComparison.Ordinal))
                w.Add(s.Name[..^".running_mean".Length] + ".num_batches_tracked", batchesTracked);
        }
        if (optimizer is null) return;
        foreach (var p in network.Parameters.Parameters)
            w.Add("optimizer." + p.Name + ".momentum_buffer", MomentumView(optimizer, p));
    }

    /// <summary>Reads parameters, BatchNorm statistics and (when given) SGD momentum of a network.</summary>
    protected static void LoadNetwork(CheckpointReader r, Network network, Sgd? optimizer)
    {
        foreach (var p in network.Parameters.Parameters) r.ReadInto(p.Name, p.Value);
        foreach (var s in network.State) r.ReadInto(s.Name, s.Tensor);
        if (optimizer is null) return;
        foreach (var p in network.Parameters.Parameters)
            r.ReadInto("optimizer." + p.Name + ".momentum_buffer", MomentumView(optimizer, p));
    }

    /// <summary>The slice of the optimiser's flat momentum buffer that belongs to one parameter.</summary>
    private static Tensor MomentumView(Sgd optimizer, Parameter p) =>
        new(optimizer.MomentumBuffer.Storage, p.Shape, DType.Float32, p.Value.Offset);
}

/// <summary>Plain VGG classifier: backbone, dropout, Linear(F -> C), softmax cross-entropy.</summary>
public sealed class BaselineModel : ExpressionModel
{
    private readonly Sgd _sgd;
    private readonly Training.ClassificationLoss _loss;
    private readonly StepContext _context;
    private readonly GrowOnlyBuffer _probabilities, _adjusted;
    private readonly Tensor? _identity, _offsets;

    /// <summary>The baseline classifier on <paramref name="backend"/>: the VGG backbone and a linear head over the classes.</summary>
    public BaselineModel(Backend backend, VggOptions vgg, int classes, ModelTrainingOptions options) : base(backend, classes)
    {
        Network = new Network(Vgg.Classifier(vgg, classes, options.FreezeBackbone), backend, options.Seed);
        FreezeBackbone = options.FreezeBackbone;
        // The head's parameters come after the backbone's in the arena: a frozen backbone is left out of the update.
        _sgd = new Sgd(Network.Parameters, options.Sgd, options.FreezeBackbone ? Head.Parameters.First() : null);
        _loss = new Training.ClassificationLoss(backend, classes, options.Loss, options.ClassCounts, options.ClassWeights);
        _context = new StepContext { Training = true, Seed = options.Seed };
        _probabilities = new GrowOnlyBuffer(backend);
        _adjusted = new GrowOnlyBuffer(backend);
        // LDAM trains softmax(s z): its probabilities are those of the scaled logits (the margins only train).
        LogitScale = options.Loss.Kind == Training.LossKind.Ldam ? (float)options.Loss.LdamScale : 1f;
        if (options.PosthocOffsets is { } offsets)
        {
            if (offsets.Length != classes) throw new ArgumentException($"{offsets.Length} post-hoc offsets for {classes} classes.");
            PosthocOffsets = (float[])offsets.Clone();
            _offsets = backend.Create(new Shape(classes));
            backend.CopyIn<float>(_offsets, offsets);
        }
        if (PosthocOffsets is not null || LogitScale != 1f)
        {
            // s z + offsets as a linear layer with s times the identity: z (s I)^T + b scales each logit and adds each
            // offset exactly once (products with 0 and s).
            var identity = new float[classes * classes];
            for (int c = 0; c < classes; c++) identity[c * classes + c] = LogitScale;
            _identity = backend.Create(new Shape(classes, classes));
            backend.CopyIn<float>(_identity, identity);
        }
    }

    /// <summary>The factor s of the logits at prediction: LDAM's scale (the probabilities its loss trains), 1 otherwise.</summary>
    public float LogitScale { get; }

    /// <summary>Post-hoc logit offsets added to the logits at prediction (<see cref="ModelTrainingOptions.PosthocOffsets"/>), or null.</summary>
    public float[]? PosthocOffsets { get; }

    /// <summary>Backbone (layer 0) and head (layer 1: dropout and the linear or cosine classifier).</summary>
    public Network Network { get; }

    /// <summary>The head: dropout and the classifier layer.</summary>
    public Layer Head => ((Sequential)Network.Root)[1];

    /// <summary>Whether the backbone is frozen (only the head trains).</summary>
    public bool FreezeBackbone { get; }

    /// <summary>
    /// Initialises the weights and BatchNorm statistics from another run's checkpoint (<c>--init-from</c>): every tensor
    /// of the network, or with <paramref name="resetHead"/> the backbone's only, keeping this model's freshly drawn head
    /// (cRT re-trains a new classifier). Names and shapes must match (same architecture and width); the optimiser state
    /// is not read.
    /// </summary>
    public void InitializeFrom(CheckpointReader reader, bool resetHead)
    {
        var head = new HashSet<string>(Head.Parameters.Select(p => p.Name).Concat(Head.State.Select(t => t.Name)));
        foreach (var p in Network.Parameters.Parameters)
            if (!resetHead || !head.Contains(p.Name)) reader.ReadInto(p.Name, p.Value);
        foreach (var t in Network.State)
            if (!resetHead || !head.Contains(t.Name)) reader.ReadInto(t.Name, t.Tensor);
    }
    /// <summary>The training loss.</summary>
    public Training.ClassificationLoss Loss => _loss;

    /// <inheritdoc/>
    public override void BeginEpoch(int epoch) => _loss.BeginEpoch(epoch);
    /// <inheritdoc/>
    public override long Steps => _sgd.Steps;
    /// <inheritdoc/>
    public override long ParameterCount => Network.Parameters.Count;
    /// <inheritdoc/>
    protected override IEnumerable<Network> TrainedNetworks => [Network];
    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) => Network.ForwardFlops(input);

    /// <inheritdoc/>
    public override void TrainStep(Tensor images, Tensor labels, float learningRate)
    {
        _context.Training = true;
        _context.Step = _sgd.Steps;
        var logits = Network.Forward(images, _context);
        _loss.Compute(logits, labels, Network.OutputGrad);
        Network.Backward(images, _context);
        _sgd.Step(learningRate);
    }

    /// <inheritdoc/>
    public override (float Main, float Mapping) ReadLosses() => (_loss.Read(), float.NaN);

    /// <inheritdoc/>
    public override Tensor PredictProbabilities(Tensor images)
    {
        _context.Training = false;
        var logits = Network.Forward(images, _context);
        if (_identity is not null)
        {
            var adjusted = _adjusted.View(logits.Shape);
            Backend.LinearForward(logits, _identity, _offsets, adjusted);
            logits = adjusted;
        }
        var p = _probabilities.View(logits.Shape);
        Backend.Softmax(logits, p);
        return p;
    }

    /// <inheritdoc/>
    public override void Save(CheckpointWriter writer)
    {
        SaveNetwork(writer, Network, _sgd, _sgd.Steps);
        writer.Add("optimizer.steps", _sgd.Steps);
    }

    /// <inheritdoc/>
    public override void Load(CheckpointReader reader)
    {
        LoadNetwork(reader, Network, _sgd);
        _sgd.Steps = reader.ReadInt64("optimizer.steps");
    }
}
