using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Clustering;
using Dicc.Engine.Layers;
using Dicc.Engine.Optim;
using Dicc.Engine.Tensors;
using Dicc.Engine.Training;

namespace Dicc.Engine.Models;

/// <summary>DICC's own settings (docs/method.md): the clustering step, the label mapping and the training variants.</summary>
public sealed record DiccOptions
{
    /// <summary>The paper's mapping: the MLP.</summary>
    public const MappingKind DefaultMapping = MappingKind.Mlp;
    /// <summary>The mapping MLP's hidden width.</summary>
    public const int DefaultMappingHidden = 128;
    /// <summary>The mapping trains at the main learning rate (the paper's single rate).</summary>
    public const double DefaultMappingLearningRateScale = 1.0;
    /// <summary>A trained mapping reads the subclass probabilities (the paper).</summary>
    public const MappingInput DefaultMappingInput = MappingInput.Softmax;
    /// <summary>No warm-up: the clustering starts with the first step (the paper).</summary>
    public const int DefaultWarmupEpochs = 0;
    /// <summary>The mapping trains alone; the backbone never sees the mapped-class loss (the paper).</summary>
    public const double DefaultJointWeight = 0;

    /// <summary>Subclass plan, partition and EMA decay; its feature width must be the backbone's.</summary>
    public required ClusteringConfig Clustering { get; init; }

    /// <summary>The label mapping: the paper's MLP, a linear layer, or the sum ablation.</summary>
    public MappingKind Mapping { get; init; } = DefaultMapping;

    /// <summary>Hidden width H of the label-mapping MLP (the paper's 128).</summary>
    public int MappingHidden { get; init; } = DefaultMappingHidden;

    /// <summary>
    /// The trained mapping's learning rate as a multiple of the main one (1 = the paper's single learning rate).
    /// The MLP sees near-uniform subclass probabilities early in training, so it learns slowly at the
    /// backbone's rate; a larger multiple lets it follow sooner.
    /// </summary>
    public double MappingLearningRateScale { get; init; } = DefaultMappingLearningRateScale;

    /// <summary>The subclass softmax (the paper) or the subclass logits as the trained mapping's input.</summary>
    public MappingInput MappingInput { get; init; } = DefaultMappingInput;

    /// <summary>
    /// Epochs of plain class cross-entropy before the clustering starts: the class logit is the mean of its
    /// subclasses' logits (docs/method.md, "Variants"). 0 = the paper.
    /// </summary>
    public int WarmupEpochs { get; init; } = DefaultWarmupEpochs;

    /// <summary>
    /// Weight w of the mapped-class cross-entropy in the main network's loss: the backbone and subclass head
    /// minimise CE(subclass) + w * CE(mapping(subclass head), class). 0 = the paper (the mapping is trained
    /// alone, on detached inputs). Needs a trained mapping.
    /// </summary>
    public double JointWeight { get; init; } = DefaultJointWeight;
}

/// <summary>
/// The DICC model (docs/method.md): backbone + subclass head Linear(F -> K) ("main" network) and a label mapping
/// K -> C ("mapping": the paper's MLP K -> H -> H -> C, one linear layer, or the fixed sum). A training step has two phases:
/// 1. forward the main network; cluster the detached backbone features of each class around its EMA centre
///    into pseudo-labels; CE(subclass logits, pseudo-labels); backward; SGD on the main network;
/// 2. the phase-1 subclass logits (detached), or their softmax (the paper) -> mapping; CE(mapping logits, true labels);
///    backward; SGD on the mapping only.
/// Variants (each off by default): a warm-up of plain class cross-entropy on the mean subclass logit per class before
/// the clustering starts, and a joint loss in which phase 1 also backpropagates w * CE(mapping) into the main network.
/// Inference: main network -> softmax -> mapping -> class probabilities; the clustering module is not used.
/// With the reweight rule every loss weights samples by their true class.
/// </summary>
public sealed class DiccModel : ExpressionModel
{
    private readonly Sgd _mainSgd;
    private readonly Sgd? _mappingSgd;
    private readonly SoftmaxCrossEntropyLoss _subclassLoss, _mappingLoss, _warmupLoss;
    private readonly StepContext _context;
    private readonly GrowOnlyBuffer _pseudo, _subclassProbabilities, _classProbabilities, _classLogits, _classGrad;
    private readonly GrowOnlyBuffer _mappingInputGrad, _jointProduct, _jointRowSum, _jointBroadcast, _jointScaled, _axpyScratch;
    private readonly Tensor? _sumMatrix;
    private readonly Tensor _meanMatrix, _meanMatrixTransposed, _onesRow, _onesColumn;
    private readonly Sequential _mainRoot;
    private bool _warmup;

    /// <summary>The DICC model on <paramref name="backend"/>: the VGG backbone, a subclass head over the plan's K pseudo-labels, the clustering module and the label mapping.</summary>
    public DiccModel(Backend backend, VggOptions vgg, int classes, DiccOptions dicc, ModelTrainingOptions options) : base(backend, classes)
    {
        var plan = dicc.Clustering.Plan;
        if (plan.ClassCount != classes)
            throw new ArgumentException($"The subclass plan covers {plan.ClassCount} classes; the data has {classes}.");
        if (dicc.MappingHidden <= 0) throw new ArgumentException($"Mapping hidden width must be positive, got {dicc.MappingHidden}.");
        if (!(dicc.MappingLearningRateScale > 0) || double.IsInfinity(dicc.MappingLearningRateScale))
            throw new ArgumentException($"Mapping learning-rate scale must be positive, got {dicc.MappingLearningRateScale}.");
        if (dicc.WarmupEpochs < 0) throw new ArgumentException($"Warm-up epochs must be non-negative, got {dicc.WarmupEpochs}.");
        if (!(dicc.JointWeight >= 0) || double.IsInfinity(dicc.JointWeight))
            throw new ArgumentException($"Joint weight must be finite and non-negative, got {dicc.JointWeight}.");
        if (dicc.Mapping == MappingKind.Sum && (dicc.MappingInput != MappingInput.Softmax || dicc.JointWeight > 0))
            throw new ArgumentException("The sum mapping adds subclass probabilities: it takes no logits input and has no loss to train jointly.");
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
        _warmupLoss = new SoftmaxCrossEntropyLoss(backend, classes, options.ClassWeights);

        if (dicc.Mapping != MappingKind.Sum)
        {
            int h = dicc.MappingHidden;
            Layer root = dicc.Mapping == MappingKind.Mlp
                ? new Sequential(new Linear(k, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, classes))
                : new Sequential(new Linear(k, classes));
            Mapping = new Network(root, backend, options.Seed, name: "mapping");
            _mappingSgd = new Sgd(Mapping.Parameters, options.Sgd);
        }
        else
        {
            // sum mapping as a fixed [C, K] 0/1 matrix: p_c = sum of p_k over the subclasses k of c.
            _sumMatrix = Constant(backend, classes, k, (c, j) => plan.ClassOf(j) == c ? 1f : 0f);
        }
        // Warm-up: class logit c = mean of the logits of c's subclasses, z_C = z A^T with A [C, K]; its gradient is dz = dz_C A.
        _meanMatrix = Constant(backend, classes, k, (c, j) => plan.ClassOf(j) == c ? 1f / plan.Count(c) : 0f);
        _meanMatrixTransposed = Constant(backend, k, classes, (j, c) => plan.ClassOf(j) == c ? 1f / plan.Count(c) : 0f);
        // Row sums and their broadcast back over the K columns (the softmax backward of the joint variant).
        _onesRow = Constant(backend, 1, k, (_, _) => 1f);
        _onesColumn = Constant(backend, k, 1, (_, _) => 1f);
        _context = new StepContext { Training = true, Seed = options.Seed };
        _pseudo = new GrowOnlyBuffer(backend);
        _subclassProbabilities = new GrowOnlyBuffer(backend);
        _classProbabilities = new GrowOnlyBuffer(backend);
        _classLogits = new GrowOnlyBuffer(backend);
        _classGrad = new GrowOnlyBuffer(backend);
        _mappingInputGrad = new GrowOnlyBuffer(backend);
        _jointProduct = new GrowOnlyBuffer(backend);
        _jointRowSum = new GrowOnlyBuffer(backend);
        _jointBroadcast = new GrowOnlyBuffer(backend);
        _jointScaled = new GrowOnlyBuffer(backend);
        _axpyScratch = new GrowOnlyBuffer(backend);
    }

    private static Tensor Constant(Backend backend, int rows, int columns, Func<int, int, float> value)
    {
        var host = new float[rows * columns];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++) host[r * columns + c] = value(r, c);
        var t = backend.Create(new Shape(rows, columns));
        backend.CopyIn<float>(t, host);
        return t;
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
    protected override IEnumerable<Network> TrainedNetworks => Mapping is null ? [Main] : [Main, Mapping];

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) =>
        Main.ForwardFlops(input) + (Mapping?.ForwardFlops(new Shape(input[0], Options.Clustering.SubclassCount)) ?? 0);

    /// <summary>The backbone features [N, F] of the latest forward pass (what the clustering sees).</summary>
    public Tensor Features => _mainRoot.ActivationBefore(1);

    /// <summary>Pseudo-labels [N] of the latest training step (device, int32); null before the clustering has run.</summary>
    public Tensor? LastPseudoLabels { get; private set; }

    /// <summary>Whether the current epoch is a warm-up epoch (plain class cross-entropy, no clustering).</summary>
    public bool InWarmup => _warmup;

    /// <inheritdoc/>
    public override void BeginEpoch(int epoch) => _warmup = epoch < Options.WarmupEpochs;

    /// <inheritdoc/>
    public override void TrainStep(Tensor images, Tensor labels, float learningRate)
    {
        int n = images.Shape[0];
        _context.Training = true;
        _context.Step = _mainSgd.Steps;

        // Phase 1: subclass logits; their gradient from the pseudo-labels (or, in the warm-up, from the classes).
        var subclassLogits = Main.Forward(images, _context);
        if (_warmup)
        {
            var classLogits = _classLogits.View(new Shape(n, Classes));
            var classGrad = _classGrad.View(classLogits.Shape);
            Backend.LinearForward(subclassLogits, _meanMatrix, null, classLogits);
            _warmupLoss.Compute(classLogits, labels, classGrad);
            Backend.LinearForward(classGrad, _meanMatrixTransposed, null, Main.OutputGrad);
        }
        else
        {
            var pseudo = AssignPseudoLabels(Features, labels, n);
            _subclassLoss.Compute(subclassLogits, pseudo, Main.OutputGrad);
        }

        // Phase 2: the mapping learns true labels from the detached phase-1 output; the joint variant also passes
        // w * dCE(mapping)/d(subclass logits) to the main network.
        bool joint = Mapping is not null && Options.JointWeight > 0 && !_warmup;
        Tensor? input = null;
        if (Mapping is not null)
        {
            input = MappingInputOf(subclassLogits);
            var classLogits = Mapping.Forward(input, _context);
            _mappingLoss.Compute(classLogits, labels, Mapping.OutputGrad);
            var inputGrad = joint ? _mappingInputGrad.View(input.Shape) : null;
            Mapping.Backward(input, _context, inputGrad);
            if (joint) AddJointGradient(input, inputGrad!, Main.OutputGrad, (float)Options.JointWeight);
        }

        Main.Backward(images, _context);
        _mainSgd.Step(learningRate);
        _mappingSgd?.Step((float)(learningRate * Options.MappingLearningRateScale));
    }

    /// <summary>The trained mapping's input: the subclass softmax (the paper) or the logits themselves.</summary>
    private Tensor MappingInputOf(Tensor subclassLogits)
    {
        if (Options.MappingInput == MappingInput.Logits) return subclassLogits;
        var probabilities = _subclassProbabilities.View(subclassLogits.Shape);
        Backend.Softmax(subclassLogits, probabilities);
        return probabilities;
    }

    /// <summary>
    /// dz += w * dL/dz for the mapping loss L, from its gradient g = dL/d(input). With logits as input dL/dz = g;
    /// with the softmax p as input it is the softmax backward <c>p * (g - sum_k p_k g_k)</c>, composed from existing
    /// backend ops (elementwise products, row sums and their broadcast as products with a ones vector, and two
    /// axpy updates done by <see cref="Axpy"/>), so it runs on every backend.
    /// </summary>
    private void AddJointGradient(Tensor input, Tensor inputGrad, Tensor dz, float weight)
    {
        if (Options.MappingInput == MappingInput.Logits)
        {
            Axpy(dz, inputGrad, -weight);
            return;
        }
        int n = input.Shape[0];
        var pg = _jointProduct.View(input.Shape);
        var rowSum = _jointRowSum.View(new Shape(n, 1));
        var broadcast = _jointBroadcast.View(input.Shape);
        var ps = _jointScaled.View(input.Shape);
        Backend.Multiply(inputGrad, input, pg);                      // p * g
        Backend.LinearForward(pg, _onesRow, null, rowSum);           // s = sum_k p_k g_k, [N, 1]
        Backend.LinearForward(rowSum, _onesColumn, null, broadcast); // s broadcast to [N, K]
        Backend.Multiply(broadcast, input, ps);                      // p * s
        Axpy(ps, pg, 1f);                                            // p * s - p * g = -dL/dz
        Axpy(dz, ps, weight);                                        // dz - w * (p * s - p * g) = dz + w * dL/dz
    }

    /// <summary>
    /// <c>target -= scale * source</c> (elementwise, same shape) as an SGD step without momentum or weight decay:
    /// with momentum 0 the velocity is the gradient, so <c>w -= lr * g</c> exactly, in the backends' SGD rounding.
    /// </summary>
    private void Axpy(Tensor target, Tensor source, float scale)
    {
        var scratch = _axpyScratch.View(target.Shape);
        Backend.Fill(scratch, 0f); // the velocity becomes 0 * v + g: v must be finite
        Backend.SgdStep(target, source, scratch, scale, 0f, 0f, nesterov: false);
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
        (_warmup ? _warmupLoss.Read() : _subclassLoss.Read(), Mapping is null ? float.NaN : _mappingLoss.Read());

    /// <inheritdoc/>
    public override Tensor PredictProbabilities(Tensor images)
    {
        _context.Training = false;
        var subclassLogits = Main.Forward(images, _context);
        var result = _classProbabilities.View(new Shape(images.Shape[0], Classes));
        if (_warmup)
        {
            var classLogits = _classLogits.View(result.Shape);
            Backend.LinearForward(subclassLogits, _meanMatrix, null, classLogits);
            Backend.Softmax(classLogits, result);
        }
        else if (Mapping is not null)
            Backend.Softmax(Mapping.Forward(MappingInputOf(subclassLogits), _context), result);
        else
        {
            var probabilities = _subclassProbabilities.View(subclassLogits.Shape);
            Backend.Softmax(subclassLogits, probabilities);
            Backend.LinearForward(probabilities, _sumMatrix!, null, result);
        }
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
