using System.Globalization;
using Dicc.Engine.Backends;
using Dicc.Engine.Imbalance;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>The baseline model's training loss (docs/method.md, "Long-tail losses").</summary>
public enum LossKind
{
    /// <summary>Softmax cross-entropy (weighted by the reweight rule's class weights when that rule is chosen).</summary>
    CrossEntropy,

    /// <summary>Focal loss (Lin et al. 2017): <c>-(1 - p_y)^gamma log p_y</c>.</summary>
    Focal,

    /// <summary>LDAM (Cao et al. 2019): cross-entropy of <c>s (z - m_y e_y)</c> with margins <c>m_c ∝ n_c^(-1/4)</c>.</summary>
    Ldam,

    /// <summary>Balanced softmax (Ren et al. 2020): cross-entropy of <c>z + log pi</c>, pi the training class prior.</summary>
    BalancedSoftmax,

    /// <summary>Logit-adjusted loss (Menon et al. 2021): cross-entropy of <c>z + tau log pi</c>.</summary>
    LogitAdjusted,
}

/// <summary>Names of <see cref="LossKind"/> as <c>dicc train --loss</c> and config.json's reports spell them.</summary>
public static class LossKinds
{
    /// <summary>The names, in enum order: ce, focal, ldam, balanced-softmax, logit-adjusted.</summary>
    public static IReadOnlyList<string> Names { get; } = ["ce", "focal", "ldam", "balanced-softmax", "logit-adjusted"];

    /// <summary>The loss's name (<c>ce</c>, <c>focal</c>, <c>ldam</c>, <c>balanced-softmax</c>, <c>logit-adjusted</c>).</summary>
    public static string Name(this LossKind kind) => Names[(int)kind];

    /// <summary>Parses a name of <see cref="Names"/> (case-insensitive); throws a <see cref="FormatException"/> listing them.</summary>
    public static LossKind Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t is "cross-entropy" or "crossentropy") return LossKind.CrossEntropy;
        int i = Names.ToList().IndexOf(t);
        return i >= 0 ? (LossKind)i : throw new FormatException($"'{text}' is not a loss; use {string.Join(", ", Names)}.");
    }
}

/// <summary>The settings of the baseline's loss (the loss flags of <c>dicc train</c>).</summary>
public sealed record LossOptions
{
    /// <summary>Focal's default gamma (Lin et al.'s best).</summary>
    public const double DefaultFocalGamma = 2.0;
    /// <summary>LDAM's default logit scale s (Cao et al.).</summary>
    public const double DefaultLdamScale = 30.0;
    /// <summary>LDAM's default largest margin (Cao et al.).</summary>
    public const double DefaultLdamMaxMargin = 0.5;
    /// <summary>Logit adjustment's default tau (Menon et al.).</summary>
    public const double DefaultTau = 1.0;

    /// <summary>The loss.</summary>
    public LossKind Kind { get; init; } = LossKind.CrossEntropy;
    /// <summary>Focal loss exponent gamma (0 = cross-entropy).</summary>
    public double FocalGamma { get; init; } = DefaultFocalGamma;
    /// <summary>Weight the loss with the class-balanced weights of Cui et al. (effective numbers, b = 0.9999) from the first epoch.</summary>
    public bool ClassBalancedWeights { get; init; }
    /// <summary>LDAM's logit scale s.</summary>
    public double LdamScale { get; init; } = DefaultLdamScale;
    /// <summary>LDAM's largest margin (the margin of the rarest class).</summary>
    public double LdamMaxMargin { get; init; } = DefaultLdamMaxMargin;
    /// <summary>Deferred re-weighting: from this epoch on (counting from 1) the loss is weighted with the class-balanced weights; 0 = never.</summary>
    public int DrwEpoch { get; init; }
    /// <summary>Logit adjustment's tau (the logit-adjusted loss adds <c>tau log pi</c>).</summary>
    public double Tau { get; init; } = DefaultTau;
}

/// <summary>
/// The baseline model's loss: logits and labels to a loss (a one-element device tensor, read back only when logging) and
/// its gradient, with per-class weights; every <see cref="LossKind"/> on every backend. Cross-entropy without deferred
/// re-weighting is <see cref="Backend.SoftmaxCrossEntropy"/>; the other losses are
/// <see cref="Backend.AdjustedSoftmaxCrossEntropy"/> with the offsets, margins, scale and focal exponent of
/// docs/method.md ("Long-tail losses"), computed here from the training class counts.
/// </summary>
public sealed class ClassificationLoss
{
    private readonly float[] _readback = new float[1];
    private readonly Tensor? _initialWeights, _drwWeights;

    /// <summary>
    /// The loss <paramref name="options"/> describes over <paramref name="classes"/> classes on <paramref name="backend"/>.
    /// <paramref name="classCounts"/> (training images per class) gives the prior, the margins and the class-balanced weights;
    /// it may be empty for cross-entropy without class-balanced or deferred weights. <paramref name="classWeights"/> are the
    /// reweight rule's weights (used until a deferred re-weighting epoch).
    /// </summary>
    public ClassificationLoss(Backend backend, int classes, LossOptions options, ReadOnlySpan<int> classCounts = default,
        ReadOnlySpan<float> classWeights = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        Backend = backend;
        Classes = classes;
        Options = options;
        Value = backend.Create(new Shape(1));
        bool needCounts = options.Kind is not LossKind.CrossEntropy and not LossKind.Focal || options.ClassBalancedWeights || options.DrwEpoch > 0;
        if (needCounts && classCounts.Length != classes)
            throw new ArgumentException($"{options.Kind.Name()} needs the training count of each of the {classes} classes, got {classCounts.Length}.");
        if (!classWeights.IsEmpty && classWeights.Length != classes)
            throw new ArgumentException($"{classWeights.Length} class weights for {classes} classes.");
        float[]? balanced = options.ClassBalancedWeights || options.DrwEpoch > 0
            ? [.. EffectiveNumber.ClassWeights(classCounts).Select(w => (float)w)] : null;
        _initialWeights = options.ClassBalancedWeights ? Upload(balanced!) : classWeights.IsEmpty ? null : Upload(classWeights.ToArray());
        if (options.DrwEpoch > 0) _drwWeights = Upload(balanced!);
        ClassWeights = _initialWeights;
        switch (options.Kind)
        {
            case LossKind.Ldam:
                Margins = Upload([.. LdamMargins(classCounts, options.LdamMaxMargin).Select(m => (float)m)]);
                Scale = (float)options.LdamScale;
                break;
            case LossKind.BalancedSoftmax:
                Offsets = Upload([.. LogPriors(classCounts).Select(v => (float)v)]);
                break;
            case LossKind.LogitAdjusted:
                Offsets = Upload([.. LogPriors(classCounts).Select(v => (float)(options.Tau * v))]);
                break;
            case LossKind.Focal:
                FocalGamma = (float)options.FocalGamma;
                break;
        }
    }

    private Tensor Upload(float[] values)
    {
        var t = Backend.Create(new Shape(values.Length));
        Backend.CopyIn<float>(t, values);
        return t;
    }

    /// <summary>The backend the loss lives on.</summary>
    public Backend Backend { get; }
    /// <summary>C, the number of classes.</summary>
    public int Classes { get; }
    /// <summary>The loss and its settings.</summary>
    public LossOptions Options { get; }
    /// <summary>The per-class weights of the current epoch on the backend, or null.</summary>
    public Tensor? ClassWeights { get; private set; }
    /// <summary>The per-class logit offsets b (balanced softmax, logit adjustment), or null.</summary>
    public Tensor? Offsets { get; }
    /// <summary>LDAM's per-class margins, or null.</summary>
    public Tensor? Margins { get; }
    /// <summary>The logit scale s (LDAM; 1 otherwise).</summary>
    public float Scale { get; } = 1f;
    /// <summary>The focal exponent (0 unless focal).</summary>
    public float FocalGamma { get; }
    /// <summary>The latest loss, as a one-element device tensor.</summary>
    public Tensor Value { get; }

    /// <summary>Deferred re-weighting: from epoch <see cref="LossOptions.DrwEpoch"/> (counting from 1) the class-balanced weights apply. <paramref name="epoch"/> counts from 0.</summary>
    public void BeginEpoch(int epoch) =>
        ClassWeights = _drwWeights is not null && epoch + 1 >= Options.DrwEpoch ? _drwWeights : _initialWeights;

    /// <summary>Computes the loss and writes dL/dlogits into <paramref name="dlogits"/> when given.</summary>
    public void Compute(Tensor logits, Tensor labels, Tensor? dlogits)
    {
        if (Offsets is null && Margins is null && Scale == 1f && FocalGamma == 0f)
            Backend.SoftmaxCrossEntropy(logits, labels, ClassWeights, Value, dlogits);
        else
            Backend.AdjustedSoftmaxCrossEntropy(logits, labels, ClassWeights, Offsets, Margins, Scale, FocalGamma, Value, dlogits);
    }

    /// <summary>Reads the latest loss to the host (a synchronisation point).</summary>
    public float Read()
    {
        Backend.CopyOut<float>(Value, _readback);
        return _readback[0];
    }

    /// <summary>
    /// LDAM's margins (Cao et al. 2019): <c>m_c = C / n_c^(1/4)</c> with C chosen so that the largest margin (the rarest
    /// class's) is <paramref name="maxMargin"/>. Every class needs at least one training image.
    /// </summary>
    public static double[] LdamMargins(ReadOnlySpan<int> classCounts, double maxMargin = LossOptions.DefaultLdamMaxMargin)
    {
        RequireCounts(classCounts, "LDAM margins");
        var m = new double[classCounts.Length];
        for (int c = 0; c < m.Length; c++) m[c] = 1 / Math.Pow(classCounts[c], 0.25);
        double scale = maxMargin / m.Max();
        for (int c = 0; c < m.Length; c++) m[c] *= scale;
        return m;
    }

    /// <summary>The log of the training class prior, <c>log(n_c / sum n)</c> (balanced softmax and logit adjustment). Every class needs an image.</summary>
    public static double[] LogPriors(ReadOnlySpan<int> classCounts)
    {
        RequireCounts(classCounts, "the class prior");
        double total = 0;
        foreach (int n in classCounts) total += n;
        var v = new double[classCounts.Length];
        for (int c = 0; c < v.Length; c++) v[c] = Math.Log(classCounts[c] / total);
        return v;
    }

    private static void RequireCounts(ReadOnlySpan<int> classCounts, string what)
    {
        if (classCounts.Length == 0) throw new ArgumentException($"{what} needs at least one class.", nameof(classCounts));
        for (int c = 0; c < classCounts.Length; c++)
            if (classCounts[c] < 1)
                throw new ArgumentException(
                    $"Class {c.ToString(CultureInfo.InvariantCulture)} has {classCounts[c].ToString(CultureInfo.InvariantCulture)} training samples; {what} needs at least one sample in every class.",
                    nameof(classCounts));
    }
}
