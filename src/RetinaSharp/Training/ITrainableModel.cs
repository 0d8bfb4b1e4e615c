// The trainer's view of a model: its module (for parameters, train/eval mode and the state_dict of a
// checkpoint), a loss per named term for one batch (torchvision RetinaNet.forward in training mode
// returns {"classification", "bbox_regression"}; the total is their sum), and the training state that lives
// outside the state_dict (PyTorch's Module.get_extra_state / set_extra_state idea; for RetinaNet detectron2's
// running loss normaliser), which the trainer's checkpoint stores so that a resumed run continues exactly.
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

    /// <summary>
    /// Training state that is not in the module's state_dict but changes while training (for example a running
    /// average kept as a plain number), by name. The trainer stores it in every checkpoint (bit-exact doubles) and
    /// gives it back to <see cref="SetExtraState"/> on resume. Default: none.
    /// </summary>
    IReadOnlyDictionary<string, double> GetExtraState() => new Dictionary<string, double>();

    /// <summary>
    /// Restores state returned by <see cref="GetExtraState"/> when a run resumes. A checkpoint written before a key
    /// existed does not contain it: the model keeps its current (initial) value for every missing key. Default: ignores the state.
    /// </summary>
    /// <param name="state">The values saved in the checkpoint, by name (possibly empty).</param>
    /// <exception cref="ArgumentException">A value is out of range for the model (the checkpoint is corrupt or from another model).</exception>
    void SetExtraState(IReadOnlyDictionary<string, double> state) { }
}
