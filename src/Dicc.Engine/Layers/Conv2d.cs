using Dicc.Engine.Backends;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>2-D convolution (PyTorch's Conv2d, groups 1): weights [out, in, k, k], Kaiming-normal fan-out, bias 0.</summary>
public sealed class Conv2d : Layer
{
    private ConvolutionGeometry _geometry;

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

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

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

    public override Shape OutputShape(Shape input) => GeometryFor(input).OutputShape;

    public override void Prepare(Shape input, Backend backend)
    {
        _geometry = GeometryFor(input);
        backend.ReserveWorkspace(backend.ConvolutionWorkspaceBytes(_geometry));
    }

    public override void Forward(Tensor x, Tensor y, StepContext context) =>
        x.Backend.ConvolutionForward(_geometry, x, Weight.Value, Bias?.Value, y);

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx, StepContext context)
    {
        var backend = x.Backend;
        backend.ConvolutionBackwardFilter(_geometry, x, dy, Weight.Grad, Bias?.Grad);
        if (dx is not null) backend.ConvolutionBackwardData(_geometry, dy, Weight.Value, dx);
    }

    public override long ForwardFlops(Shape input) => 2 * GeometryFor(input).ForwardMacs;
}
