using Dicc.Engine.Layers;

namespace Dicc.Engine.Models;

/// <summary>The depth of the VGG (the number of weight layers in the original ImageNet network).</summary>
public enum VggDepth
{
    /// <summary>VGG11.</summary>
    Vgg11 = 11,
    /// <summary>VGG13.</summary>
    Vgg13 = 13,
    /// <summary>VGG16.</summary>
    Vgg16 = 16,
    /// <summary>VGG19, the paper's backbone.</summary>
    Vgg19 = 19,
}

/// <summary>The classifier layer on top of the backbone's feature.</summary>
public enum ClassifierHead
{
    /// <summary>A linear layer with bias (the paper).</summary>
    Linear,

    /// <summary>
    /// A cosine classifier (<see cref="Layers.CosineLinear"/>): logits are the cosines between the feature and each class's
    /// weight vector, the head LDAM's scale s assumes (docs/method.md, "Long-tail losses").
    /// </summary>
    Cosine,
}

/// <summary>Options of the FER-style VGG (docs/method.md, "The model"): conv3x3 + BatchNorm + ReLU blocks, five 2x2 max-pools.</summary>
public sealed record VggOptions
{
    /// <summary>The depth (default VGG19).</summary>
    public VggDepth Depth { get; init; } = VggDepth.Vgg19;
    /// <summary>Input channels (1: grayscale).</summary>
    public int InputChannels { get; init; } = 1;

    /// <summary>Square input side; 44 (train crop) and 48 (full image) both pool down to 1x1.</summary>
    public int InputSize { get; init; } = 44;

    /// <summary>Channel multiplier (1.0 = the paper's network; 0.25 makes CPU runs practical).</summary>
    public double Width { get; init; } = 1.0;

    /// <summary>Dropout on the feature vector in training (0.5, docs/method.md).</summary>
    public float Dropout { get; init; } = 0.5f;

    /// <summary>The classifier layer (linear by default).</summary>
    public ClassifierHead Head { get; init; } = ClassifierHead.Linear;

    /// <summary>Throws an <see cref="ArgumentException"/> for an unsupported depth, channel count, input size, width or dropout.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Depth)) throw new ArgumentException($"Unknown VGG depth {(int)Depth}; use 11, 13, 16 or 19.");
        if (InputChannels <= 0) throw new ArgumentException($"Input channels must be positive, got {InputChannels}.");
        // Five floor-halvings reach exactly 1x1 for sides 32..63, so the feature is always 512 x width.
        if (InputSize < 32 || InputSize > 63)
            throw new ArgumentException($"Input size {InputSize} is not supported: VGG pools five times, so sides 32..63 (e.g. 44 or 48) give a 1x1 feature map.");
        if (!(Width > 0 && Width <= 4)) throw new ArgumentException($"Width multiplier must be in (0, 4], got {Width}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.");
        if (!Enum.IsDefined(Head)) throw new ArgumentException($"Unknown classifier head {(int)Head}; use linear or cosine.");
    }
}

/// <summary>
/// The VGG that FER repositories call VGG19 (and its 11/13/16 siblings): the backbone maps [N, C, S, S] to
/// a feature [N, 512 x width]; heads are built on top (a linear classifier, or DICC's subclass head).
/// </summary>
public static class Vgg
{
    /// <summary>Channel configuration; 0 marks a 2x2 max-pool.</summary>
    public static int[] Configuration(VggDepth depth) => depth switch
    {
        VggDepth.Vgg11 => [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        VggDepth.Vgg13 => [64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        VggDepth.Vgg16 => [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
        VggDepth.Vgg19 => [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
        _ => throw new ArgumentOutOfRangeException(nameof(depth), depth, "Unknown VGG depth."),
    };

    /// <summary>A layer's channel count at a width multiplier (at least 1).</summary>
    public static int Channels(int baseChannels, double width) => Math.Max(1, (int)Math.Round(baseChannels * width));

    /// <summary>Length of the feature vector: 512 x width (rounded).</summary>
    public static int FeatureSize(VggOptions options) => Channels(512, options.Width);

    /// <summary>conv-BN-ReLU blocks and pools, then a flatten to [N, FeatureSize].</summary>
    public static Sequential Backbone(VggOptions options)
    {
        options.Validate();
        var layers = new List<Layer>();
        int channels = options.InputChannels;
        foreach (int c in Configuration(options.Depth))
        {
            if (c == 0)
            {
                layers.Add(new MaxPool2d(2, 2));
                continue;
            }
            int outChannels = Channels(c, options.Width);
            layers.Add(new Conv2d(channels, outChannels, 3, stride: 1, padding: 1));
            layers.Add(new BatchNorm2d(outChannels));
            layers.Add(new ReLU());
            channels = outChannels;
        }
        layers.Add(new Flatten());
        return new Sequential(layers);
    }

    /// <summary>Dropout on the feature, then Linear(features -> outputs) or, for <see cref="ClassifierHead.Cosine"/>, CosineLinear.</summary>
    public static Sequential Head(int features, int outputs, float dropout, ClassifierHead head = ClassifierHead.Linear) =>
        new(new Dropout(dropout), head == ClassifierHead.Cosine ? new CosineLinear(features, outputs) : new Linear(features, outputs));

    /// <summary>
    /// The baseline classifier: backbone (layer 0) followed by the head (layer 1). With <paramref name="freezeBackbone"/>
    /// the backbone is wrapped in <see cref="Frozen"/>: it always runs in evaluation mode and passes no gradient (cRT).
    /// </summary>
    public static Sequential Classifier(VggOptions options, int classes, bool freezeBackbone = false)
    {
        var backbone = Backbone(options);
        return new(freezeBackbone ? new Frozen(backbone) : backbone, Head(FeatureSize(options), classes, options.Dropout, options.Head));
    }
}
