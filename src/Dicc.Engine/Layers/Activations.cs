using Dicc.Engine.Backends;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>ReLU, elementwise max(x, 0).</summary>
public sealed class ReLU : Layer
{
    /// <inheritdoc/>
    public override Shape OutputShape(Shape input) => input;
    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context) => x.Backend.ReluForward(x, y);

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is not null) x.Backend.ReluBackward(y, dy, dx);
    }
}

/// <summary>Max pooling (PyTorch's MaxPool2d, no padding by default; stride defaults to the window).</summary>
public sealed class MaxPool2d : Layer
{
    private PoolGeometry _geometry;

    /// <summary>Max pooling with a square window (PyTorch's MaxPool2d, floor mode).</summary>
    /// <param name="kernelSize">The window's side.</param>
    /// <param name="stride">The step between windows (default: the window's side).</param>
    /// <param name="padding">Padding on each side (never wins the maximum).</param>
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0)
    {
        if (kernelSize <= 0 || stride <= 0 || padding < 0) throw new ArgumentException("Invalid MaxPool2d arguments.");
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
    }

    /// <summary>The window's side.</summary>
    public int KernelSize { get; }
    /// <summary>The step between windows.</summary>
    public int Stride { get; }
    /// <summary>Padding on each side.</summary>
    public int Padding { get; }

    private PoolGeometry GeometryFor(Shape input)
    {
        if (input.Rank != 4) throw new ShapeMismatchException($"{this} expects [N, C, H, W], got {input}.");
        var g = new PoolGeometry(input[0], input[1], input[2], input[3], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate();
        return g;
    }

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input) => GeometryFor(input).OutputShape;
    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend) => _geometry = GeometryFor(input);

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context) => x.Backend.MaxPoolForward(_geometry, x, y);

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is not null) x.Backend.MaxPoolBackward(_geometry, x, y, dy, dx);
    }
}

/// <summary>
/// Inverted dropout in training, identity in evaluation. The mask of step s is drawn from the Philox
/// stream (run seed mixed with this layer's name) at counter s * 2^32, so it is reproducible and equal
/// on every backend.
/// </summary>
public sealed class Dropout : Layer
{
    private GrowOnlyBuffer? _maskScratch;
    private Tensor? _mask;
    private ulong _salt;

    /// <summary>Dropout that zeroes each element with probability <paramref name="probability"/> in training and scales the rest by 1 / (1 - p); the identity in evaluation.</summary>
    public Dropout(float probability)
    {
        if (!(probability >= 0f && probability < 1f))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "Dropout probability must be in [0, 1).");
        Probability = probability;
    }

    /// <summary>The probability of zeroing an element in training.</summary>
    public float Probability { get; }

    /// <inheritdoc/>
    public override void AssignNames(string prefix)
    {
        base.AssignNames(prefix);
        _salt = StableHash(prefix);
    }

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input) => input;

    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend)
    {
        _maskScratch ??= new GrowOnlyBuffer(backend);
        _mask = _maskScratch.View(input);
    }

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        if (!context.Training || Probability == 0f)
        {
            if (!ReferenceEquals(x, y)) x.Backend.Copy(x, y);
            return;
        }
        x.Backend.DropoutForward(x, y, _mask!, Probability, SeedFor(context), (ulong)context.Step << 32);
    }

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is null) return;
        if (!context.Training || Probability == 0f) x.Backend.Copy(dy, dx);
        else x.Backend.Multiply(dy, _mask!, dx);
    }

    private ulong SeedFor(StepContext context) => SplitMix(context.Seed ^ _salt);

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>FNV-1a of the name: stable across runs and processes (string.GetHashCode is not).</summary>
    internal static ulong StableHash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return h;
    }
}

/// <summary>[N, C, H, W] -> [N, C*H*W].</summary>
public sealed class Flatten : Layer
{
    /// <inheritdoc/>
    public override Shape OutputShape(Shape input) => new(input[0], checked((int)input.ItemSize));
    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context) => x.Backend.Copy(x, y);

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is not null) x.Backend.Copy(dy, dx);
    }
}
