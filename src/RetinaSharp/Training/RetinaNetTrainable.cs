// RetinaNet as the trainer's ITrainableModel: the two loss terms of torchvision's RetinaNet.forward in
// training mode ("classification" = focal loss, "bbox_regression" = box loss), summed by the trainer, and
// detectron2's running loss normaliser (RetinaNet.loss_normalizer) as extra checkpoint state.
using RetinaSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>Trains a <see cref="RetinaNet"/>.</summary>
/// <param name="model">The detector.</param>
public sealed class RetinaNetTrainable(RetinaNet model) : ITrainableModel
{
    /// <summary>The key of <see cref="RetinaNet.RunningLossNormalizer"/> in <see cref="GetExtraState"/>.</summary>
    public const string RunningLossNormalizerKey = "running_loss_normalizer";

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

    /// <summary>
    /// <see cref="RetinaNet.RunningLossNormalizer"/> under <see cref="RunningLossNormalizerKey"/> (saved whatever the
    /// loss normaliser kind, so a run can be resumed after switching it with <see cref="RetinaNet.Reconfigure"/>).
    /// </summary>
    public IReadOnlyDictionary<string, double> GetExtraState() =>
        new Dictionary<string, double> { [RunningLossNormalizerKey] = Model.RunningLossNormalizer };

    /// <summary>
    /// Sets <see cref="RetinaNet.RunningLossNormalizer"/> from <see cref="RunningLossNormalizerKey"/>; without the key
    /// (a checkpoint written before it was stored) the model keeps its current value. Other keys are ignored.
    /// </summary>
    /// <exception cref="ArgumentException">The stored normaliser is not finite and positive.</exception>
    public void SetExtraState(IReadOnlyDictionary<string, double> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.TryGetValue(RunningLossNormalizerKey, out double n))
            Model.RunningLossNormalizer = n;
    }
}
