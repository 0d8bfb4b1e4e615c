// The trainer's view of a model: its module (for parameters, train/eval mode and the state_dict of a
// checkpoint) and a loss per named term for one batch (torchvision RetinaNet.forward in training mode
// returns {"classification", "bbox_regression"}; the total is their sum).
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>A model the <see cref="Trainer"/> can optimise.</summary>
public interface ITrainableModel
{
    /// <summary>The module whose parameters are trained and whose state_dict goes into checkpoints.</summary>
    nn.Module Module { get; }

    /// <summary>
    /// The loss terms of <paramref name="batch"/> as scalar tensors connected to the graph, by name, in a stable order.
    /// The trainer backpropagates their sum.
    /// </summary>
    IReadOnlyList<(string Name, Tensor Value)> ComputeLosses(TrainingBatch batch);
}
