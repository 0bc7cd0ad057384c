using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>2-D convolution (PyTorch's Conv2d, groups 1): weights [out, in, k, k], Kaiming-normal fan-out, bias 0.</summary>
public sealed class Conv2d : Layer
{
    private ConvolutionGeometry _geometry;

    /// <summary>A square convolution from <paramref name="inChannels"/> to <paramref name="outChannels"/> channels (weights Kaiming-normal fan-out, bias 0).</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = true)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || stride <= 0 || padding < 0)
            throw new ArgumentException($"Invalid Conv2d({inChannels}, {outChannels}, k={kernelSize}, s={stride}, p={padding}).");
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        int fanOut = outChannels * kernelSize * kernelSize;
        Weight = new Parameter("weight", new Shape(outChannels, inChannels, kernelSize, kernelSize),
            Initializer.KaimingNormalFanOut, inChannels * kernelSize * kernelSize, fanOut);
        Bias = bias ? new Parameter("bias", new Shape(outChannels), Initializer.Zeros) : null;
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>The kernel's side.</summary>
    public int KernelSize { get; }
    /// <summary>The stride.</summary>
    public int Stride { get; }
    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }
    /// <summary>The weights [out, in, k, k].</summary>
    public Parameter Weight { get; }
    /// <summary>The bias [out], or null.</summary>
    public Parameter? Bias { get; }

    /// <inheritdoc/>
    public override IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    private ConvolutionGeometry GeometryFor(Shape input)
    {
        input.RequireRank(4);
        if (input[1] != InChannels)
            throw new ShapeMismatchException($"{this} expects {InChannels} input channels, got {input}.");
        var g = new ConvolutionGeometry(input[0], InChannels, input[2], input[3], OutChannels, KernelSize, KernelSize,
            Stride, Stride, Padding, Padding);
        g.Validate();
        return g;
    }

    /// <inheritdoc/>
    public override Shape OutputShape(Shape input) => GeometryFor(input).OutputShape;

    /// <inheritdoc/>
    public override void Prepare(Shape input, Backend backend)
    {
        _geometry = GeometryFor(input);
        backend.ReserveWorkspace(backend.ConvolutionWorkspaceBytes(_geometry));
    }

    /// <inheritdoc/>
    public override void Forward(Tensor x, Tensor y, StepContext context) =>
        x.Backend.ConvolutionForward(_geometry, x, Weight.Value, Bias?.Value, y);

    /// <inheritdoc/>
    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        var backend = x.Backend;
        backend.ConvolutionBackwardFilter(_geometry, x, dy, Weight.Grad, Bias?.Grad);
        if (dx is not null) backend.ConvolutionBackwardData(_geometry, dy, Weight.Value, dx);
    }

    /// <inheritdoc/>
    public override long ForwardFlops(Shape input) => 2 * GeometryFor(input).ForwardMacs;
}
