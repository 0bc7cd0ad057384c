using System.Diagnostics;
using System.Globalization;
using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Data;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>Progress callbacks (the CLI draws bars from them). All optional.</summary>
public interface ITrainingObserver
{
    /// <summary>The run starts (or resumes at <paramref name="startEpoch"/>), with <paramref name="batchesPerEpoch"/> batches per epoch.</summary>
    void RunStarted(RunConfig config, int startEpoch, int batchesPerEpoch) { }

    /// <summary>After every step; <paramref name="loss"/> is set on steps where the loss was read back.</summary>
    void StepCompleted(int epoch, int batch, int batches, float? loss, double imagesPerSecond) { }

    /// <summary>An epoch ended: its line of metrics.jsonl.</summary>
    void EpochCompleted(EpochMetrics metrics) { }
    /// <summary>Something the user should read (a resumed run, a fallback, a saved checkpoint).</summary>
    void Message(string text) { }
}

/// <summary>How a training run ended.</summary>
public enum RunStatus
{
    /// <summary>Every epoch ran and the best model was evaluated on the test split.</summary>
    Completed,
    /// <summary>Stopped by cancellation after saving a checkpoint; <c>Run(resume: true)</c> continues it.</summary>
    Interrupted,
}

/// <summary>How a run ended; <c>BestEpoch</c> is the epoch selected on validation, counting from 1 (0: none yet).</summary>
public sealed record TrainingOutcome(
    RunStatus Status,
    int EpochsCompleted,
    int BestEpoch,
    double BestValidationScore,
    EvaluationReport? Test,
    EvaluationReport? Validation,
    RunDirectory Run);

/// <summary>The loss became NaN or infinite: the run stops, its last good checkpoint stays on disk.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// Trains one model on one dataset split into a run directory (docs/architecture.md, "Training"): epochs of sampled,
/// augmented batches; validation after every epoch with model selection on a validation score only
/// (<see cref="TrainingOptions.SelectOn"/>; DICC's warm-up epochs are never selected);
/// atomic checkpoints (last, best) that resume to the same result as an uninterrupted run; and at the end
/// the selected model's test evaluation (report.json). Every random draw is counter-based (sampler per
/// epoch, crop per sample, dropout per step), so a resumed run needs no generator state beyond the counters.
/// </summary>
public sealed class Trainer
{
    private readonly Backend _backend;
    private readonly DatasetSplits _data;
    private readonly TrainingOptions _options;
    private readonly RunDirectory _run;
    private readonly DatasetDescription _description;
    private readonly int _classes, _crop, _batch;
    private readonly int[] _trainCounts;
    private readonly EpochSampler _sampler;
    private readonly int[] _order;
    private readonly DeviceDataset _train;
    private readonly Tensor _images, _labels, _indices;
    private readonly Dictionary<int, (Tensor Images, Tensor Labels, Tensor Indices)> _batchViews = [];
    private readonly DiccInstruments? _instruments;
    private readonly double? _mappingPriorEntropy;

    /// <summary>A trainer for one run: <paramref name="options"/> on <paramref name="data"/>, on <paramref name="backend"/>, writing <paramref name="run"/> (config, metrics, checkpoints, reports).</summary>
    public Trainer(Backend backend, DatasetSplits data, TrainingOptions options, RunDirectory run, DatasetDescription? description = null)
    {
        CheckSetup(data, options);
        _backend = backend;
        _data = data;
        _options = options;
        _run = run;
        _classes = data.ClassNames.Count;
        _trainCounts = data.Train.ClassCounts();
        _description = description ?? Describe(data);
        Model = ModelFactory.Create(backend, options, _classes, _trainCounts);
        _sampler = options.Rule.CreateSampler(data.Train.Labels, _classes, options.Seed, SamplerStream);
        _order = new int[data.Train.Count];
        _crop = options.Crop;
        _batch = Math.Min(options.BatchSize, data.Train.Count);
        _train = new DeviceDataset(backend, data.Train);
        _images = backend.Create(new Shape(_batch, 1, _crop, _crop));
        _labels = backend.Create(new Shape(_batch), DType.Int32);
        _indices = backend.Create(new Shape(_batch), DType.Int32);
        if (Model is DiccModel dicc)
        {
            _instruments = new DiccInstruments(dicc, data.Train.Labels, _batch, BatchesPerEpoch);
            if (dicc.Mapping is not null) _mappingPriorEntropy = DiccInstruments.MappingPriorEntropy(options.Rule, _trainCounts);
        }
    }

    /// <summary>
    /// Checks, without building anything, that <paramref name="options"/> can train on <paramref name="data"/>: every
    /// option's value, enough training images, images at least as large as the crop, images of every class for the
    /// class-balanced rules, and a DICC subclass plan that fits the classes. What a new trainer checks first; a sweep
    /// checks its cells with it before any of them trains.
    /// </summary>
    /// <exception cref="InputException">The first problem, naming the parameter or the data.</exception>
    public static void CheckSetup(DatasetSplits data, TrainingOptions options)
    {
        options.Validate();
        if (data.Train.Count < 2) throw new InputException($"{data.Source}: the training split has {data.Train.Count} images; at least 2 are needed.");
        if (data.Height < options.Crop || data.Width < options.Crop)
            throw new InputException($"{data.Source}: images are {data.Height}x{data.Width}, smaller than the {options.Crop}x{options.Crop} crop; use a crop of {Math.Min(data.Height, data.Width) - 4} or less.");
        var counts = data.Train.ClassCounts();
        if (options.Rule != ImbalanceRule.None)
            for (int c = 0; c < counts.Length; c++)
                if (counts[c] == 0)
                    throw new InputException($"rule {options.Rule.Name()}: class '{data.ClassNames[c]}' has no training images; the class-balanced " +
                                             "rules need images of every class (use rule none, or leave the class out of the class list).") { Parameter = "rule" };
        string? countedBy = options.Loss is not LossKind.CrossEntropy and not LossKind.Focal ? "loss"
            : options.CbWeights ? "cbWeights" : options.DrwEpoch > 0 ? "drwEpoch" : options.PosthocTau != 0 ? "posthocTau" : null;
        if (countedBy is not null)
            for (int c = 0; c < counts.Length; c++)
                if (counts[c] == 0)
                    throw new InputException($"{countedBy} ({options.Loss.Name()}): class '{data.ClassNames[c]}' has no training images; the class prior, " +
                                             "margins and class-balanced weights need images of every class.") { Parameter = countedBy };
        ModelFactory.SubclassCounts(options, data.ClassNames.Count, counts);
    }

    /// <summary>Philox stream of the epoch sampler ("SAMP").</summary>
    public const ulong SamplerStream = 0x5341_4D50;

    /// <summary>The model being trained.</summary>
    public ExpressionModel Model { get; }
    /// <summary>Progress callbacks, or null.</summary>
    public ITrainingObserver? Observer { get; set; }

    /// <summary>Batches per epoch: a last batch of one image is dropped (BatchNorm needs two).</summary>
    public int BatchesPerEpoch => _data.Train.Count / _batch + (_data.Train.Count % _batch >= 2 ? 1 : 0);

    /// <summary>What config.json records about <paramref name="data"/> (class names, counts, a fingerprint, the image size).</summary>
    public static DatasetDescription Describe(DatasetSplits data, string? name = null)
    {
        var counts = data.Train.ClassCounts();
        int min = counts.Where(c => c > 0).DefaultIfEmpty(0).Min(), max = counts.DefaultIfEmpty(0).Max();
        bool synthetic = data.Origin == DatasetOrigin.Synthetic;
        name ??= synthetic ? "synthetic" : Path.GetFileName(Path.TrimEndingDirectorySeparator(data.Source));
        return new DatasetDescription(name, data.Source, data.Fingerprint, min > 0 ? Math.Round((double)max / min, 2) : null,
            data.ClassNames.ToArray(), counts, data.Validation.Count, data.Test.Count, ImageSize: data.Height)
        {
            SourcePath = synthetic ? null : Path.GetFullPath(data.Source),
            Skipped = data.Skipped.Count > 0 ? data.Skipped.Select(x => x.ToString()).ToArray() : null,
            ValidationHeldOut = data.ValidationHeldOut,
            TestHeldOut = data.TestHeldOut,
        };
    }

    /// <summary>
    /// Seconds the remaining epochs will take, estimated before training from one timed forward pass of a
    /// training batch (evaluation mode, which changes no state; one untimed pass first plans memory) scaled to a
    /// training step (forward and backward: about three forward passes) and to every remaining step.
    /// </summary>
    public (double Seconds, double StepSeconds, long Steps) EstimateRemaining(int fromEpoch = 0)
    {
        Model.PredictProbabilities(_images);
        _backend.Synchronize();
        long start = Stopwatch.GetTimestamp();
        Model.PredictProbabilities(_images);
        _backend.Synchronize();
        double step = 3 * Stopwatch.GetElapsedTime(start).TotalSeconds;
        long steps = (long)BatchesPerEpoch * Math.Max(0, _options.Epochs - fromEpoch);
        return (step * steps, step, steps);
    }

    /// <summary>The metadata format of the checkpoints this trainer writes and resumes.</summary>
    public const string CheckpointFormat = "dicc-checkpoint-2";

    /// <summary>
    /// Trains (or, with <paramref name="resume"/>, continues from the last checkpoint) to the end and writes the
    /// reports. Runs under the run directory's exclusive lock: the caller's (<see cref="RunDirectory.Lock"/>) or
    /// one taken here for the call. A new run needs a new or empty directory; resuming restores what the
    /// directory is meant to hold (metrics.jsonl from the checkpoint, the best checkpoint when it equals the last)
    /// or stops naming what cannot be restored.
    /// </summary>
    public TrainingOutcome Run(bool resume = false, CancellationToken cancellation = default)
    {
        using var ownLock = _run.HeldLock is null ? _run.Lock() : null;
        if (ownLock?.StaleNote is { } note) Observer?.Message($"{_run.Path}: {note}.");
        return RunLocked(resume, cancellation);
    }

    private TrainingOutcome RunLocked(bool resume, CancellationToken cancellation)
    {
        Progress state;
        List<EpochMetrics> history;
        if (resume && File.Exists(_run.LastCheckpoint)) (state, history) = Restore();
        else
        {
            // A resumed run without a checkpoint (stopped before its first epoch ended) starts again in place.
            if (!(resume && _run.HoldsRun) && _run.OtherEntries().Count > 0)
                throw new InputException(_run.HoldsRun
                    ? $"run {_run.Path} already holds a run: resume it, or choose another run directory."
                    : $"run {_run.Path} is a folder that is not empty and holds no run; choose a new or empty folder (nothing is overwritten).")
                {
                    Parameter = "run",
                };
            if (_options.InitFrom is not null) InitializeFromRun(_options.InitFrom);
            _run.WriteConfig(new RunConfig(EngineInfo.Version, _options, _description,
                (Model as Models.DiccModel)?.Options.Clustering.Plan.Counts.ToArray(), _backend.Description, DateTimeOffset.UtcNow));
            state = new Progress();
            history = [];
            _run.WriteMetrics(history);
        }
        Observer?.RunStarted(_run.ReadConfig(), state.Epoch, BatchesPerEpoch);

        var schedule = _options.LearningRateSchedule;
        int batches = BatchesPerEpoch;
        for (int epoch = state.Epoch; epoch < _options.Epochs; epoch++)
        {
            float lr = (float)schedule.At(epoch);
            Model.BeginEpoch(epoch);
            _sampler.FillEpoch(epoch, _order);
            var clock = Stopwatch.StartNew();
            long images = 0;
            for (int b = state.Batch; b < batches; b++)
            {
                int n = Math.Min(_batch, _order.Length - b * _batch);
                var (x, y) = LoadTrainingBatch(epoch, b, n);
                Model.TrainStep(x, y, lr);
                _instruments?.AfterStep(b);
                images += n;
                float? loss = null;
                if (Model.Steps % _options.LogEvery == 0 || b == batches - 1)
                {
                    var (main, mapping) = Model.ReadLosses();
                    CheckFinite(main, epoch, b);
                    if (!float.IsNaN(mapping) || Model is DiccModel { Mapping: not null }) CheckFinite(mapping, epoch, b);
                    state.AddLoss(main, mapping);
                    loss = main;
                }
                Observer?.StepCompleted(epoch, b, batches, loss, images / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
                if (cancellation.IsCancellationRequested && b < batches - 1)
                {
                    state.Epoch = epoch;
                    state.Batch = b + 1;
                    state.Seconds += clock.Elapsed.TotalSeconds;
                    Checkpoint(state, history).Save(_run.LastCheckpoint);
                    Observer?.Message($"Interrupted at epoch {epoch + 1}, batch {b + 1}/{batches}: checkpoint saved to {_run.LastCheckpoint}; resume the run to continue.");
                    return new TrainingOutcome(RunStatus.Interrupted, epoch, state.BestEpoch, state.BestScore, null, null, _run);
                }
            }
            double seconds = state.Seconds + clock.Elapsed.TotalSeconds;
            if (Model.FindNonFiniteParameter() is { } broken)
                throw Diverged($"'{broken}' became NaN or infinite in epoch {epoch + 1} while the loss stayed finite " +
                               "(the activations saturated)");

            var instruments = _instruments?.EndEpoch(_order);
            var validation = _data.Validation.Count > 0 ? Evaluate(_data.Validation, tenCrop: false, keepScores: false) : null;
            double score = validation is null ? double.NaN : _options.SelectOn.Score(validation);
            // Warm-up epochs train plain cross-entropy, not DICC: never selected.
            bool eligible = Model is not DiccModel || epoch >= _options.WarmupEpochs;
            bool best = eligible && (validation is null || _options.SelectOn == ModelSelection.Last || score > state.BestScore || state.BestEpoch == 0);
            var metrics = new EpochMetrics(epoch + 1, lr, state.MeanLoss, state.MeanMappingLoss, validation?.Accuracy ?? double.NaN,
                validation?.BalancedAccuracy ?? double.NaN, validation?.MacroF1 ?? double.NaN, best, seconds,
                images / Math.Max(1e-9, clock.Elapsed.TotalSeconds), validation?.Classes.Select(c => c.Predicted).ToArray(),
                _mappingPriorEntropy, instruments);
            if (best)
            {
                state.BestEpoch = epoch + 1;
                state.BestScore = score;
            }
            state.Epoch = epoch + 1;
            state.Batch = 0;
            state.ResetEpoch();
            history.Add(metrics);
            // The last checkpoint is the commit point, written after everything it vouches for: a failure before
            // it leaves the previous one, from which a resume redoes this epoch to the same result.
            _run.WriteMetrics(history);
            var writer = Checkpoint(state, history);
            if (best) writer.Save(_run.BestCheckpoint);
            writer.Save(_run.LastCheckpoint);
            Observer?.EpochCompleted(metrics);
            if (cancellation.IsCancellationRequested && epoch + 1 < _options.Epochs)
            {
                Observer?.Message($"Interrupted after epoch {epoch + 1}: checkpoint saved to {_run.LastCheckpoint}; resume the run to continue.");
                return new TrainingOutcome(RunStatus.Interrupted, epoch + 1, state.BestEpoch, state.BestScore, null, null, _run);
            }
        }
        return Finish(state);
    }

    /// <summary>
    /// <see cref="TrainingOptions.InitFrom"/>: loads the selected model of another baseline run of the same architecture
    /// and width (or a checkpoint file of one) into the fresh model, before the first epoch (docs/cli.md, "cRT").
    /// </summary>
    private void InitializeFromRun(string source)
    {
        RunDirectory run;
        string checkpoint;
        RunConfig config;
        try
        {
            (run, checkpoint) = RunModel.Locate(source);
            config = run.ReadConfig();
        }
        catch (InputException e)
        {
            throw new InputException($"initFrom {source}: {e.Message}") { Parameter = "initFrom" };
        }
        var o = config.Options;
        string? mismatch = o.Method != TrainingMethod.Baseline ? $"it is a {o.Method.ToString().ToLowerInvariant()} run; only a baseline run's weights can initialise the baseline"
            : o.Arch != _options.Arch || o.Width != _options.Width
                ? $"it trained {o.Arch.ToString().ToLowerInvariant()} at width {o.Width.ToString(CultureInfo.InvariantCulture)}, this run {_options.Arch.ToString().ToLowerInvariant()} at width {_options.Width.ToString(CultureInfo.InvariantCulture)}"
            : !_options.ResetHead && (o.Head != _options.Head || !config.Dataset.ClassNames.SequenceEqual(_data.ClassNames))
                ? "its head (classes or classifier layer) differs from this run's; add --reset-head to train a new one"
            : null;
        if (mismatch is not null) throw new InputException($"initFrom {run.Path}: {mismatch}.") { Parameter = "initFrom" };
        try
        {
            ((BaselineModel)Model).InitializeFrom(new CheckpointReader(checkpoint), _options.ResetHead);
        }
        catch (Exception e) when (e is InputException or InvalidDataException or KeyNotFoundException or IOException)
        {
            throw new InputException($"initFrom: {e.Message}") { Parameter = "initFrom" };
        }
        Observer?.Message($"Initialised from {checkpoint}{(_options.ResetHead ? " (backbone only; a new head)" : "")}" +
                          $"{(_options.Freeze == FreezeKind.Backbone ? "; the backbone is frozen" : "")}.");
    }

    /// <summary>Evaluates the selected (best-on-validation) model on test and validation and writes the reports.</summary>
    private TrainingOutcome Finish(Progress state)
    {
        if (state.BestEpoch > 0) Model.Load(new CheckpointReader(_run.BestCheckpoint));
        // The model is told which epoch it holds: a DICC model selected in (or stopped before the end of) its warm-up
        // predicts with the warm-up's head (DiccModel.InWarmup).
        Model.BeginEpoch(state.BestEpoch > 0 ? state.BestEpoch - 1 : _options.Epochs - 1);
        var trainCounts = _trainCounts.Select(c => (long)c).ToArray();
        var shotRule = ShotGroupRule.Parse(_options.ShotGroups);
        var test = _data.Test.Count > 0 ? Evaluate(_data.Test, _options.TenCropTest, keepScores: true, trainCounts, shotRule) : null;
        var validation = _data.Validation.Count > 0 ? Evaluate(_data.Validation, false, keepScores: true, trainCounts, shotRule) : null;
        test?.Save(_run.ReportFile);
        validation?.Save(_run.ValidationReportFile);
        if (test is not null)
        {
            var result = RunResult.FromReport(_description.Name, _description.Beta, _options.Rule.Name(),
                _options.Method == TrainingMethod.Dicc ? RunLabels.Dicc : RunLabels.Baseline, (long)_options.Seed, test)
                with { Fold = _description.Fold?.Fold, Folds = _description.Fold?.Folds };
            IO.AtomicFile.WriteAllText(_run.ResultFile, EvaluationJson.Serialize(result));
        }
        return new TrainingOutcome(RunStatus.Completed, _options.Epochs, state.BestEpoch, state.BestScore, test, validation, _run);
    }

    /// <summary>Sends the batch's indices; the backend crops, flips and gathers labels from the resident dataset.</summary>
    private (Tensor Images, Tensor Labels) LoadTrainingBatch(int epoch, int batch, int n)
    {
        var (x, y, indices) = Views(n);
        _backend.CopyIn<int>(indices, _order.AsSpan(batch * _batch, n));
        ulong firstSample = (ulong)epoch * (ulong)_order.Length + (ulong)(batch * _batch);
        _backend.CropImages(_train.Images, indices, x, CropMode.Random, _crop, _options.Seed, firstSample);
        _backend.Gather(_train.Labels, indices, y);
        return (x, y);
    }

    private (Tensor, Tensor, Tensor) Views(int n)
    {
        if (n == _batch) return (_images, _labels, _indices);
        if (!_batchViews.TryGetValue(n, out var v))
            _batchViews[n] = v = (_images.SliceBatch(n), _labels.SliceBatch(n), _indices.SliceBatch(n));
        return v;
    }

    private Evaluator? _evaluator;

    private EvaluationReport Evaluate(ImageDataset dataset, bool tenCrop, bool keepScores,
        IReadOnlyList<long>? trainCounts = null, ShotGroupRule? shotRule = null)
    {
        _evaluator ??= new Evaluator(Model, _options.Crop, _options.EvalBatchSize);
        return _evaluator.Evaluate(dataset, tenCrop, keepScores, trainCounts, shotRule);
    }

    private void CheckFinite(float loss, int epoch, int batch)
    {
        if (float.IsFinite(loss)) return;
        throw Diverged($"The training loss became {loss.ToString(CultureInfo.InvariantCulture)} at epoch {epoch + 1}, batch {batch + 1}");
    }

    private TrainingDivergedException Diverged(string what)
    {
        string last = File.Exists(_run.LastCheckpoint)
            ? $"The last good checkpoint is {_run.LastCheckpoint}."
            : "No checkpoint was written yet.";
        return new TrainingDivergedException(
            $"{what}: training stopped. {last} Try a lower learning rate (now {_options.LearningRate.ToString(CultureInfo.InvariantCulture)}).");
    }

    /// <summary>The model, the trainer's counters and the metrics so far (so that metrics.jsonl can be restored).</summary>
    private CheckpointWriter Checkpoint(Progress state, IReadOnlyList<EpochMetrics> history)
    {
        var w = new CheckpointWriter();
        Model.Save(w);
        _instruments?.Save(w);
        w.AddMetadata("format", CheckpointFormat);
        w.AddMetadata("engine_version", EngineInfo.Version);
        w.AddMetadata("method", _options.Method.ToString().ToLowerInvariant());
        w.AddMetadata("metrics", RunDirectory.ToJsonLines(history));
        state.WriteTo(w);
        return w;
    }

    /// <summary>
    /// Loads the last checkpoint and makes the directory whole again: metrics.jsonl rewritten from the
    /// checkpoint's copy (lines past it dropped, missing ones restored), config.json rewritten when it is gone,
    /// and the best checkpoint checked to be the selected epoch's; when it is not and that epoch is the last
    /// one, it is restored from the last checkpoint, otherwise its weights exist nowhere else and the run stops.
    /// </summary>
    private (Progress, List<EpochMetrics>) Restore()
    {
        string path = _run.LastCheckpoint;
        var reader = new CheckpointReader(path);
        string format = reader.Metadata.GetValueOrDefault("format") ?? "none";
        if (format != CheckpointFormat)
            throw new InputException($"{path}: checkpoint format '{format}' was written by another engine version (this one resumes " +
                                     $"'{CheckpointFormat}'); start the run again in a new run directory.");
        Model.Load(reader);
        _instruments?.Load(reader);
        var state = Progress.ReadFrom(reader, path);
        var history = RunDirectory.ParseJsonLines(reader.RequireMetadata("metrics"), $"{path} (metadata 'metrics')");
        if (history.Count != state.Epoch)
            throw new InputException($"{path}: the checkpoint holds {history.Count} metrics lines for {state.Epoch} finished epochs; it is damaged.");
        var notes = new List<string>();

        if (!File.Exists(_run.ConfigFile))
        {
            _run.WriteConfig(new RunConfig(EngineInfo.Version, _options, _description,
                (Model as Models.DiccModel)?.Options.Clustering.Plan.Counts.ToArray(), _backend.Description, DateTimeOffset.UtcNow));
            notes.Add($"restored {_run.ConfigFile} from the run's settings");
        }

        List<EpochMetrics>? onDisk;
        try { onDisk = _run.ReadMetrics(); }
        catch (InputException) { onDisk = null; }
        if (onDisk is null || !onDisk.Where(m => m.Epoch <= state.Epoch).SequenceEqual(history))
            notes.Add($"restored {_run.MetricsFile} ({history.Count} epochs) from the last checkpoint");
        _run.WriteMetrics(history);

        if (state.BestEpoch > 0 && BestCheckpointProblem(state.BestEpoch) is { } problem)
        {
            if (state.BestEpoch == state.Epoch && state.Batch == 0)
            {
                // The selected epoch is the last finished one: the last checkpoint holds the same weights and state.
                IO.AtomicFile.WriteAllBytes(_run.BestCheckpoint, File.ReadAllBytes(path));
                notes.Add($"restored {_run.BestCheckpoint} ({problem}) from the last checkpoint, which holds the same epoch {state.BestEpoch}");
            }
            else
            {
                throw new InputException($"{_run.BestCheckpoint}: {problem}; it must hold the model of epoch {state.BestEpoch}, selected on " +
                                         "validation, and those weights exist nowhere else, so the run cannot be finished as it was; " +
                                         "start it again in a new run directory.");
            }
        }
        foreach (var note in notes) Observer?.Message($"Resume: {note}.");
        Observer?.Message(state.Epoch >= _options.Epochs
            ? $"Resuming {_run.Path}: all {_options.Epochs} epochs are trained; writing the reports."
            : $"Resuming {_run.Path} at epoch {state.Epoch + 1}, batch {state.Batch + 1}.");
        return (state, history);
    }

    /// <summary>Why the best checkpoint is not the model of epoch <paramref name="bestEpoch"/>, or null when it is.</summary>
    private string? BestCheckpointProblem(int bestEpoch)
    {
        if (!File.Exists(_run.BestCheckpoint)) return "it is missing";
        try
        {
            var metadata = IO.SafetensorsFile.ReadHeader(_run.BestCheckpoint).Metadata;
            string? epoch = metadata.GetValueOrDefault("epoch");
            return epoch == bestEpoch.ToString(CultureInfo.InvariantCulture) && metadata.GetValueOrDefault("format") == CheckpointFormat
                ? null : $"it holds epoch {epoch ?? "?"}";
        }
        catch (Exception e) when (e is IOException or InvalidDataException or InputException or UnauthorizedAccessException)
        {
            return $"it is unreadable ({e.Message})";
        }
    }

    /// <summary>The trainer's own counters, saved in checkpoint metadata.</summary>
    private sealed class Progress
    {
        /// <summary>Finished epochs, the next batch, and the selected epoch counting from 1 (0: none).</summary>
        public int Epoch, Batch, BestEpoch;
        /// <summary>The selected epoch's validation score (<see cref="TrainingOptions.SelectOn"/>), and the epoch's seconds so far.</summary>
        public double BestScore = double.NaN, Seconds;
        private double _lossSum, _mappingSum;
        private int _lossCount, _mappingCount;

        public double MeanLoss => _lossCount == 0 ? double.NaN : _lossSum / _lossCount;
        public double? MeanMappingLoss => _mappingCount == 0 ? null : _mappingSum / _mappingCount;

        public void AddLoss(float main, float mapping)
        {
            _lossSum += main;
            _lossCount++;
            if (float.IsNaN(mapping)) return;
            _mappingSum += mapping;
            _mappingCount++;
        }

        public void ResetEpoch()
        {
            _lossSum = _mappingSum = 0;
            _lossCount = _mappingCount = 0;
            Seconds = 0;
        }

        private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

        public void WriteTo(CheckpointWriter w)
        {
            w.AddMetadata("epoch", Epoch.ToString(CultureInfo.InvariantCulture));
            w.AddMetadata("batch", Batch.ToString(CultureInfo.InvariantCulture));
            w.AddMetadata("best_epoch", BestEpoch.ToString(CultureInfo.InvariantCulture));
            w.AddMetadata("best_validation_score", F(BestScore));
            w.AddMetadata("epoch_seconds", F(Seconds));
            w.AddMetadata("epoch_loss_sum", F(_lossSum));
            w.AddMetadata("epoch_loss_count", _lossCount.ToString(CultureInfo.InvariantCulture));
            w.AddMetadata("epoch_mapping_loss_sum", F(_mappingSum));
            w.AddMetadata("epoch_mapping_loss_count", _mappingCount.ToString(CultureInfo.InvariantCulture));
        }

        public static Progress ReadFrom(CheckpointReader r, string path)
        {
            int I(string k) => int.TryParse(r.RequireMetadata(k), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
                ? v : throw new InputException($"{path}: checkpoint metadata '{k}' is not an integer.");
            double D(string k) => double.TryParse(r.RequireMetadata(k), NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
                ? v : throw new InputException($"{path}: checkpoint metadata '{k}' is not a number.");
            return new Progress
            {
                // Checkpoints from before select_on stored the selection score (then always accuracy) under another name.
                Epoch = I("epoch"), Batch = I("batch"), BestEpoch = I("best_epoch"),
                BestScore = D(r.Metadata.ContainsKey("best_validation_score") ? "best_validation_score" : "best_validation_accuracy"),
                Seconds = D("epoch_seconds"), _lossSum = D("epoch_loss_sum"), _lossCount = I("epoch_loss_count"),
                _mappingSum = D("epoch_mapping_loss_sum"), _mappingCount = I("epoch_mapping_loss_count"),
            };
        }
    }
}
