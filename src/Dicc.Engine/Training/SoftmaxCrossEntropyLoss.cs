using Dicc.Engine.Backends;
using Dicc.Engine.Layers;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>
/// Softmax cross-entropy with optional class weights (PyTorch's weighted mean). The loss stays on the
/// device in a one-element tensor; read it back only when logging.
/// </summary>
public sealed class SoftmaxCrossEntropyLoss
{
    private readonly float[] _readback = new float[1];

    /// <summary>Softmax cross-entropy over <paramref name="classes"/> classes on <paramref name="backend"/>, weighted per true class when <paramref name="classWeights"/> is given.</summary>
    public SoftmaxCrossEntropyLoss(Backend backend, int classes, ReadOnlySpan<float> classWeights = default)
    {
        Backend = backend;
        Classes = classes;
        Value = backend.Create(new Shape(1));
        if (!classWeights.IsEmpty)
        {
            if (classWeights.Length != classes)
                throw new ArgumentException($"{classWeights.Length} class weights for {classes} classes.");
            foreach (float w in classWeights)
                if (!(w >= 0) || float.IsInfinity(w)) throw new ArgumentException($"Class weights must be finite and non-negative, got {w}.");
            ClassWeights = backend.Create(new Shape(classes));
            backend.CopyIn(ClassWeights, classWeights);
        }
    }

    /// <summary>The backend the loss lives on.</summary>
    public Backend Backend { get; }
    /// <summary>C, the number of classes.</summary>
    public int Classes { get; }
    /// <summary>The per-class weights on the backend, or null.</summary>
    public Tensor? ClassWeights { get; }

    /// <summary>The latest loss, as a one-element device tensor.</summary>
    public Tensor Value { get; }

    /// <summary>Computes the loss and writes dL/dlogits into <paramref name="dlogits"/> when given.</summary>
    public void Compute(Tensor logits, Tensor labels, Tensor? dlogits) =>
        Backend.SoftmaxCrossEntropy(logits, labels, ClassWeights, Value, dlogits);

    /// <summary>Reads the latest loss to the host (a synchronisation point).</summary>
    public float Read()
    {
        Backend.CopyOut<float>(Value, _readback);
        return _readback[0];
    }
}
