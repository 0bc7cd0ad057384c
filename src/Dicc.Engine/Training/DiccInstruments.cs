using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Clustering;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Models;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>How one class's subclasses were filled over an epoch (every assignment of every step counts once).</summary>
/// <param name="Subclasses">Ns, the class's subclass count in the plan.</param>
/// <param name="Used">Subclasses that received at least one sample.</param>
/// <param name="Min">The smallest subclass's assignments (0 when one stayed empty).</param>
/// <param name="Max">The largest subclass's assignments.</param>
public sealed record SubclassOccupancy(int Subclasses, int Used, long Min, long Max);

/// <summary>
/// The clustering instruments of one DICC epoch (docs/method.md, "Instruments"), written to metrics.jsonl.
/// </summary>
/// <param name="Occupancy">Per class, in label order.</param>
/// <param name="Churn">Share of training samples, among those assigned in this epoch and the previous DICC epoch, whose
/// latest pseudo-label changed; null in the first DICC epoch.</param>
/// <param name="ChurnPerClass">The same per class (null where a class had no such sample); null with <paramref name="Churn"/>.</param>
/// <param name="CenterDrift">Per class, ||mu_e - mu_(e-1)|| / ||mu_e||: how far the EMA centre moved during the epoch relative
/// to its length; null in the first DICC epoch (and for a class not seen in both).</param>
public sealed record DiccEpochInstruments(
    SubclassOccupancy[] Occupancy,
    double? Churn,
    double?[]? ChurnPerClass,
    double?[]? CenterDrift);

/// <summary>
/// Collects DICC's per-epoch instruments without a host sync inside a training step: after each step the step's
/// pseudo-labels are copied, on the device, into an epoch log at the batch's position; at the epoch's end the log
/// is read once and joined with the epoch's sample order (host data the trainer already has) to give per-sample
/// pseudo-labels, subclass occupancy and churn; the clustering state is read once for the centre drift. The log,
/// the previous epoch's per-sample labels and centres are training state: <see cref="Save"/> and <see cref="Load"/>
/// put them in checkpoints, so a resumed run reports the same instruments as a straight one.
/// </summary>
public sealed class DiccInstruments
{
    private readonly DiccModel _model;
    private readonly Backend _backend;
    private readonly SubclassPlan _plan;
    private readonly int[] _labels;
    private readonly int _batch;
    private readonly Tensor _log;
    private readonly Tensor[] _views;
    private readonly int[] _hostLog, _current;
    private readonly long[] _sizes;
    private int[] _previous;
    private float[]? _previousCenters;
    private bool _hasPrevious;

    /// <param name="model">The DICC model whose pseudo-labels are logged.</param>
    /// <param name="trainLabels">True class of every training sample.</param>
    /// <param name="batch">Batch size of the epoch's steps.</param>
    /// <param name="batchesPerEpoch">Steps per epoch.</param>
    public DiccInstruments(DiccModel model, ReadOnlySpan<int> trainLabels, int batch, int batchesPerEpoch)
    {
        _model = model;
        _backend = model.Backend;
        _plan = model.Options.Clustering.Plan;
        _labels = trainLabels.ToArray();
        _batch = batch;
        int slots = batch * batchesPerEpoch;
        _log = _backend.Create(new Shape(Math.Max(1, slots)), DType.Int32);
        _views = new Tensor[batchesPerEpoch];
        for (int b = 0; b < batchesPerEpoch; b++)
            _views[b] = new Tensor(_log.Storage, new Shape(Math.Min(batch, _labels.Length - b * batch)), DType.Int32, (long)b * batch);
        _hostLog = new int[_log.ElementCount];
        ClearLog();
        _current = new int[_labels.Length];
        _previous = new int[_labels.Length];
        Array.Fill(_previous, -1);
        _sizes = new long[_plan.TotalSubclasses];
    }

    /// <summary>Marks every slot of the log as not written (-1).</summary>
    private void ClearLog()
    {
        Array.Fill(_hostLog, -1);
        _backend.CopyIn<int>(_log, _hostLog);
    }

    /// <summary>Logs the pseudo-labels of the step just taken (a device copy; nothing in a warm-up epoch).</summary>
    public void AfterStep(int batch)
    {
        if (_model.InWarmup || _model.LastPseudoLabels is not { } pseudo) return;
        _backend.Copy(pseudo, _views[batch]);
    }

    /// <summary>
    /// The instruments of the epoch just finished (null for a warm-up epoch), from the log and the epoch's sample
    /// order (<paramref name="order"/>[b * batch + j] is the sample of step b, position j).
    /// </summary>
    public DiccEpochInstruments? EndEpoch(ReadOnlySpan<int> order)
    {
        if (_model.InWarmup) return null;
        _backend.CopyOut<int>(_log, _hostLog);
        int entries = Math.Min(_views.Length * _batch, order.Length);
        var (occupancy, churn, churnPerClass) = Tally(_hostLog.AsSpan(0, entries), order[..entries], _labels, _plan,
            _hasPrevious ? _previous : null, _current, _sizes);
        int classes = _plan.ClassCount;

        var state = _model.Clustering.ReadState();
        double?[]? drift = null;
        if (_previousCenters is not null)
        {
            int m = _model.Options.Clustering.FeatureDim;
            drift = new double?[classes];
            for (int c = 0; c < classes; c++)
            {
                if (!state.Seen[c]) continue;
                double moved = 0, length = 0;
                for (int j = 0; j < m; j++)
                {
                    double now = state.Centers[c * m + j], before = _previousCenters[c * m + j];
                    moved += (now - before) * (now - before);
                    length += now * now;
                }
                drift[c] = length > 0 ? Math.Sqrt(moved / length) : null;
            }
        }

        (_previous, _hasPrevious) = ((int[])_current.Clone(), true);
        _previousCenters = state.Centers;
        return new DiccEpochInstruments(occupancy, churn, churnPerClass, drift);
    }

    /// <summary>
    /// The epoch's occupancy and churn from its log: step slot i assigned pseudo-label <paramref name="log"/>[i] (-1: not written) to sample
    /// <paramref name="order"/>[i]. Writes each sample's latest pseudo-label (-1 = not drawn) into <paramref name="current"/>
    /// and the assignments per subclass into <paramref name="sizes"/>; churn compares <paramref name="current"/> with
    /// <paramref name="previous"/> (null in the first DICC epoch) over the samples assigned in both.
    /// </summary>
    internal static (SubclassOccupancy[] Occupancy, double? Churn, double?[]? ChurnPerClass) Tally(ReadOnlySpan<int> log, ReadOnlySpan<int> order,
        ReadOnlySpan<int> labels, SubclassPlan plan, int[]? previous, int[] current, long[] sizes)
    {
        Array.Fill(current, -1);
        Array.Clear(sizes);
        for (int i = 0; i < log.Length; i++)
        {
            int pseudo = log[i];
            if (pseudo < 0) continue; // a slot no step wrote (a run resumed from a checkpoint older than the instruments)
            if (pseudo >= sizes.Length)
                throw new InvalidOperationException($"Pseudo-label {pseudo} in slot {i} of the epoch log is outside [0, {sizes.Length}).");
            sizes[pseudo]++;
            current[order[i]] = pseudo;
        }

        int classes = plan.ClassCount;
        var occupancy = new SubclassOccupancy[classes];
        for (int c = 0; c < classes; c++)
        {
            int used = 0;
            long min = long.MaxValue, max = 0;
            for (int k = plan.Offset(c); k < plan.Offset(c) + plan.Count(c); k++)
            {
                if (sizes[k] > 0) used++;
                min = Math.Min(min, sizes[k]);
                max = Math.Max(max, sizes[k]);
            }
            occupancy[c] = new SubclassOccupancy(plan.Count(c), used, min, max);
        }
        if (previous is null) return (occupancy, null, null);

        var both = new long[classes];
        var changed = new long[classes];
        for (int s = 0; s < current.Length; s++)
        {
            if (current[s] < 0 || previous[s] < 0) continue;
            both[labels[s]]++;
            if (current[s] != previous[s]) changed[labels[s]]++;
        }
        long total = both.Sum();
        return (occupancy, total == 0 ? null : (double)changed.Sum() / total,
            Enumerable.Range(0, classes).Select(c => both[c] == 0 ? (double?)null : (double)changed[c] / both[c]).ToArray());
    }

    private const string LogName = "instruments.epoch_pseudo_labels", PreviousName = "instruments.previous_pseudo_labels",
        CentersName = "instruments.previous_centers";

    /// <summary>Adds the epoch log, the previous epoch's pseudo-labels and centres to a checkpoint (a resume reports the same instruments).</summary>
    public void Save(CheckpointWriter writer)
    {
        writer.Add(LogName, _log);
        if (_hasPrevious) writer.Add(PreviousName, _previous, _previous.Length);
        if (_previousCenters is not null) writer.Add(CentersName, _previousCenters, _previousCenters.Length);
    }

    /// <summary>Restores the state <see cref="Save"/> wrote; a checkpoint from before the instruments leaves them empty.</summary>
    public void Load(CheckpointReader reader)
    {
        if (reader.Contains(LogName)) reader.ReadInto(LogName, _log);
        else ClearLog();
        _hasPrevious = reader.Contains(PreviousName);
        _previous = _hasPrevious ? reader.ReadInt32s(PreviousName, _labels.Length) : Enumerable.Repeat(-1, _labels.Length).ToArray();
        _previousCenters = reader.Contains(CentersName)
            ? reader.ReadFloats(CentersName, (long)_plan.ClassCount * _model.Options.Clustering.FeatureDim) : null;
    }

    /// <summary>
    /// The entropy (nats) of the class distribution the mapping is trained on: the expected class shares of an epoch
    /// under the rule, times the loss weights (reweight), normalised. A mapping that ignores its input can do no
    /// better than this cross-entropy, so a mapping loss at this value means the mapping has learned only the prior.
    /// </summary>
    public static double MappingPriorEntropy(ImbalanceRule rule, ReadOnlySpan<int> trainCounts)
    {
        var shares = rule == ImbalanceRule.Resample
            ? EffectiveNumber.ResampledClassShares(trainCounts)
            : trainCounts.ToArray().Select(n => (double)n).ToArray();
        var weights = rule.LossWeights(trainCounts);
        var mass = shares.Select((s, c) => s * (weights?[c] ?? 1.0)).ToArray();
        double total = mass.Sum(), entropy = 0;
        foreach (double p in mass.Select(v => v / total))
            if (p > 0) entropy -= p * Math.Log(p);
        return entropy;
    }
}
