using Dicc.Engine;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// The engine names its settings as its API does ("emaDecay must be in [0, 1], got 1.5."), so that a program
/// that embeds it is not told about flags it never used; the command's users know those settings as flags.
/// An <see cref="InputException"/> whose <see cref="InputException.Parameter"/> is one of these gets the flag in
/// its place.
/// </summary>
internal static class ParameterFlags
{
    public static IReadOnlyDictionary<string, string> Flags { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["arch"] = "--arch", ["width"] = "--width", ["dropout"] = "--dropout", ["crop"] = "--crop",
        ["emaDecay"] = "--ema-decay", ["partition"] = "--partition", ["mapping"] = "--mapping", ["mappingInput"] = "--mapping-input",
        ["mappingLrScale"] = "--mapping-lr-scale", ["warmupEpochs"] = "--warmup-epochs", ["jointWeight"] = "--joint-weight",
        ["loss"] = "--loss", ["focalGamma"] = "--focal-gamma", ["cbWeights"] = "--cb-weights", ["ldamScale"] = "--ldam-scale",
        ["ldamMaxMargin"] = "--ldam-max-margin", ["drwEpoch"] = "--drw-epoch", ["tau"] = "--tau", ["posthocTau"] = "--posthoc-tau",
        ["head"] = "--head", ["initFrom"] = "--init-from", ["freeze"] = "--freeze", ["resetHead"] = "--reset-head",
        ["selectOn"] = "--select-on", ["epochs"] = "--epochs", ["batchSize"] = "--batch", ["batch"] = "--batch",
        ["steps"] = "--steps", ["learningRate"] = "--lr", ["momentum"] = "--momentum", ["weightDecay"] = "--wd",
        ["logEvery"] = "--log-every", ["schedule"] = "--schedule", ["preset"] = "--preset",
        ["device"] = "--device", ["checkpoint"] = "--checkpoint", ["rule"] = "--rule", ["run"] = "--out",
        ["size"] = "--size", ["opset"] = "--opset", ["onnx"] = "--onnx",
        ["faceCascade"] = "--face-cascade", ["faceDetector"] = "--detect-faces", ["groupBy"] = "--group-by", ["folds"] = "--folds",
    };

    /// <summary>The engine's names for data options (<see cref="Engine.Data.DataArgumentException.Option"/>) and the flags that set them.</summary>
    public static IReadOnlyDictionary<string, string> DataFlags { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["counts"] = "--counts", ["beta"] = "--beta", ["profile"] = "--profile", ["per class"] = "--per-class",
        ["max count"] = "--max-count", ["out"] = "--out", ["size"] = "--size", ["image size"] = "--size", ["classes"] = "--classes",
        ["class map"] = "--class-map", ["test fraction"] = "--test-fraction",
        ["face margin"] = "--face-margin", ["face detector"] = "--detect-faces",
    };

    /// <summary>The exception's message with its leading parameter (or data option) name replaced by the flag, when there is one.</summary>
    public static string Translate(InputException e)
    {
        if (e is Engine.Data.DataArgumentException data && DataFlags.TryGetValue(data.Option, out var dataFlag) &&
            e.Message.StartsWith(data.Option + ": ", StringComparison.Ordinal))
            return dataFlag + e.Message[data.Option.Length..];
        return e.Parameter is { } p && Flags.TryGetValue(p, out var flag) && e.Message.StartsWith(p, StringComparison.Ordinal)
            ? flag + e.Message[p.Length..]
            : e.Message;
    }
}
