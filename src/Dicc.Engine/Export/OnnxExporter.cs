using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Dicc.Engine.Backends.Cpu;
using Dicc.Engine.Data;
using Dicc.Engine.IO;
using Dicc.Engine.Layers;
using Dicc.Engine.Models;
using Dicc.Engine.Training;
using Google.Protobuf;
using Onnx;

namespace Dicc.Engine.Export;

/// <summary>Which crops the exported graph takes of each input image.</summary>
public enum OnnxViews
{
    /// <summary>The run's test protocol: ten-crop when it was trained with ten-crop testing, else the centre crop.</summary>
    Run,

    /// <summary>The centre crop (as validation and <c>dicc predict</c> of a centre-crop run).</summary>
    Center,

    /// <summary>The average of the ten-crop views' probabilities (corners, centre and their mirrors).</summary>
    TenCrop,
}

/// <summary>Settings of <see cref="OnnxExporter.Export"/>.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The lowest ONNX opset the exporter writes.</summary>
    public const int MinOpset = 13;

    /// <summary>The highest ONNX opset the exporter writes (IR version 11).</summary>
    public const int MaxOpset = 23;

    /// <summary>The default opset: 17, which ONNX Runtime 1.12 and later and onnx 1.12 and later read.</summary>
    public const int DefaultOpset = 17;

    /// <summary>The ONNX operator set version, in <see cref="MinOpset"/>..<see cref="MaxOpset"/>.</summary>
    public int Opset { get; init; } = DefaultOpset;

    /// <summary>
    /// True (the default): each BatchNorm is folded into the convolution before it (weights scaled by
    /// gamma / sqrt(var + eps), bias shifted), so the graph has no BatchNormalization node. False: BatchNormalization
    /// nodes with the running statistics, as in the checkpoint.
    /// </summary>
    public bool FoldBatchNorm { get; init; } = true;

    /// <summary>The crops the graph takes (default: the run's test protocol).</summary>
    public OnnxViews Views { get; init; } = OnnxViews.Run;

    /// <summary>For a run directory: "best" (default) or "last".</summary>
    public string Checkpoint { get; init; } = "best";

    /// <summary>Checks the settings; throws an <see cref="InputException"/> naming the setting.</summary>
    public void Validate()
    {
        if (Opset is < MinOpset or > MaxOpset)
            throw new InputException($"opset must be in {MinOpset}..{MaxOpset}, got {Opset}.") { Parameter = "opset" };
        if (!Enum.IsDefined(Views))
            throw new InputException($"views {(int)Views} is not run, center or ten-crop.") { Parameter = "views" };
        ArgumentNullException.ThrowIfNull(Checkpoint);
    }
}

/// <summary>What <see cref="OnnxExporter.Export"/> wrote.</summary>
/// <param name="Path">The ONNX file.</param>
/// <param name="Checkpoint">The checkpoint whose weights it holds.</param>
/// <param name="Method">Baseline or DICC.</param>
/// <param name="Opset">The ONNX opset.</param>
/// <param name="IrVersion">The ONNX IR version that goes with the opset.</param>
/// <param name="InputSize">The input's side: images are [N, 1, InputSize, InputSize].</param>
/// <param name="Crop">The side of the crops the network sees (taken inside the graph).</param>
/// <param name="TenCrop">True when the output averages ten crops, false for the centre crop.</param>
/// <param name="FoldedBatchNorm">True when BatchNorm was folded into the convolutions.</param>
/// <param name="NodeCount">Nodes in the graph.</param>
/// <param name="Bytes">The file's size.</param>
/// <param name="ClassNames">The classes of the output's columns.</param>
public sealed record OnnxExportResult(string Path, string Checkpoint, TrainingMethod Method, int Opset, int IrVersion, int InputSize, int Crop,
    bool TenCrop, bool FoldedBatchNorm, int NodeCount, long Bytes, IReadOnlyList<string> ClassNames);

/// <summary>
/// Writes a trained model as an ONNX inference graph (docs/embedding.md, "ONNX export"): input <c>input</c>, float32
/// [N, 1, S, S] (grayscale faces resized to the run's image side S, pixel / 255; N is dynamic); the centre crop or the
/// ten crops are taken inside the graph; the VGG backbone (BatchNorm folded or kept), then the baseline's linear head and
/// softmax, or DICC's subclass head, softmax and label mapping; output <c>probabilities</c>, float32 [N, C], the numbers
/// <c>dicc predict</c> prints. Class names and preprocessing are in the model's metadata. The protobuf is built with
/// OnnxSharp's classes for the ONNX schema and serialised by Google.Protobuf.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The input's name.</summary>
    public const string InputName = "input";

    /// <summary>The output's name.</summary>
    public const string OutputName = "probabilities";

    /// <summary>Exports the model at <paramref name="path"/> (a run directory or a checkpoint file of one) to <paramref name="onnxPath"/>.</summary>
    /// <exception cref="InputException">No model at <paramref name="path"/>, or a bad setting (the message names it).</exception>
    public static OnnxExportResult Export(string path, string onnxPath, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(onnxPath);
        options ??= new OnnxExportOptions();
        options.Validate();
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; this machine is not.");
        var (run, checkpoint) = RunModel.Locate(path, options.Checkpoint);
        using var backend = new CpuBackend();
        var (model, config) = RunModel.Load(backend, run, checkpoint);

        int size = config.Dataset.ImageSize, crop = config.Options.Crop;
        bool tenCrop = options.Views switch
        {
            OnnxViews.Run => config.Options.TenCropTest,
            OnnxViews.TenCrop => true,
            _ => false,
        };
        var graph = new GraphBuilder(options.Opset, options.FoldBatchNorm);
        string x = graph.Input(InputName, size);
        string views = tenCrop ? graph.TenCrop(x, size, crop) : graph.CenterCrop(x, size, crop);
        string probabilities = model switch
        {
            BaselineModel baseline => graph.Softmax(BaselineLogits(graph, baseline, views)),
            DiccModel dicc => DiccHead(graph, dicc, views),
            _ => throw new NotSupportedException($"ONNX export of a {model.GetType().Name} is not implemented."),
        };
        if (tenCrop) probabilities = graph.AverageViews(probabilities, Augmentation.TenCropViews, model.Classes);
        graph.Output(probabilities, OutputName, model.Classes);

        var onnx = new ModelProto
        {
            IrVersion = IrVersionOf(options.Opset),
            ProducerName = "dicc",
            ProducerVersion = EngineInfo.Version,
            ModelVersion = 1,
            Graph = graph.Build($"dicc_{config.Options.Method.ToString().ToLowerInvariant()}"),
            DocString = $"Facial-expression classifier ({config.Options.Method}, {config.Options.Arch} x{config.Options.Width.ToString(CultureInfo.InvariantCulture)}) " +
                        $"exported by Dicc {EngineInfo.Version} from {checkpoint}. Input '{InputName}': float32 [N, 1, {size}, {size}], a grayscale face " +
                        $"resized to {size}x{size}, pixel / 255. Output '{OutputName}': float32 [N, {model.Classes}] class probabilities " +
                        $"({(tenCrop ? "average over ten crops" : "centre crop")} {crop}x{crop}, taken inside the graph).",
        };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        foreach (var (key, value) in Metadata(config, checkpoint, size, crop, tenCrop))
            onnx.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

        string target = Path.GetFullPath(onnxPath);
        string? folder = Path.GetDirectoryName(target);
        if (folder is not null && !Directory.Exists(folder))
            throw new InputException($"onnx {target}: folder {folder} does not exist.") { Parameter = "onnx" };
        AtomicFile.Write(target, stream => onnx.WriteTo(stream));
        return new OnnxExportResult(target, checkpoint, config.Options.Method, options.Opset, (int)onnx.IrVersion, size, crop, tenCrop,
            options.FoldBatchNorm, onnx.Graph.Node.Count, new FileInfo(target).Length, config.Dataset.ClassNames);
    }

    /// <summary>The ONNX IR version that introduced <paramref name="opset"/> (onnx's own version table).</summary>
    public static int IrVersionOf(int opset) => opset switch
    {
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };

    /// <summary>The baseline's logits as it predicts: times LDAM's scale s, plus the post-hoc offsets, where it has them.</summary>
    private static string BaselineLogits(GraphBuilder graph, BaselineModel baseline, string views)
    {
        string logits = graph.Layer(baseline.Network.Root, views);
        if (baseline.LogitScale != 1f) logits = graph.Scale(logits, baseline.LogitScale);
        return baseline.PosthocOffsets is { } offsets ? graph.AddOffsets(logits, offsets) : logits;
    }

    /// <summary>Subclass logits, softmax, then the label mapping: the MLP and a softmax, or the sum over each class's subclasses.</summary>
    private static string DiccHead(GraphBuilder graph, DiccModel dicc, string views)
    {
        string subclassProbabilities = graph.Softmax(graph.Layer(dicc.Main.Root, views));
        switch (dicc.Options.Mapping)
        {
            case MappingKind.Mlp:
                return graph.Softmax(graph.Layer(dicc.Mapping!.Root, subclassProbabilities));
            case MappingKind.Sum:
                var plan = dicc.Options.Clustering.Plan;
                int k = plan.TotalSubclasses, c = plan.ClassCount;
                var matrix = new float[k * c]; // [K, C]: row j has a 1 in the column of the class subclass j belongs to
                for (int j = 0; j < k; j++) matrix[j * c + plan.ClassOf(j)] = 1f;
                return graph.MatMul(subclassProbabilities, graph.Constant("mapping.sum", matrix, k, c));
            default:
                throw new NotSupportedException($"ONNX export of the {dicc.Options.Mapping} label mapping is not implemented.");
        }
    }

    private static IEnumerable<(string Key, string Value)> Metadata(RunConfig config, string checkpoint, int size, int crop, bool tenCrop)
    {
        yield return ("class_names", JsonSerializer.Serialize(config.Dataset.ClassNames, ExportJson.Default.StringArray));
        yield return ("input_size", size.ToString(CultureInfo.InvariantCulture));
        yield return ("crop", crop.ToString(CultureInfo.InvariantCulture));
        yield return ("views", tenCrop ? "ten-crop" : "centre");
        yield return ("color", "grayscale: L = (299 R + 587 G + 114 B) / 1000, rounded (PIL's 'L' conversion)");
        yield return ("resize", $"to {size}x{size} (the run's training images)");
        yield return ("normalization", "x = pixel / 255 (no mean or standard deviation)");
        yield return ("method", config.Options.Method.ToString().ToLowerInvariant());
        yield return ("arch", $"{config.Options.Arch.ToString().ToLowerInvariant()} x{config.Options.Width.ToString(CultureInfo.InvariantCulture)}");
        yield return ("checkpoint", Path.GetFileName(checkpoint));
        yield return ("engine_version", EngineInfo.Version);
        yield return ("dataset", config.Dataset.Name);
    }

    /// <summary>Builds the node list and initializers of one graph, naming values uniquely.</summary>
    private sealed class GraphBuilder(int opset, bool foldBatchNorm)
    {
        private readonly GraphProto _graph = new();
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private int _next;

        public GraphProto Build(string name)
        {
            _graph.Name = name;
            return _graph;
        }

        private string Fresh(string hint)
        {
            string name = hint;
            while (!_names.Add(name)) name = $"{hint}_{++_next}";
            return name;
        }

        public string Input(string name, int size)
        {
            _names.Add(name);
            _graph.Input.Add(TensorValue(name, Dim("N"), Dim(1), Dim(size), Dim(size)));
            return name;
        }

        public void Output(string value, string name, int classes)
        {
            // Rename the last node's output so that the graph output has a stable name.
            var last = _graph.Node.Last(n => n.Output.Contains(value));
            last.Output[last.Output.IndexOf(value)] = name;
            _graph.Output.Add(TensorValue(name, Dim("N"), Dim(classes)));
        }

        private static TensorShapeProto.Types.Dimension Dim(long value) => new() { DimValue = value };
        private static TensorShapeProto.Types.Dimension Dim(string parameter) => new() { DimParam = parameter };

        private static ValueInfoProto TensorValue(string name, params TensorShapeProto.Types.Dimension[] dims)
        {
            var shape = new TensorShapeProto();
            shape.Dim.AddRange(dims);
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
            };
        }

        private string Node(string op, string hint, IEnumerable<string> inputs, params AttributeProto[] attributes)
        {
            string output = Fresh(hint);
            var node = new NodeProto { OpType = op, Name = Fresh("node_" + hint) };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            _graph.Node.Add(node);
            return output;
        }

        private static AttributeProto Ints(string name, params long[] values)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(values);
            return a;
        }

        private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
        private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

        public string Constant(string hint, ReadOnlySpan<float> values, params long[] dims) =>
            Initializer(hint, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values), dims);

        private string Int64s(string hint, params long[] values) =>
            Initializer(hint, TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()), values.Length);

        private string Initializer(string hint, TensorProto.Types.DataType type, ReadOnlySpan<byte> bytes, params long[] dims)
        {
            string name = Fresh(hint);
            var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
            tensor.Dims.AddRange(dims);
            _graph.Initializer.Add(tensor);
            return name;
        }

        private string Slice(string x, string hint, long[] starts, long[] ends, long[] axes, long[]? steps = null)
        {
            var inputs = new List<string> { x, Int64s(hint + ".starts", starts), Int64s(hint + ".ends", ends), Int64s(hint + ".axes", axes) };
            if (steps is not null) inputs.Add(Int64s(hint + ".steps", steps));
            return Node("Slice", hint, inputs);
        }

        private string Crop(string x, string hint, int top, int left, int crop) =>
            Slice(x, hint, [top, left], [top + crop, left + crop], [2, 3]);

        /// <summary>The centre crop (Augmentation.CenterOffset, torchvision's rounding): [N, 1, crop, crop].</summary>
        public string CenterCrop(string x, int size, int crop) =>
            size == crop ? x : Crop(x, "centre_crop", Augmentation.CenterOffset(size, crop), Augmentation.CenterOffset(size, crop), crop);

        /// <summary>
        /// The ten views of each image in the engine's order (Augmentation.TenCropViewsOf: four corners and the centre, then
        /// the mirrors of the crops at the mirrored positions), stacked image-major: [10 N, 1, crop, crop].
        /// </summary>
        public string TenCrop(string x, int size, int crop)
        {
            int far = size - crop, centre = Augmentation.CenterOffset(size, crop);
            (int Top, int Left)[] corners = [(0, 0), (0, far), (far, 0), (far, far), (centre, centre)];
            var views = new List<string>();
            for (int k = 0; k < 5; k++) views.Add(Crop(x, $"crop{k}", corners[k].Top, corners[k].Left, crop));
            for (int k = 0; k < 5; k++)
            {
                string region = Crop(x, $"crop{5 + k}", corners[k].Top, far - corners[k].Left, crop);
                views.Add(Slice(region, $"mirror{5 + k}", [-1], [long.MinValue], [3], [-1]));
            }
            string stacked = Node("Concat", "ten_crops", views, Int("axis", 1));           // [N, 10, crop, crop]
            return Node("Reshape", "ten_crop_batch", [stacked, Int64s("ten_crop_shape", -1, 1, crop, crop)]);
        }

        /// <summary>[V N, C] probabilities, image-major -> the mean over each image's V views, [N, C].</summary>
        public string AverageViews(string probabilities, int views, int classes)
        {
            string grouped = Node("Reshape", "views", [probabilities, Int64s("views_shape", -1, views, classes)]);
            return opset >= 18
                ? Node("ReduceMean", "view_mean", [grouped, Int64s("view_axis", 1)], Int("keepdims", 0))
                : Node("ReduceMean", "view_mean", [grouped], Ints("axes", 1), Int("keepdims", 0));
        }

        public string Softmax(string x) => Node("Softmax", "softmax", [x], Int("axis", 1));

        /// <summary>[N, C] logits + per-class offsets [C] (the post-hoc logit adjustment).</summary>
        public string AddOffsets(string x, float[] offsets) =>
            Node("Add", "posthoc_adjustment", [x, Constant("posthoc_offsets", offsets, offsets.Length)]);

        public string MatMul(string a, string b) => Node("MatMul", "matmul", [a, b]);

        /// <summary>x times a scalar (LDAM's logit scale).</summary>
        public string Scale(string x, float factor) => Node("Mul", "logit_scale", [x, Constant("logit_scale_factor", [factor])]);

        /// <summary>Emits a layer (a Sequential recursively) in evaluation mode; returns its output.</summary>
        public string Layer(Layer layer, string x)
        {
            if (layer is Frozen frozen) return Layer(frozen.Inner, x); // frozen only in training
            if (layer is not Sequential sequential) return Single(layer, null, x);
            var layers = sequential.Layers;
            for (int i = 0; i < layers.Count; i++)
            {
                if (foldBatchNorm && layers[i] is Conv2d conv && i + 1 < layers.Count && layers[i + 1] is BatchNorm2d bn)
                {
                    x = Single(conv, bn, x);
                    i++;
                    continue;
                }
                x = layers[i] is Sequential or Frozen ? Layer(layers[i], x) : Single(layers[i], null, x);
            }
            return x;
        }

        /// <summary>The layer's PyTorch-style name (its parameters' prefix in the checkpoint).</summary>
        private static string Name(Layer layer) => string.IsNullOrEmpty(layer.Name) ? layer.GetType().Name.ToLowerInvariant() : layer.Name;

        private string Single(Layer layer, BatchNorm2d? folded, string x)
        {
            string name = Name(layer);
            switch (layer)
            {
                case Conv2d conv:
                    return Convolution(conv, folded, x, name);
                case BatchNorm2d bn:
                    return Node("BatchNormalization", name, [x, Constant(name + ".weight", Host(bn.Weight.Value), bn.Channels),
                        Constant(name + ".bias", Host(bn.Bias.Value), bn.Channels), Constant(name + ".running_mean", Host(bn.RunningMean), bn.Channels),
                        Constant(name + ".running_var", Host(bn.RunningVar), bn.Channels)], Float("epsilon", bn.Epsilon));
                case ReLU:
                    return Node("Relu", name, [x]);
                case MaxPool2d pool:
                    return Node("MaxPool", name, [x], Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride),
                        Ints("pads", pool.Padding, pool.Padding, pool.Padding, pool.Padding));
                case Flatten:
                    return Node("Flatten", name, [x], Int("axis", 1));
                case Dropout:
                    return x; // the identity in evaluation mode
                case Linear linear:
                    var inputs = new List<string> { x, Constant(name + ".weight", Host(linear.Weight.Value), linear.OutFeatures, linear.InFeatures) };
                    if (linear.Bias is not null) inputs.Add(Constant(name + ".bias", Host(linear.Bias.Value), linear.OutFeatures));
                    return Node("Gemm", name, inputs, Int("transB", 1));
                case CosineLinear cosine:
                    // cos(x, w_j): the feature normalised in the graph (LpNormalization has no epsilon, so an all-zero
                    // feature, which the engine maps to zero logits, is left to the runtime), the weights by the engine's own op.
                    string unit = Node("LpNormalization", name + ".normalize", [x], Int("axis", 1), Int("p", 2));
                    return Node("Gemm", name, [unit, Constant(name + ".weight_normalized", cosine.NormalizedWeight(),
                        cosine.OutFeatures, cosine.InFeatures)], Int("transB", 1));
                default:
                    throw new NotSupportedException($"ONNX export of layer {layer} ({layer.GetType().Name}) is not implemented.");
            }
        }

        private string Convolution(Conv2d conv, BatchNorm2d? bn, string x, string name)
        {
            var weight = Host(conv.Weight.Value);
            var bias = conv.Bias is null ? null : Host(conv.Bias.Value);
            if (bn is not null)
            {
                // y = gamma (conv(x) + b - mean) / sqrt(var + eps) + beta = conv'(x) + b', in double, rounded once.
                var gamma = Host(bn.Weight.Value);
                var beta = Host(bn.Bias.Value);
                var mean = Host(bn.RunningMean);
                var variance = Host(bn.RunningVar);
                int perChannel = weight.Length / conv.OutChannels;
                var foldedBias = new float[conv.OutChannels];
                for (int o = 0; o < conv.OutChannels; o++)
                {
                    double scale = gamma[o] / Math.Sqrt((double)variance[o] + bn.Epsilon);
                    for (int j = 0; j < perChannel; j++) weight[o * perChannel + j] = (float)(weight[o * perChannel + j] * scale);
                    foldedBias[o] = (float)(((bias?[o] ?? 0.0) - mean[o]) * scale + beta[o]);
                }
                bias = foldedBias;
                name = $"{name}+{Name(bn)}";
            }
            var inputs = new List<string> { x, Constant(name + ".weight", weight, conv.OutChannels, conv.InChannels, conv.KernelSize, conv.KernelSize) };
            if (bias is not null) inputs.Add(Constant(name + ".bias", bias, conv.OutChannels));
            return Node("Conv", name, inputs, Ints("kernel_shape", conv.KernelSize, conv.KernelSize), Ints("strides", conv.Stride, conv.Stride),
                Ints("pads", conv.Padding, conv.Padding, conv.Padding, conv.Padding));
        }

        private static float[] Host(Tensors.Tensor t) => t.Backend.ToArray<float>(t);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class ExportJson : System.Text.Json.Serialization.JsonSerializerContext;
