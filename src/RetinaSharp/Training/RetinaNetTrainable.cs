// RetinaNet as the trainer's ITrainableModel: the two loss terms of torchvision's RetinaNet.forward in
// training mode ("classification" = focal loss, "bbox_regression" = box loss), summed by the trainer.
using RetinaSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>Trains a <see cref="RetinaNet"/>.</summary>
/// <param name="model">The detector.</param>
public sealed class RetinaNetTrainable(RetinaNet model) : ITrainableModel
{
    /// <summary>The detector.</summary>
    public RetinaNet Model { get; } = model ?? throw new ArgumentNullException(nameof(model));

    /// <inheritdoc/>
    public nn.Module Module => Model;

    /// <summary>The focal loss ("classification") and the box loss ("box_regression") of the batch.</summary>
    public IReadOnlyList<(string Name, Tensor Value)> ComputeLosses(TrainingBatch batch)
    {
        var losses = Model.ComputeLosses(batch.Images, batch.Targets);
        return [("classification", losses.Classification), ("box_regression", losses.BoxRegression)];
    }
}
