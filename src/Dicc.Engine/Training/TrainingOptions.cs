using System.Globalization;
using System.Text.Json.Serialization;
using Dicc.Engine.Clustering;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Models;
using Dicc.Engine.Optim;

namespace Dicc.Engine.Training;

/// <summary>What is trained.</summary>
public enum TrainingMethod
{
    /// <summary>The plain classifier.</summary>
    Baseline,
    /// <summary>DICC: clustering pseudo-labels and the label mapping.</summary>
    Dicc,
}

/// <summary>Which part of the model does not train (<c>dicc train --freeze</c>).</summary>
public enum FreezeKind
{
    /// <summary>Everything trains.</summary>
    None,

    /// <summary>The backbone is frozen (evaluation mode, weights as loaded by <see cref="TrainingOptions.InitFrom"/>); only the head trains: cRT.</summary>
    Backbone,
}

/// <summary>Which validation score picks the model that is tested (docs/evaluation.md, "Model selection").</summary>
public enum ModelSelection
{
    /// <summary>Top-1 accuracy: the paper's protocol, and what every run before this setting used.</summary>
    Accuracy,

    /// <summary>Mean per-class recall: a long-tailed run is not rewarded for predicting the head class (the default).</summary>
    BalancedAccuracy,

    /// <summary>Unweighted mean F1 over the classes.</summary>
    MacroF1,

    /// <summary>No selection: the last epoch's model.</summary>
    Last,
}

/// <summary>Names, parsing and scores of <see cref="ModelSelection"/>.</summary>
public static class ModelSelections
{
    /// <summary>The name on the command line and in tables: accuracy, balanced-accuracy, macro-f1, last.</summary>
    public static string Name(this ModelSelection s) => s switch
    {
        ModelSelection.Accuracy => "accuracy",
        ModelSelection.BalancedAccuracy => "balanced-accuracy",
        ModelSelection.MacroF1 => "macro-f1",
        ModelSelection.Last => "last",
        _ => throw new ArgumentOutOfRangeException(nameof(s), s, null),
    };

    /// <summary>Parses a name (hyphens or underscores, any case).</summary>
    public static ModelSelection Parse(string text)
    {
        string key = text.Trim().ToLowerInvariant().Replace('_', '-');
        foreach (var s in Enum.GetValues<ModelSelection>())
            if (s.Name() == key) return s;
        throw new InputException($"selectOn '{text}' is not one of accuracy, balanced-accuracy, macro-f1, last.") { Parameter = "selectOn" };
    }

    /// <summary>The validation score an epoch is selected on (higher is better); NaN for <see cref="ModelSelection.Last"/>.</summary>
    public static double Score(this ModelSelection s, Evaluation.EvaluationReport validation) => s switch
    {
        ModelSelection.Accuracy => validation.Accuracy,
        ModelSelection.BalancedAccuracy => validation.BalancedAccuracy,
        ModelSelection.MacroF1 => validation.MacroF1,
        _ => double.NaN,
    };
}

/// <summary>
/// Every setting of a training run (saved as the run's config.json, so a run can be resumed and reproduced).
/// Defaults are the paper preset (docs/method.md, "Presets").
/// </summary>
public sealed record TrainingOptions
{
    // ---- model
    /// <summary>The VGG depth (default VGG19).</summary>
    public VggDepth Arch { get; init; } = VggDepth.Vgg19;
    /// <summary>The channel width multiplier (1 = the paper's network).</summary>
    public double Width { get; init; } = 1.0;
    /// <summary>Dropout on the feature vector in training.</summary>
    public float Dropout { get; init; } = 0.5f;

    /// <summary>Training crop and test crop side (the 48x48 images are cropped to 44).</summary>
    public int Crop { get; init; } = 44;

    /// <summary>The baseline's classifier layer: linear (the paper) or cosine (LDAM's normalised head).</summary>
    public ClassifierHead Head { get; init; } = ClassifierHead.Linear;

    /// <summary>
    /// A run directory (its selected model, checkpoints/best.safetensors) or a checkpoint file whose weights and BatchNorm
    /// statistics initialise the baseline before the first epoch; null = drawn from the seed. A resumed run continues
    /// from its own checkpoint instead.
    /// </summary>
    public string? InitFrom { get; init; }

    /// <summary>Which part does not train; <see cref="FreezeKind.Backbone"/> needs <see cref="InitFrom"/> (cRT).</summary>
    public FreezeKind Freeze { get; init; } = FreezeKind.None;

    /// <summary>With <see cref="InitFrom"/>: keep the freshly drawn head instead of the loaded one (cRT re-trains a new classifier).</summary>
    public bool ResetHead { get; init; }

    // ---- method
    /// <summary>Baseline or DICC.</summary>
    public TrainingMethod Method { get; init; } = TrainingMethod.Baseline;
    /// <summary>The imbalance rule: none, resample or reweight.</summary>
    public ImbalanceRule Rule { get; init; } = ImbalanceRule.None;

    /// <summary>The baseline's loss (docs/method.md, "Long-tail losses"): ce, focal, ldam, balanced-softmax or logit-adjusted.</summary>
    public LossKind Loss { get; init; } = LossKind.CrossEntropy;
    /// <summary>Focal loss: the exponent gamma.</summary>
    public double FocalGamma { get; init; } = LossOptions.DefaultFocalGamma;
    /// <summary>Weight the loss with Cui et al.'s class-balanced weights from the first epoch (focal's CB option).</summary>
    public bool CbWeights { get; init; }
    /// <summary>LDAM: the logit scale s.</summary>
    public double LdamScale { get; init; } = LossOptions.DefaultLdamScale;
    /// <summary>LDAM: the largest margin (the rarest class's).</summary>
    public double LdamMaxMargin { get; init; } = LossOptions.DefaultLdamMaxMargin;
    /// <summary>Deferred re-weighting (LDAM-DRW): the epoch, counting from 1, from which the class-balanced weights apply; 0 = never.</summary>
    public int DrwEpoch { get; init; }
    /// <summary>The logit-adjusted loss's tau.</summary>
    public double Tau { get; init; } = LossOptions.DefaultTau;

    /// <summary>
    /// Post-hoc logit adjustment (Menon et al. 2021) of the baseline at prediction: <c>softmax(z - tau log pi)</c> in
    /// validation, test and inference; 0 = off. Training is unchanged.
    /// </summary>
    public double PosthocTau { get; init; }

    /// <summary>The loss settings as the model takes them.</summary>
    [JsonIgnore]
    public LossOptions LossOptions => new()
    {
        Kind = Loss, FocalGamma = FocalGamma, ClassBalancedWeights = CbWeights, LdamScale = LdamScale, LdamMaxMargin = LdamMaxMargin,
        DrwEpoch = DrwEpoch, Tau = Tau,
    };

    /// <summary>auto, sqrt, an explicit list ("8,1,20,..."), or a Table 5 preset name (docs/method.md).</summary>
    public string Subclasses { get; init; } = SubclassPlan.AutoKeyword;
    /// <summary>DICC's partition of a class into subclasses by distance.</summary>
    public PartitionMode Partition { get; init; } = ClusteringConfig.DefaultPartition;
    /// <summary>DICC's EMA decay of the class centres.</summary>
    public double EmaDecay { get; init; } = ClusteringConfig.DefaultEmaDecay;
    /// <summary>DICC's label mapping: the MLP (the paper), a linear layer, or the sum ablation.</summary>
    public MappingKind Mapping { get; init; } = DiccOptions.DefaultMapping;
    /// <summary>The hidden width of the mapping MLP.</summary>
    public int MappingHidden { get; init; } = DiccOptions.DefaultMappingHidden;

    /// <summary>The mapping's learning rate as a multiple of the main learning rate (1 = the paper).</summary>
    public double MappingLrScale { get; init; } = DiccOptions.DefaultMappingLearningRateScale;

    /// <summary>What the mapping reads: the subclass softmax (the paper) or the subclass logits.</summary>
    public MappingInput MappingInput { get; init; } = DiccOptions.DefaultMappingInput;

    /// <summary>DICC: epochs of plain class cross-entropy before the clustering starts (0 = the paper).</summary>
    public int WarmupEpochs { get; init; } = DiccOptions.DefaultWarmupEpochs;

    /// <summary>DICC: weight of the mapped-class cross-entropy in the backbone's loss (0 = the paper: the mapping is trained alone).</summary>
    public double JointWeight { get; init; } = DiccOptions.DefaultJointWeight;

    // ---- optimisation
    /// <summary>The preset the defaults came from (paper or fer).</summary>
    public string Preset { get; init; } = "paper";
    /// <summary>Training epochs.</summary>
    public int Epochs { get; init; } = 200;
    /// <summary>Images per training step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>The base learning rate.</summary>
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>L2 weight decay.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Learning-rate schedule text (see <see cref="LearningRateSchedule.Parse"/>).</summary>
    public string Schedule { get; init; } = "constant";

    // ---- evaluation
    /// <summary>Average the ten crops at test time (the fer preset's protocol).</summary>
    public bool TenCropTest { get; init; }
    /// <summary>Images per evaluation forward pass.</summary>
    public int EvalBatchSize { get; init; } = 128;

    /// <summary>Shot-group rule for many/medium/few accuracy (see docs/evaluation.md).</summary>
    public string ShotGroups { get; init; } = "rank";

    /// <summary>
    /// The validation score that selects the tested model (docs/evaluation.md, "Model selection"). A config.json
    /// without this field was written before it existed and selected on accuracy (<see cref="RunDirectory.ReadConfig"/>).
    /// </summary>
    public ModelSelection SelectOn { get; init; } = ModelSelection.BalancedAccuracy;

    // ---- run
    /// <summary>The seed of weights, sample order, crops and dropout.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Read the loss back every this many steps (each read is a device sync).</summary>
    public int LogEvery { get; init; } = 10;

    /// <summary>The parsed <see cref="Schedule"/> starting at <see cref="LearningRate"/>.</summary>
    [JsonIgnore]
    public LearningRateSchedule LearningRateSchedule => LearningRateSchedule.Parse(Schedule, LearningRate);

    /// <summary>Checks every value; throws an <see cref="InputException"/> naming the first bad one.</summary>
    public void Validate()
    {
        static void Require(bool ok, string parameter, string problem)
        {
            if (!ok) throw new InputException($"{parameter} {problem}") { Parameter = parameter };
        }
        string Text(double v) => v.ToString(CultureInfo.InvariantCulture);
        Require(Enum.IsDefined(Arch), "arch", $"{(int)Arch} is not an architecture.");
        Require(Width > 0 && Width <= 4, "width", $"must be in (0, 4], got {Text(Width)}.");
        Require(Dropout >= 0 && Dropout < 1, "dropout", $"must be in [0, 1), got {Text(Dropout)}.");
        Require(Crop >= 32 && Crop <= 63, "crop", $"must be in 32..63, got {Crop}.");
        ClusteringConfig.ValidateEmaDecay(EmaDecay);
        Require(MappingHidden > 0, "mappingHidden", $"must be positive, got {MappingHidden}.");
        Require(MappingLrScale > 0 && double.IsFinite(MappingLrScale), "mappingLrScale", $"must be positive, got {Text(MappingLrScale)}.");
        Require(Enum.IsDefined(Mapping), "mapping", $"{(int)Mapping} is not a mapping (mlp, linear or sum).");
        Require(Enum.IsDefined(MappingInput), "mappingInput", $"{(int)MappingInput} is not a mapping input (softmax or logits).");
        Require(Enum.IsDefined(SelectOn), "selectOn", $"{(int)SelectOn} is not a selection (accuracy, balanced-accuracy, macro-f1 or last).");
        Require(Epochs > 0, "epochs", $"must be positive, got {Epochs}.");
        Require(WarmupEpochs >= 0, "warmupEpochs", $"must be non-negative, got {WarmupEpochs}.");
        Require(JointWeight >= 0 && double.IsFinite(JointWeight), "jointWeight", $"must be non-negative, got {Text(JointWeight)}.");
        if (Method == TrainingMethod.Dicc)
        {
            Require(WarmupEpochs < Epochs, "warmupEpochs",
                $"({WarmupEpochs}) must be less than epochs ({Epochs}): DICC must train at least one epoch after the warm-up.");
            Require(Mapping != MappingKind.Sum || MappingInput == MappingInput.Softmax, "mappingInput",
                "logits needs a trained mapping (mlp or linear): the sum mapping adds subclass probabilities.");
            Require(Mapping != MappingKind.Sum || JointWeight == 0, "jointWeight",
                "needs a trained mapping (mlp or linear); with the sum mapping there is no mapped loss to train jointly.");
        }
        Require(Enum.IsDefined(Loss), "loss", $"{(int)Loss} is not a loss ({string.Join(", ", LossKinds.Names)}).");
        Require(FocalGamma >= 0 && double.IsFinite(FocalGamma), "focalGamma", $"must be non-negative, got {Text(FocalGamma)}.");
        Require(LdamScale > 0 && double.IsFinite(LdamScale), "ldamScale", $"must be positive, got {Text(LdamScale)}.");
        Require(LdamMaxMargin > 0 && double.IsFinite(LdamMaxMargin), "ldamMaxMargin", $"must be positive, got {Text(LdamMaxMargin)}.");
        Require(double.IsFinite(Tau), "tau", $"must be finite, got {Text(Tau)}.");
        Require(double.IsFinite(PosthocTau), "posthocTau", $"must be finite, got {Text(PosthocTau)}.");
        Require(DrwEpoch >= 0 && DrwEpoch <= Epochs, "drwEpoch", $"must be in 0..epochs ({Epochs}), got {DrwEpoch}.");
        Require(Enum.IsDefined(Head), "head", $"{(int)Head} is not a head (linear or cosine).");
        Require(Enum.IsDefined(Freeze), "freeze", $"{(int)Freeze} is not a part to freeze (none or backbone).");
        Require(Freeze == FreezeKind.None || InitFrom is not null, "freeze",
            "backbone needs trained weights to keep: give --init-from RUN (a frozen random backbone learns nothing).");
        Require(!ResetHead || InitFrom is not null, "resetHead", "keeps a fresh head instead of the one --init-from loads; give --init-from RUN.");
        Require(InitFrom is null || InitFrom.Trim().Length > 0, "initFrom", "is empty; give a run directory or a checkpoint file.");
        if (Method == TrainingMethod.Dicc)
        {
            Require(Loss == LossKind.CrossEntropy, "loss", $"{Loss.Name()} trains the baseline; DICC keeps its cross-entropies (use --method baseline).");
            Require(!CbWeights, "cbWeights", "weights the baseline's loss; for DICC use --rule reweight.");
            Require(DrwEpoch == 0, "drwEpoch", "re-weights the baseline's loss; DICC has no deferred re-weighting.");
            Require(PosthocTau == 0, "posthocTau", "adjusts the baseline's logits; DICC's mapping has no post-hoc adjustment.");
            Require(Head == ClassifierHead.Linear, "head", "cosine is the baseline's classifier; DICC's subclass head is linear (use --method baseline).");
            Require(InitFrom is null, "initFrom", "initialises the baseline; DICC starts from its seed (use --method baseline).");
            Require(Freeze == FreezeKind.None, "freeze", "backbone re-trains the baseline's head (cRT); use --method baseline.");
        }
        Require(!CbWeights || Rule != ImbalanceRule.Reweight, "cbWeights", "repeats --rule reweight (the same class-balanced weights); choose one.");
        Require(DrwEpoch == 0 || Rule != ImbalanceRule.Reweight, "drwEpoch", "defers the class-balanced weights that --rule reweight applies from the start; choose one.");
        Require(DrwEpoch == 0 || !CbWeights, "drwEpoch", "defers the class-balanced weights that cbWeights applies from the start; choose one.");
        Require(BatchSize >= 2, "batchSize", $"must be at least 2 (batch normalisation needs two samples), got {BatchSize}.");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), "learningRate", $"must be positive, got {Text(LearningRate)}.");
        Require(Momentum >= 0 && Momentum < 1, "momentum", $"must be in [0, 1), got {Text(Momentum)}.");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), "weightDecay", $"must be non-negative, got {Text(WeightDecay)}.");
        Require(EvalBatchSize > 0, "evalBatchSize", $"must be positive, got {EvalBatchSize}.");
        Require(LogEvery > 0, "logEvery", $"must be positive, got {LogEvery}.");
        try { _ = LearningRateSchedule; }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new InputException($"schedule '{Schedule}': {e.Message}") { Parameter = "schedule" };
        }
    }

    /// <summary>The SGD settings both optimisers use.</summary>
    public SgdOptions Sgd => new() { Momentum = (float)Momentum, WeightDecay = (float)WeightDecay };
}

/// <summary>The two named presets (docs/method.md, "Presets").</summary>
public static class TrainingPresets
{
    /// <summary>The preset names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["paper", "fer"];

    /// <summary>The paper's setup: SGD momentum 0.9, lr 1e-4 constant, 200 epochs, batch 32, crop + flip.</summary>
    public static TrainingOptions Paper { get; } = new();

    /// <summary>What FER repositories use: lr 0.01, batch 128, wd 5e-4, x0.9 every 5 epochs after 80, 250 epochs, ten-crop test.</summary>
    public static TrainingOptions Fer { get; } = new()
    {
        Preset = "fer",
        Epochs = 250,
        BatchSize = 128,
        LearningRate = 0.01,
        WeightDecay = 5e-4,
        Schedule = "decay-after:80:5:0.9",
        TenCropTest = true,
    };

    /// <summary>The preset's options; throws an <see cref="InputException"/> (parameter "preset") for an unknown name.</summary>
    public static TrainingOptions Get(string name) => name.Trim().ToLowerInvariant() switch
    {
        "paper" => Paper,
        "fer" => Fer,
        _ => throw new InputException($"preset '{name}' is unknown; use paper or fer.") { Parameter = "preset" },
    };
}
