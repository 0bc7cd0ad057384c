using System.Globalization;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Clustering;
using Dicc.Engine.Data;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Models;
using Dicc.Engine.Training;
using Spectre.Console.Cli;

namespace Dicc.Cli.Training;

/// <summary>The options of <c>dicc train</c> (docs/cli.md). Unset values come from the preset.</summary>
public sealed class TrainSettings : Commands.FaceCropSettings
{
    [CommandOption("--data <PATH>")]
    [OptionHelp("Training data: an image folder (root/<split>/<class>/*), a FER2013 CSV, a long-tail manifest, a .diccpack, or synthetic[:per-class=600,beta=10,seed=1].")]
    public string? Data { get; init; }

    [CommandOption("--val <PATH>")]
    [OptionHelp("Validation data, when it is not part of --data (else a seeded, stratified 10% of train is held out).")]
    public string? Validation { get; init; }

    [CommandOption("--test <PATH>")]
    [OptionHelp("Test data, when it is not part of --data.")]
    public string? Test { get; init; }

    [CommandOption("--classes <LIST>")]
    [OptionHelp("Class folder names in label order, for folders that are not the FER2013 names.")]
    public string? Classes { get; init; }

    [CommandOption("--class-map <MAP>")]
    [OptionHelp("Class folders named otherwise, as FOLDER=CLASS pairs: 1=surprise,2=fear,... for datasets with numbered class folders.")]
    public string? ClassMap { get; init; }

    [CommandOption("--allow-missing-classes")]
    [OptionHelp("Train even when a class has no training images (a missing or empty class folder); by default that is an error naming the class.")]
    public bool AllowMissingClasses { get; init; }

    [CommandOption("--test-fraction <F>")]
    [OptionHelp("When the data has no test split: hold out this seeded, stratified fraction of each training class as the test split (e.g. 0.1).")]
    public double? TestFraction { get; init; }

    [CommandOption("--allow-data-change")]
    [OptionHelp("With --resume: continue although the data's fingerprint differs from the run's (the change is intended).")]
    public bool AllowDataChange { get; init; }

    [CommandOption("--on-bad-image <POLICY>")]
    [OptionHelp("fail (default) or skip: what to do with a corrupt or unreadable image.")]
    public string? OnBadImage { get; init; }

    [CommandOption("--detect-faces")]
    [OptionHelp("Whole-head images or photos: crop the largest face found in each image (OpenCV's Haar cascade); an image without a face is a bad image (--on-bad-image).")]
    public bool DetectFaces { get; init; }

    [CommandOption("--folds <K>")]
    [OptionHelp("Subject-independent K-fold cross-validation (with --group-by): every image of --data is tested once, in OUT/fold-<i>; no subject is in two folds.")]
    public int? Folds { get; init; }

    [CommandOption("--group-by <REGEX>")]
    [OptionHelp("With --folds: the subject of an image, the first group of this regular expression matched against its file name; presets ck+ (S010_004_00000017.png: S010) and jaffe (KA.HA1.29.tiff: KA).")]
    public string? GroupBy { get; init; }

    [CommandOption("--dataset-name <NAME>")]
    [OptionHelp("Name shown in comparison tables (default: the data folder's name).")]
    public string? DatasetName { get; init; }

    [CommandOption("--method <METHOD>")]
    [OptionHelp("baseline (default) or dicc.")]
    public string? Method { get; init; }

    [CommandOption("--rule <RULE>")]
    [OptionHelp("none (default), resample or reweight (effective-number class balancing).")]
    public string? Rule { get; init; }

    [CommandOption("--loss <LOSS>")]
    [OptionHelp("Baseline loss: ce (default), focal, ldam, balanced-softmax or logit-adjusted (docs/method.md, \"Long-tail losses\").")]
    public string? Loss { get; init; }

    [CommandOption("--focal-gamma <G>")]
    [OptionHelp("Focal loss exponent gamma (default 2).")]
    public double? FocalGamma { get; init; }

    [CommandOption("--cb-weights")]
    [OptionHelp("Weight the loss with the class-balanced (effective-number) weights from the first epoch, e.g. class-balanced focal.")]
    public bool? CbWeights { get; init; }

    [CommandOption("--ldam-scale <S>")]
    [OptionHelp("LDAM logit scale s (default 30).")]
    public double? LdamScale { get; init; }

    [CommandOption("--ldam-max-margin <M>")]
    [OptionHelp("LDAM margin of the rarest class; margins are proportional to n^(-1/4) (default 0.5).")]
    public double? LdamMaxMargin { get; init; }

    [CommandOption("--drw-epoch <E>")]
    [OptionHelp("Deferred re-weighting: class-balanced weights from epoch E (counting from 1) on (default 0: never). LDAM-DRW is --loss ldam --drw-epoch E.")]
    public int? DrwEpoch { get; init; }

    [CommandOption("--tau <T>")]
    [OptionHelp("Logit-adjusted loss: the logits get tau x log prior added (default 1).")]
    public double? Tau { get; init; }

    [CommandOption("--posthoc-tau <T>")]
    [OptionHelp("Post-hoc logit adjustment of the baseline: predictions (validation, test, predict, export) from logits - T x log prior (default 0: off).")]
    public double? PosthocTau { get; init; }

    [CommandOption("--head <HEAD>")]
    [OptionHelp("Baseline classifier layer: linear (default) or cosine (logits = cosines in [-1, 1]; the head LDAM's scale s assumes: use it with --loss ldam).")]
    public string? Head { get; init; }

    [CommandOption("--init-from <RUN>")]
    [OptionHelp("Start the baseline from another baseline run's selected model (a run directory or a .safetensors checkpoint of the same arch and width).")]
    public string? InitFrom { get; init; }

    [CommandOption("--freeze <PART>")]
    [OptionHelp("none (default) or backbone: only the head trains; the backbone (from --init-from) runs in evaluation mode. cRT is --init-from RUN --freeze backbone --reset-head --rule resample.")]
    public string? Freeze { get; init; }

    [CommandOption("--reset-head")]
    [OptionHelp("With --init-from: load the backbone only and train a freshly drawn head.")]
    public bool? ResetHead { get; init; }

    [CommandOption("--subclasses <PLAN>")]
    [OptionHelp("DICC subclasses per class: auto (default), a list like 8,1,20,100,40,4,80, or a preset (fer2013-b10, fer2013-b100, mmafedb-b10, mmafedb-b100, emotiondomestic-b20, emotiondomestic-b100).")]
    public string? Subclasses { get; init; }

    [CommandOption("--partition <MODE>")]
    [OptionHelp("DICC partition: interval (the paper's equations, default) or rank (equal-size subclasses).")]
    public string? Partition { get; init; }

    [CommandOption("--ema-decay <M>")]
    [OptionHelp("Decay of the EMA class centres (default 0.99).")]
    public double? EmaDecay { get; init; }

    [CommandOption("--mapping <KIND>")]
    [OptionHelp("DICC label mapping: mlp (the paper's, default), linear (one trained layer) or sum (a class's probability is the sum of its subclasses').")]
    public string? Mapping { get; init; }

    [CommandOption("--mapping-input <KIND>")]
    [OptionHelp("What a trained DICC mapping reads: softmax (the subclass probabilities, the paper's, default) or logits.")]
    public string? MappingInput { get; init; }

    [CommandOption("--mapping-lr-scale <X>")]
    [OptionHelp("DICC mapping learning rate as a multiple of --lr (default 1, the paper's single rate).")]
    public double? MappingLrScale { get; init; }

    [CommandOption("--warmup-epochs <N>")]
    [OptionHelp("DICC: epochs of plain class cross-entropy before the clustering starts (default 0, the paper). Warm-up epochs are never selected.")]
    public int? WarmupEpochs { get; init; }

    [CommandOption("--joint-weight <W>")]
    [OptionHelp("DICC: the backbone also minimises W x the mapped-class cross-entropy (default 0, the paper: the mapping trains alone). Needs --mapping mlp or linear.")]
    public double? JointWeight { get; init; }

    [CommandOption("--select-on <SCORE>")]
    [OptionHelp("Validation score that selects the tested model: balanced-accuracy (default), accuracy (the paper's), macro-f1, or last (no selection).")]
    public string? SelectOn { get; init; }

    [CommandOption("--preset <NAME>")]
    [OptionHelp("paper (default: lr 1e-4, 200 epochs, batch 32) or fer (lr 0.01, batch 128, wd 5e-4, x0.9 every 5 epochs after 80, 250 epochs, ten-crop test).")]
    public string? Preset { get; init; }

    [CommandOption("--epochs <N>")]
    public int? Epochs { get; init; }

    [CommandOption("--batch <N>")]
    public int? Batch { get; init; }

    [CommandOption("--lr <X>")]
    [OptionHelp("Learning rate.")]
    public double? LearningRate { get; init; }

    [CommandOption("--wd <X>")]
    [OptionHelp("Weight decay.")]
    public double? WeightDecay { get; init; }

    [CommandOption("--momentum <X>")]
    public double? Momentum { get; init; }

    [CommandOption("--schedule <TEXT>")]
    [OptionHelp("constant, step:EVERY:GAMMA, decay-after:START:EVERY:GAMMA or cosine:EPOCHS[:MIN].")]
    public string? Schedule { get; init; }

    [CommandOption("--arch <ARCH>")]
    [OptionHelp("vgg11, vgg13, vgg16 or vgg19 (default).")]
    public string? Arch { get; init; }

    [CommandOption("--width <W>")]
    [OptionHelp("Channel width multiplier (1.0 = the paper's VGG19; 0.25 is practical on a CPU).")]
    public double? Width { get; init; }

    [CommandOption("--crop <N>")]
    [OptionHelp("Crop side for training (random) and testing (centre); default 44 of the 48x48 images.")]
    public int? Crop { get; init; }

    [CommandOption("--dropout <P>")]
    public double? Dropout { get; init; }

    [CommandOption("--ten-crop")]
    [OptionHelp("Evaluate the test split with ten-crop averaging.")]
    public bool? TenCrop { get; init; }

    [CommandOption("--seed <N>")]
    public int? Seed { get; init; }

    [CommandOption("--seeds <N>")]
    [OptionHelp("Train N runs with seeds seed..seed+N-1 into OUT/seed-<s> and print the mean +- std table.")]
    public int? Seeds { get; init; }

    [CommandOption("--device <DEVICE>")]
    [OptionHelp("auto (default: CUDA when usable, else CPU), cpu, cuda or cuda:N.")]
    public string Device { get; init; } = "auto";

    [CommandOption("--out <DIR>")]
    [OptionHelp("Run directory (default runs/<method>-<rule>-<time>).")]
    public string? Out { get; init; }

    [CommandOption("--resume <DIR>")]
    [OptionHelp("Continue an interrupted run from its last checkpoint (its config.json gives every setting).")]
    public string? Resume { get; init; }

    [CommandOption("--log-every <N>")]
    [OptionHelp("Read the loss back every N steps (default 10).")]
    public int? LogEvery { get; init; }

    [CommandOption("--quiet")]
    [OptionHelp("Print only the final summary.")]
    public bool Quiet { get; init; }

    [CommandOption("--json")]
    [OptionHelp("Machine-readable output: one JSON object per epoch and a final one.")]
    public bool Json { get; init; }

    public OutputMode OutputMode => Json ? OutputMode.Json : Quiet ? OutputMode.Quiet : OutputMode.Normal;

    /// <summary>The training options: the preset, overridden by every option given.</summary>
    public TrainingOptions ToOptions()
    {
        var o = TrainingPresets.Get(Preset ?? "paper");
        o = o with
        {
            Method = Method is null ? o.Method : ParseEnum<TrainingMethod>("--method", Method),
            Rule = Rule is null ? o.Rule : Parse("--rule", () => ImbalanceRules.Parse(Rule)),
            Loss = Loss is null ? o.Loss : Parse("--loss", () => LossKinds.Parse(Loss)),
            FocalGamma = FocalGamma ?? o.FocalGamma,
            CbWeights = CbWeights ?? o.CbWeights,
            LdamScale = LdamScale ?? o.LdamScale,
            LdamMaxMargin = LdamMaxMargin ?? o.LdamMaxMargin,
            DrwEpoch = DrwEpoch ?? o.DrwEpoch,
            Tau = Tau ?? o.Tau,
            PosthocTau = PosthocTau ?? o.PosthocTau,
            Head = Head is null ? o.Head : ParseEnum<ClassifierHead>("--head", Head),
            InitFrom = InitFrom is null ? o.InitFrom : Path.GetFullPath(InitFrom),
            Freeze = Freeze is null ? o.Freeze : ParseEnum<FreezeKind>("--freeze", Freeze),
            ResetHead = ResetHead ?? o.ResetHead,
            Subclasses = Subclasses ?? o.Subclasses,
            Partition = Partition is null ? o.Partition : Parse("--partition", () => PartitionModes.Parse(Partition)),
            EmaDecay = EmaDecay ?? o.EmaDecay,
            Mapping = Mapping is null ? o.Mapping : ParseEnum<MappingKind>("--mapping", Mapping),
            MappingLrScale = MappingLrScale ?? o.MappingLrScale,
            MappingInput = MappingInput is null ? o.MappingInput : ParseEnum<MappingInput>("--mapping-input", MappingInput),
            WarmupEpochs = WarmupEpochs ?? o.WarmupEpochs,
            JointWeight = JointWeight ?? o.JointWeight,
            SelectOn = SelectOn is null ? o.SelectOn : ModelSelections.Parse(SelectOn),
            Epochs = Epochs ?? o.Epochs,
            BatchSize = Batch ?? o.BatchSize,
            LearningRate = LearningRate ?? o.LearningRate,
            WeightDecay = WeightDecay ?? o.WeightDecay,
            Momentum = Momentum ?? o.Momentum,
            Schedule = Schedule ?? o.Schedule,
            Arch = Arch is null ? o.Arch : ParseArch(Arch),
            Width = Width ?? o.Width,
            Dropout = Dropout is null ? o.Dropout : (float)Dropout.Value,
            Crop = Crop ?? o.Crop,
            TenCropTest = TenCrop ?? o.TenCropTest,
            Seed = Seed is null ? o.Seed : (ulong)RequireNonNegative("--seed", Seed.Value),
            LogEvery = LogEvery ?? o.LogEvery,
        };
        o.Validate();
        return o;
    }

    /// <summary>The loader options of a new run: the shared data options, the class map, the test hold-out.</summary>
    public DatasetLoadOptions ToLoadOptions()
    {
        var o = CliValues.LoadOptions(OnBadImage ?? "fail", Classes, ImageDataset.DefaultSize, noCache: false, ClassMap, AllowMissingClasses);
        if (TestFraction is double f)
        {
            if (!(f > 0 && f < 1)) throw new UsageException($"--test-fraction must be in (0, 1), got {f.ToString(CultureInfo.InvariantCulture)}.");
            o = o with { TestFraction = f };
        }
        return o with { FaceCrop = FaceCrop(DetectFaces) };
    }

    /// <summary>Options that choose the data of a new run; --resume reads them from the run's config.json instead.</summary>
    internal IEnumerable<string> DataOptionsGiven()
    {
        if (Classes is not null) yield return "--classes";
        if (ClassMap is not null) yield return "--class-map";
        if (OnBadImage is not null) yield return "--on-bad-image";
        if (AllowMissingClasses) yield return "--allow-missing-classes";
        if (TestFraction is not null) yield return "--test-fraction";
        if (DetectFaces) yield return "--detect-faces";
        if (FaceMargin is not null) yield return "--face-margin";
        if (FaceCascade is not null) yield return "--face-cascade";
        if (Folds is not null) yield return "--folds";
        if (GroupBy is not null) yield return "--group-by";
        if (DatasetName is not null) yield return "--dataset-name";
    }

    public override Spectre.Console.ValidationResult Validate()
    {
        if (Data is null && Resume is null) return Spectre.Console.ValidationResult.Error("--data is required (or --resume DIR).");
        if (Seeds is < 1) return Spectre.Console.ValidationResult.Error($"--seeds must be at least 1, got {Seeds}.");
        if (Resume is not null && Seeds is not null) return Spectre.Console.ValidationResult.Error("--resume continues one run; it cannot be combined with --seeds.");
        if (Resume is not null && Out is not null) return Spectre.Console.ValidationResult.Error("--resume DIR continues the run in DIR; leave out --out.");
        if (Resume is null && AllowDataChange) return Spectre.Console.ValidationResult.Error("--allow-data-change goes with --resume.");
        if (Folds is not null && Resume is null)
        {
            if (Folds < 2) return Spectre.Console.ValidationResult.Error($"--folds must be at least 2, got {Folds}.");
            if (GroupBy is null) return Spectre.Console.ValidationResult.Error("--folds needs --group-by: the subject of each image (a regular expression, or ck+ or jaffe).");
            if (Seeds is not null) return Spectre.Console.ValidationResult.Error("--folds and --seeds cannot be combined: each fold is one run of --seed.");
            if (Validation is not null || Test is not null || TestFraction is not null)
                return Spectre.Console.ValidationResult.Error("--folds makes the test and validation splits from --data's subjects; leave out --val, --test and --test-fraction.");
            if (DataArguments.IsSynthetic(Data ?? "")) return Spectre.Console.ValidationResult.Error("--folds needs image files named by subject; synthetic faces have no subjects.");
        }
        if (GroupBy is not null && Folds is null) return Spectre.Console.ValidationResult.Error("--group-by goes with --folds.");
        return Spectre.Console.ValidationResult.Success();
    }

    internal static T ParseEnum<T>(string option, string text) where T : struct, Enum =>
        Enum.TryParse<T>(text.Replace("-", ""), ignoreCase: true, out var v) && Enum.IsDefined(v)
            ? v : throw new UsageException($"{option}: '{text}' is not one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}.");

    internal static VggDepth ParseArch(string text) =>
        text.Trim().ToLowerInvariant() switch
        {
            "vgg11" => VggDepth.Vgg11,
            "vgg13" => VggDepth.Vgg13,
            "vgg16" => VggDepth.Vgg16,
            "vgg19" => VggDepth.Vgg19,
            _ => throw new UsageException($"--arch: '{text}' is not vgg11, vgg13, vgg16 or vgg19."),
        };

    private static T Parse<T>(string option, Func<T> parse)
    {
        try { return parse(); }
        catch (Exception e) when (e is FormatException or ArgumentException) { throw new UsageException($"{option}: {e.Message}"); }
    }

    private static int RequireNonNegative(string option, int v) =>
        v >= 0 ? v : throw new UsageException($"{option} must be non-negative, got {v.ToString(CultureInfo.InvariantCulture)}.");
}
