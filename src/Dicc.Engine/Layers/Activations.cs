using Dicc.Engine.Backends;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

public sealed class ReLU : Layer
{
    public override Shape OutputShape(Shape input) => input;
    public override void Forward(Tensor x, Tensor y, StepContext context) => x.Backend.ReluForward(x, y);

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is not null) x.Backend.ReluBackward(y, dy, dx);
    }
}

/// <summary>Max pooling (PyTorch's MaxPool2d, no padding by default; stride defaults to the window).</summary>
public sealed class MaxPool2d : Layer
{
    private PoolGeometry _geometry;

    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0)
    {
        if (kernelSize <= 0 || stride <= 0 || padding < 0) throw new ArgumentException("Invalid MaxPool2d arguments.");
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
    }

    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }

    private PoolGeometry GeometryFor(Shape input)
    {
        if (input.Rank != 4) throw new ShapeMismatchException($"{this} expects [N, C, H, W], got {input}.");
        var g = new PoolGeometry(input[0], input[1], input[2], input[3], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate();
        return g;
    }

    public override Shape OutputShape(Shape input) => GeometryFor(input).OutputShape;
    public override void Prepare(Shape input, Backend backend) => _geometry = GeometryFor(input);

    public override void Forward(Tensor x, Tensor y, StepContext context) => x.Backend.MaxPoolForward(_geometry, x, y);

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

    public Dropout(float probability)
    {
        if (!(probability >= 0f && probability < 1f))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "Dropout probability must be in [0, 1).");
        Probability = probability;
    }

    public float Probability { get; }

    public override void AssignNames(string prefix)
    {
        base.AssignNames(prefix);
        _salt = StableHash(prefix);
    }

    public override Shape OutputShape(Shape input) => input;

    public override void Prepare(Shape input, Backend backend)
    {
        _maskScratch ??= new GrowOnlyBuffer(backend);
        _mask = _maskScratch.View(input);
    }

    public override void Forward(Tensor x, Tensor y, StepContext context)
    {
        if (!context.Training || Probability == 0f)
        {
            if (!ReferenceEquals(x, y)) x.Backend.Copy(x, y);
            return;
        }
        x.Backend.DropoutForward(x, y, _mask!, Probability, SeedFor(context), (ulong)context.Step << 32);
    }

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
    public override Shape OutputShape(Shape input) => new(input[0], checked((int)input.ItemSize));
    public override void Forward(Tensor x, Tensor y, StepContext context) => x.Backend.Copy(x, y);

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        if (dx is not null) x.Backend.Copy(dy, dx);
    }
}
