using System.Globalization;

namespace Dicc.Engine.Optim;

/// <summary>Learning rate per epoch (0-based), set at the start of each epoch as FER training scripts do.</summary>
public abstract record LearningRateSchedule(double BaseRate)
{
    /// <summary>The learning rate of epoch <paramref name="epoch"/> (0-based).</summary>
    public abstract double At(int epoch);

    /// <summary>Text form, parseable by <see cref="Parse"/>.</summary>
    public abstract string Describe();

    /// <summary>
    /// Parses "constant", "step:EVERY:GAMMA", "decay-after:START:EVERY:GAMMA" (the FER preset is
    /// decay-after:80:5:0.9) or "cosine:EPOCHS[:MIN_RATE]".
    /// </summary>
    public static LearningRateSchedule Parse(string text, double baseRate)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().ToLowerInvariant().Split(':');
        double Num(int i) => i < parts.Length && double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v : throw new FormatException($"Schedule '{text}': part {i + 1} must be a number.");
        int Int(int i) => i < parts.Length && int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v : throw new FormatException($"Schedule '{text}': part {i + 1} must be an integer.");
        void Arity(params int[] allowed)
        {
            if (!allowed.Contains(parts.Length))
                throw new FormatException($"Schedule '{text}' has {parts.Length - 1} arguments; expected {string.Join(" or ", allowed.Select(a => a - 1))}.");
        }
        switch (parts[0])
        {
            case "constant": Arity(1); return new ConstantSchedule(baseRate);
            case "step": Arity(3); return new StepSchedule(baseRate, Int(1), Num(2));
            case "decay-after": Arity(4); return new DecayAfterSchedule(baseRate, Int(1), Int(2), Num(3));
            case "cosine": Arity(2, 3); return new CosineSchedule(baseRate, Int(1), parts.Length > 2 ? Num(2) : 0);
            default:
                throw new FormatException($"Unknown schedule '{text}': use constant, step:EVERY:GAMMA, decay-after:START:EVERY:GAMMA or cosine:EPOCHS[:MIN].");
        }
    }

    /// <summary>A number in its shortest round-trip form.</summary>
    protected static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>The same rate every epoch.</summary>
public sealed record ConstantSchedule(double BaseRate) : LearningRateSchedule(BaseRate)
{
    /// <inheritdoc/>
    public override double At(int epoch) => BaseRate;
    /// <inheritdoc/>
    public override string Describe() => "constant";
}

/// <summary>lr = base * gamma^floor(epoch / every) (PyTorch's StepLR).</summary>
public sealed record StepSchedule : LearningRateSchedule
{
    /// <summary>The rate times <paramref name="gamma"/> every <paramref name="every"/> epochs.</summary>
    public StepSchedule(double baseRate, int every, double gamma) : base(baseRate)
    {
        if (every <= 0) throw new ArgumentOutOfRangeException(nameof(every), every, "Step interval must be positive.");
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Gamma must be positive.");
        Every = every;
        Gamma = gamma;
    }

    /// <summary>Epochs between decays.</summary>
    public int Every { get; }
    /// <summary>The decay factor.</summary>
    public double Gamma { get; }
    /// <inheritdoc/>
    public override double At(int epoch) => BaseRate * Math.Pow(Gamma, epoch / Every);
    /// <inheritdoc/>
    public override string Describe() => $"step:{Every}:{F(Gamma)}";
}

/// <summary>
/// "x gamma every k epochs after epoch e", the FER scripts' rule:
/// <c>lr = base * gamma^floor((epoch - start) / every)</c> for epoch &gt; start, else base.
/// </summary>
public sealed record DecayAfterSchedule : LearningRateSchedule
{
    /// <summary>The base rate until epoch <paramref name="start"/>, then times <paramref name="gamma"/> every <paramref name="every"/> epochs.</summary>
    public DecayAfterSchedule(double baseRate, int start, int every, double gamma) : base(baseRate)
    {
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "Start epoch must be non-negative.");
        if (every <= 0) throw new ArgumentOutOfRangeException(nameof(every), every, "Decay interval must be positive.");
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Gamma must be positive.");
        Start = start;
        Every = every;
        Gamma = gamma;
    }

    /// <summary>The epoch the decay starts.</summary>
    public int Start { get; }
    /// <summary>Epochs between decays.</summary>
    public int Every { get; }
    /// <summary>The decay factor.</summary>
    public double Gamma { get; }
    /// <inheritdoc/>
    public override double At(int epoch) => epoch > Start ? BaseRate * Math.Pow(Gamma, (epoch - Start) / Every) : BaseRate;
    /// <inheritdoc/>
    public override string Describe() => $"decay-after:{Start}:{Every}:{F(Gamma)}";
}

/// <summary>Cosine annealing per epoch: lr = min + (base - min) * (1 + cos(pi * epoch / epochs)) / 2.</summary>
public sealed record CosineSchedule : LearningRateSchedule
{
    /// <summary>Cosine annealing from the base rate to <paramref name="minRate"/> over <paramref name="epochs"/> epochs.</summary>
    public CosineSchedule(double baseRate, int epochs, double minRate = 0) : base(baseRate)
    {
        if (epochs <= 0) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Cosine schedule needs a positive number of epochs.");
        if (minRate < 0 || minRate > baseRate) throw new ArgumentOutOfRangeException(nameof(minRate), minRate, "Minimum rate must be in [0, base rate].");
        Epochs = epochs;
        MinRate = minRate;
    }

    /// <summary>The schedule's length in epochs.</summary>
    public int Epochs { get; }
    /// <summary>The final rate.</summary>
    public double MinRate { get; }
    /// <inheritdoc/>
    public override double At(int epoch) =>
        MinRate + (BaseRate - MinRate) * (1 + Math.Cos(Math.PI * Math.Min(epoch, Epochs) / Epochs)) / 2;
    /// <inheritdoc/>
    public override string Describe() => $"cosine:{Epochs}:{F(MinRate)}";
}
