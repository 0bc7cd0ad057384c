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
    void RunStarted(RunConfig config, int startEpoch, int batchesPerEpoch) { }

    /// <summary>After every step; <paramref name="loss"/> is set on steps where the loss was read back.</summary>
    void StepCompleted(int epoch, int batch, int batches, float? loss, double imagesPerSecond) { }

    void EpochCompleted(EpochMetrics metrics) { }
    void Message(string text) { }
}

public enum RunStatus
{
    Completed,
    Interrupted,
}

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

    public Trainer(Backend backend, DatasetSplits data, TrainingOptions options, RunDirectory run, DatasetDescription? description = null)
    {
        options.Validate();
        _backend = backend;
        _data = data;
        _options = options;
        _run = run;
        _classes = data.ClassNames.Count;
        _trainCounts = data.Train.ClassCounts();
        if (data.Train.Count < 2) throw new InputException($"{data.Source}: the training split has {data.Train.Count} images; at least 2 are needed.");
        if (data.Height < options.Crop || data.Width < options.Crop)
            throw new InputException($"{data.Source}: images are {data.Height}x{data.Width}, smaller than the {options.Crop}x{options.Crop} crop; use a crop of {Math.Min(data.Height, data.Width) - 4} or less.");
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

    /// <summary>Philox stream of the epoch sampler ("SAMP").</summary>
    public const ulong SamplerStream = 0x5341_4D50;

    public ExpressionModel Model { get; }
    public ITrainingObserver? Observer { get; set; }

    /// <summary>Batches per epoch: a last batch of one image is dropped (BatchNorm needs two).</summary>
    public int BatchesPerEpoch => _data.Train.Count / _batch + (_data.Train.Count % _batch >= 2 ? 1 : 0);

    public static DatasetDescription Describe(DatasetSplits data, string? name = null)
    {
        var counts = data.Train.ClassCounts();
        int min = counts.Where(c => c > 0).DefaultIfEmpty(0).Min(), max = counts.DefaultIfEmpty(0).Max();
        name ??= data.Origin == DatasetOrigin.Synthetic ? "synthetic" : Path.GetFileName(Path.TrimEndingDirectorySeparator(data.Source));
        return new DatasetDescription(name, data.Source, data.Fingerprint, min > 0 ? Math.Round((double)max / min, 2) : null,
            data.ClassNames.ToArray(), counts, data.Validation.Count, data.Test.Count, ImageSize: data.Height);
    }

    public TrainingOutcome Run(bool resume = false, CancellationToken cancellation = default)
    {
        var state = new Progress();
        if (resume && File.Exists(_run.LastCheckpoint)) state = Restore();
        else
        {
            if (File.Exists(_run.LastCheckpoint))
                throw new InputException($"{_run.Path} already holds a run: resume it, or choose another run directory.");
            _run.WriteConfig(new RunConfig(EngineInfo.Version, _options, _description,
                (Model as DiccModel)?.Options.Clustering.Plan.Counts.ToArray(), _backend.Description, DateTimeOffset.UtcNow));
            _run.WriteMetrics([]);
        }
        var history = _run.ReadMetrics().Where(m => m.Epoch < state.Epoch).ToList();
        _run.WriteMetrics(history);
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
                    Save(_run.LastCheckpoint, state);
                    Observer?.Message($"Interrupted at epoch {epoch + 1}, batch {b + 1}/{batches}: checkpoint saved to {_run.LastCheckpoint}; resume the run to continue.");
                    return new TrainingOutcome(RunStatus.Interrupted, epoch, state.BestEpoch, state.BestScore, null, null, _run);
                }
            }
            double seconds = state.Seconds + clock.Elapsed.TotalSeconds;

            var instruments = _instruments?.EndEpoch(_order);
            var validation = _data.Validation.Count > 0 ? Evaluate(_data.Validation, tenCrop: false, keepScores: false) : null;
            double score = validation is null ? double.NaN : _options.SelectOn.Score(validation);
            // Warm-up epochs train plain cross-entropy, not DICC: never selected.
            bool eligible = Model is not DiccModel || epoch >= _options.WarmupEpochs;
            bool best = eligible && (validation is null || _options.SelectOn == ModelSelection.Last || score > state.BestScore || state.BestEpoch < 0);
            var metrics = new EpochMetrics(epoch, lr, state.MeanLoss, state.MeanMappingLoss, validation?.Accuracy ?? double.NaN,
                validation?.BalancedAccuracy ?? double.NaN, validation?.MacroF1 ?? double.NaN, best, seconds,
                images / Math.Max(1e-9, clock.Elapsed.TotalSeconds), validation?.Classes.Select(c => c.Predicted).ToArray(),
                _mappingPriorEntropy, instruments);
            if (best)
            {
                state.BestEpoch = epoch;
                state.BestScore = score;
            }
            state.Epoch = epoch + 1;
            state.Batch = 0;
            state.ResetEpoch();
            var writer = Save(_run.LastCheckpoint, state);
            if (best) writer.Save(_run.BestCheckpoint);
            history.Add(metrics);
            _run.WriteMetrics(history);
            Observer?.EpochCompleted(metrics);
            if (cancellation.IsCancellationRequested && epoch + 1 < _options.Epochs)
            {
                Observer?.Message($"Interrupted after epoch {epoch + 1}: checkpoint saved to {_run.LastCheckpoint}; resume the run to continue.");
                return new TrainingOutcome(RunStatus.Interrupted, epoch + 1, state.BestEpoch, state.BestScore, null, null, _run);
            }
        }
        return Finish(state);
    }

    /// <summary>Evaluates the selected (best-on-validation) model on test and validation and writes the reports.</summary>
    private TrainingOutcome Finish(Progress state)
    {
        if (File.Exists(_run.BestCheckpoint)) Model.Load(new CheckpointReader(_run.BestCheckpoint));
        Model.BeginEpoch(Math.Max(0, state.BestEpoch));
        var trainCounts = _trainCounts.Select(c => (long)c).ToArray();
        var shotRule = ShotGroupRule.Parse(_options.ShotGroups);
        var test = _data.Test.Count > 0 ? Evaluate(_data.Test, _options.TenCropTest, keepScores: true, trainCounts, shotRule) : null;
        var validation = _data.Validation.Count > 0 ? Evaluate(_data.Validation, false, keepScores: true, trainCounts, shotRule) : null;
        test?.Save(_run.ReportFile);
        validation?.Save(_run.ValidationReportFile);
        if (test is not null)
        {
            var result = RunResult.FromReport(_description.Name, _description.Beta, _options.Rule.Name(),
                _options.Method == TrainingMethod.Dicc ? RunLabels.Dicc : RunLabels.Baseline, (long)_options.Seed, test);
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
        string last = File.Exists(_run.LastCheckpoint)
            ? $"The last good checkpoint is {_run.LastCheckpoint}."
            : "No checkpoint was written yet.";
        throw new TrainingDivergedException(
            $"The training loss became {loss.ToString(CultureInfo.InvariantCulture)} at epoch {epoch + 1}, batch {batch + 1}: training stopped. " +
            $"{last} Try a lower learning rate (now {_options.LearningRate.ToString(CultureInfo.InvariantCulture)}).");
    }

    private CheckpointWriter Save(string path, Progress state)
    {
        var w = new CheckpointWriter();
        Model.Save(w);
        _instruments?.Save(w);
        w.AddMetadata("format", "dicc-checkpoint-1");
        w.AddMetadata("engine_version", EngineInfo.Version);
        w.AddMetadata("method", _options.Method.ToString().ToLowerInvariant());
        state.WriteTo(w);
        w.Save(path);
        return w;
    }

    private Progress Restore()
    {
        var reader = new CheckpointReader(_run.LastCheckpoint);
        Model.Load(reader);
        _instruments?.Load(reader);
        var state = Progress.ReadFrom(reader, _run.LastCheckpoint);
        Observer?.Message($"Resuming {_run.Path} at epoch {state.Epoch + 1}, batch {state.Batch + 1}.");
        return state;
    }

    /// <summary>The trainer's own counters, saved in checkpoint metadata.</summary>
    private sealed class Progress
    {
        public int Epoch, Batch, BestEpoch = -1;
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
