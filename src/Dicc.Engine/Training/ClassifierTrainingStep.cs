using Dicc.Engine.Models;
using Dicc.Engine.Layers;
using Dicc.Engine.Optim;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Training;

/// <summary>
/// One supervised step of a plain classifier: forward, softmax cross-entropy, backward, SGD. The inputs
/// are device tensors the caller fills; nothing is allocated after the first step for a batch shape.
/// </summary>
public sealed class ClassifierTrainingStep(Network network, Sgd optimizer, SoftmaxCrossEntropyLoss loss, ulong seed)
{
    public Network Network { get; } = network;
    public Sgd Optimizer { get; } = optimizer;
    public SoftmaxCrossEntropyLoss Loss { get; } = loss;
    public StepContext Context { get; } = new() { Training = true, Seed = seed };

    public void Run(Tensor images, Tensor labels, float learningRate)
    {
        Context.Training = true;
        Context.Step = Optimizer.Steps;
        var logits = Network.Forward(images, Context);
        Loss.Compute(logits, labels, Network.OutputGrad);
        Network.Backward(images, Context);
        Optimizer.Step(learningRate);
    }
}
