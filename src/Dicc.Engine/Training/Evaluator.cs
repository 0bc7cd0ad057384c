using Dicc.Engine.Backends;
using Dicc.Engine.Data;
using Dicc.Engine.Evaluation;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>
/// Runs a model over a dataset split in evaluation mode: centre crop, or ten-crop with the ten views'
/// probabilities averaged per image. The split is uploaded once (the latest one stays resident) and
/// buffers are sized once for the evaluation batch. Disposing frees the resident split and the buffers.
/// </summary>
public sealed class Evaluator : IDisposable
{
    private readonly ExpressionModel _model;
    private readonly int _crop, _batch;
    private Tensor? _images, _indices;
    private DeviceDataset? _resident;
    private float[] _probabilities = [], _scores = [];
    private int[] _hostIndices = [];
    private readonly Dictionary<int, Tensor> _views = [];

    /// <param name="model">The model to run (in evaluation mode).</param>
    /// <param name="crop">The side of the square crops the model takes.</param>
    /// <param name="batchSize">Images per forward pass (ten-crop runs ten views of each).</param>
    public Evaluator(ExpressionModel model, int crop, int batchSize)
    {
        _model = model;
        _crop = crop;
        _batch = batchSize;
    }

    /// <summary>Class probabilities [dataset.Count, C] (ten-crop averaged when asked), in dataset order.</summary>
    public float[] Predict(ImageDataset dataset, bool tenCrop)
    {
        var all = new float[(long)dataset.Count * _model.Classes];
        Run(dataset, tenCrop, (start, n, scores) => scores.CopyTo(all.AsSpan(start * _model.Classes, n * _model.Classes)));
        return all;
    }

    /// <summary>Evaluates the model on <paramref name="dataset"/> against its labels: metrics, confusion matrix, optionally every score.</summary>
    public EvaluationReport Evaluate(ImageDataset dataset, bool tenCrop, bool keepScores,
        IReadOnlyList<long>? trainCounts = null, ShotGroupRule? shotRule = null)
    {
        var accumulator = new EvaluationAccumulator(dataset.ClassNames, keepScores, dataset.Count);
        Run(dataset, tenCrop, (start, n, scores) => accumulator.AddScores(dataset.Labels.Slice(start, n), scores));
        return accumulator.ToReport(trainCounts, shotRule);
    }

    private delegate void BatchScores(int start, int count, ReadOnlySpan<float> scores);

    private void Run(ImageDataset dataset, bool tenCrop, BatchScores consume)
    {
        if (dataset.ClassCount != _model.Classes)
            throw new InputException($"The dataset has {dataset.ClassCount} classes; the model was trained on {_model.Classes}.");
        if (dataset.Count == 0) return;
        int views = tenCrop ? Augmentation.TenCropViews : 1, c = _model.Classes;
        var backend = _model.Backend;
        if (_resident is not null && !ReferenceEquals(_resident.Source, dataset))
        {
            _resident.Dispose();
            _resident = null;
        }
        var resident = _resident ??= new DeviceDataset(backend, dataset);
        if (_images is null || _images.Shape[0] < _batch * views)
        {
            _images?.Storage.Dispose();
            _images = backend.Create(new Shape(_batch * views, 1, _crop, _crop));
            _views.Clear();
        }
        _indices ??= backend.Create(new Shape(_batch), DType.Int32);
        if (_probabilities.Length < _batch * views * c) _probabilities = new float[_batch * views * c];
        if (_scores.Length < _batch * c) _scores = new float[_batch * c];
        if (_hostIndices.Length < _batch) _hostIndices = new int[_batch];

        for (int start = 0; start < dataset.Count; start += _batch)
        {
            int n = Math.Min(_batch, dataset.Count - start);
            for (int j = 0; j < n; j++) _hostIndices[j] = start + j;
            var indices = n == _batch ? _indices : _indices.SliceBatch(n);
            backend.CopyIn<int>(indices, _hostIndices.AsSpan(0, n));
            var x = View(n * views);
            backend.CropImages(resident.Images, indices, x, tenCrop ? CropMode.TenCrop : CropMode.Center, _crop);
            var probabilities = _probabilities.AsSpan(0, n * views * c);
            backend.CopyOut(_model.PredictProbabilities(x), probabilities);
            var scores = _scores.AsSpan(0, n * c);
            if (views == 1) probabilities.CopyTo(scores);
            else
            {
                scores.Clear();
                for (int j = 0; j < n; j++)
                    for (int v = 0; v < views; v++)
                        for (int k = 0; k < c; k++) scores[j * c + k] += probabilities[(j * views + v) * c + k] / views;
            }
            foreach (float s in scores)
                if (!float.IsFinite(s))
                    throw new TrainingDivergedException("The model predicts NaN or infinite probabilities: its weights have diverged (try a lower learning rate).");
            consume(start, n, scores);
        }
    }

    private Tensor View(int n)
    {
        if (n == _images!.Shape[0]) return _images;
        if (!_views.TryGetValue(n, out var v)) _views[n] = v = _images.SliceBatch(n);
        return v;
    }

    /// <summary>Frees the resident split and the batch buffers (the model is not touched).</summary>
    public void Dispose()
    {
        _resident?.Dispose();
        _resident = null;
        _images?.Storage.Dispose();
        _images = null;
        _indices?.Storage.Dispose();
        _indices = null;
        _views.Clear();
    }
}
