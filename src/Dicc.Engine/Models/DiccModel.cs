using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Clustering;
using Dicc.Engine.Layers;
using Dicc.Engine.Optim;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Engine.Models;

/// <summary>DICC's own settings (docs/method.md): the clustering step and the label mapping.</summary>
public sealed record DiccOptions
{
    /// <summary>Subclass plan, partition and EMA decay; its feature width must be the backbone's.</summary>
    public required ClusteringConfig Clustering { get; init; }

    /// <summary>The label mapping: the paper's MLP or the sum ablation.</summary>
    public MappingKind Mapping { get; init; } = MappingKind.Mlp;

    /// <summary>Hidden width H of the label-mapping MLP (the paper's 128).</summary>
    public int MappingHidden { get; init; } = 128;

    /// <summary>
    /// The mapping MLP's learning rate as a multiple of the main one (1 = the paper's single learning rate).
    /// The MLP sees near-uniform subclass probabilities early in training, so it learns slowly at the
    /// backbone's rate; a larger multiple lets it follow sooner.
    /// </summary>
    public double MappingLearningRateScale { get; init; } = 1.0;
}

/// <summary>
/// The DICC model (docs/method.md): backbone + subclass head Linear(F -> K) ("main" network) and a label-mapping
/// MLP K -> H -> H -> C ("mapping"). A training step has two phases:
/// 1. forward the main network; cluster the detached backbone features of each class around its EMA centre
///    into pseudo-labels; CE(subclass logits, pseudo-labels); backward; SGD on the main network;
/// 2. softmax of the phase-1 subclass logits (detached) -> mapping MLP; CE(mapping logits, true labels);
///    backward; SGD on the mapping MLP only.
/// Inference: main network -> softmax -> mapping -> class probabilities; the clustering module is not used.
/// With the reweight rule both losses weight samples by their true class.
/// </summary>
public sealed class DiccModel : ExpressionModel
{
    private readonly Sgd _mainSgd;
    private readonly Sgd? _mappingSgd;
    private readonly SoftmaxCrossEntropyLoss _subclassLoss, _mappingLoss;
    private readonly StepContext _context;
    private readonly GrowOnlyBuffer _pseudo, _subclassProbabilities, _classProbabilities;
    private readonly Tensor? _sumMatrix;
    private readonly Sequential _mainRoot;

    /// <summary>The DICC model on <paramref name="backend"/>: the VGG backbone, a subclass head over the plan's K pseudo-labels, the clustering module and the label mapping.</summary>
    public DiccModel(Backend backend, VggOptions vgg, int classes, DiccOptions dicc, ModelTrainingOptions options) : base(backend, classes)
    {
        var plan = dicc.Clustering.Plan;
        if (plan.ClassCount != classes)
            throw new ArgumentException($"The subclass plan covers {plan.ClassCount} classes; the data has {classes}.");
        if (dicc.MappingHidden <= 0) throw new ArgumentException($"Mapping hidden width must be positive, got {dicc.MappingHidden}.");
        if (!(dicc.MappingLearningRateScale > 0) || double.IsInfinity(dicc.MappingLearningRateScale))
            throw new ArgumentException($"Mapping learning-rate scale must be positive, got {dicc.MappingLearningRateScale}.");
        Options = dicc;
        int features = Vgg.FeatureSize(vgg), k = plan.TotalSubclasses;
        if (dicc.Clustering.FeatureDim != features)
            throw new ArgumentException($"The clustering is configured for {dicc.Clustering.FeatureDim} features; the backbone gives {features}.");
        _mainRoot = new Sequential(Vgg.Backbone(vgg), Vgg.Head(features, k, vgg.Dropout));
        Main = new Network(_mainRoot, backend, options.Seed);
        _mainSgd = new Sgd(Main.Parameters, options.Sgd);
        Clustering = IClustering.Create(backend, dicc.Clustering);

        // Reweighting by true class: subclass k carries the weight of the class it belongs to.
        float[]? subclassWeights = options.ClassWeights is null ? null
            : Enumerable.Range(0, k).Select(j => options.ClassWeights[plan.ClassOf(j)]).ToArray();
        _subclassLoss = new SoftmaxCrossEntropyLoss(backend, k, subclassWeights);
        _mappingLoss = new SoftmaxCrossEntropyLoss(backend, classes, options.ClassWeights);

        if (dicc.Mapping == MappingKind.Mlp)
        {
            int h = dicc.MappingHidden;
            Mapping = new Network(new Sequential(new Linear(k, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, classes)),
                backend, options.Seed, name: "mapping");
            _mappingSgd = new Sgd(Mapping.Parameters, options.Sgd);
        }
        else
        {
            // sum mapping as a fixed [C, K] 0/1 matrix: p_c = sum of p_k over the subclasses k of c.
            var m = new float[classes * k];
            for (int j = 0; j < k; j++) m[plan.ClassOf(j) * k + j] = 1f;
            _sumMatrix = backend.Create(new Shape(classes, k));
            backend.CopyIn<float>(_sumMatrix, m);
        }
        _context = new StepContext { Training = true, Seed = options.Seed };
        _pseudo = new GrowOnlyBuffer(backend);
        _subclassProbabilities = new GrowOnlyBuffer(backend);
        _classProbabilities = new GrowOnlyBuffer(backend);
    }

    /// <summary>DICC's settings.</summary>
    public DiccOptions Options { get; }

    /// <summary>Backbone + subclass head.</summary>
    public Network Main { get; }

    /// <summary>The label-mapping MLP (null with the sum mapping).</summary>
    public Network? Mapping { get; }

    /// <summary>The clustering module; its state lives on the model's backend.</summary>
    public IClustering Clustering { get; }

    /// <inheritdoc/>
    public override long Steps => _mainSgd.Steps;
    /// <inheritdoc/>
    public override long ParameterCount => Main.Parameters.Count + (Mapping?.Parameters.Count ?? 0);

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) =>
        Main.ForwardFlops(input) + (Mapping?.ForwardFlops(new Shape(input[0], Options.Clustering.SubclassCount)) ?? 0);

    /// <summary>The backbone features [N, F] of the latest forward pass (what the clustering sees).</summary>
    public Tensor Features => _mainRoot.ActivationBefore(1);

    /// <summary>Pseudo-labels [N] of the latest training step (device, int32).</summary>
    public Tensor? LastPseudoLabels { get; private set; }

    /// <inheritdoc/>
    public override void TrainStep(Tensor images, Tensor labels, float learningRate)
    {
        int n = images.Shape[0];
        _context.Training = true;
        _context.Step = _mainSgd.Steps;

        // Phase 1: subclass logits, pseudo-labels from the detached features, update backbone + head.
        var subclassLogits = Main.Forward(images, _context);
        var pseudo = AssignPseudoLabels(Features, labels, n);
        _subclassLoss.Compute(subclassLogits, pseudo, Main.OutputGrad);
        Main.Backward(images, _context);
        _mainSgd.Step(learningRate);

        // Phase 2: the mapping learns true labels from the phase-1 subclass probabilities.
        if (Mapping is null) return;
        var probabilities = _subclassProbabilities.View(subclassLogits.Shape);
        Backend.Softmax(subclassLogits, probabilities);
        var classLogits = Mapping.Forward(probabilities, _context);
        _mappingLoss.Compute(classLogits, labels, Mapping.OutputGrad);
        Mapping.Backward(probabilities, _context);
        _mappingSgd!.Step((float)(learningRate * Options.MappingLearningRateScale));
    }

    /// <summary>The clustering step, on the backend where the features are (no host round trip).</summary>
    private Tensor AssignPseudoLabels(Tensor features, Tensor labels, int n)
    {
        var pseudo = _pseudo.View(new Shape(n), DType.Int32);
        Clustering.Assign(features, labels, pseudo);
        LastPseudoLabels = pseudo;
        return pseudo;
    }

    /// <inheritdoc/>
    public override (float Main, float Mapping) ReadLosses() =>
        (_subclassLoss.Read(), Mapping is null ? float.NaN : _mappingLoss.Read());

    /// <inheritdoc/>
    public override Tensor PredictProbabilities(Tensor images)
    {
        _context.Training = false;
        var subclassLogits = Main.Forward(images, _context);
        var probabilities = _subclassProbabilities.View(subclassLogits.Shape);
        Backend.Softmax(subclassLogits, probabilities);
        var result = _classProbabilities.View(new Shape(images.Shape[0], Classes));
        if (Mapping is not null)
            Backend.Softmax(Mapping.Forward(probabilities, _context), result);
        else
            Backend.LinearForward(probabilities, _sumMatrix!, null, result);
        return result;
    }

    /// <inheritdoc/>
    public override void Save(CheckpointWriter writer)
    {
        SaveNetwork(writer, Main, _mainSgd, _mainSgd.Steps);
        writer.Add("optimizer.steps", _mainSgd.Steps);
        if (Mapping is not null)
        {
            SaveNetwork(writer, Mapping, _mappingSgd, _mappingSgd!.Steps);
            writer.Add("optimizer.mapping.steps", _mappingSgd.Steps);
        }
        int c = Clustering.Config.ClassCount, m = Clustering.Config.FeatureDim;
        var state = Clustering.ReadState();
        writer.Add("dicc.centers", state.Centers, c, m);
        writer.Add("dicc.seen", state.Seen);
        writer.Add("dicc.step", state.Step);
        writer.Add("dicc.subclasses", Options.Clustering.Plan.Counts.ToArray(), c);
    }

    /// <inheritdoc/>
    public override void Load(CheckpointReader reader)
    {
        LoadNetwork(reader, Main, _mainSgd);
        _mainSgd.Steps = reader.ReadInt64("optimizer.steps");
        if (Mapping is not null)
        {
            LoadNetwork(reader, Mapping, _mappingSgd);
            _mappingSgd!.Steps = reader.ReadInt64("optimizer.mapping.steps");
        }
        int c = Clustering.Config.ClassCount, m = Clustering.Config.FeatureDim;
        Clustering.WriteState(new ClusteringState(reader.ReadFloats("dicc.centers", (long)c * m), reader.ReadBools("dicc.seen", c),
            reader.ReadInt64("dicc.step")));
    }
}
