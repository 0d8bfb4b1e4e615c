// The trainer's view of a dataset: a fixed number of batches per epoch, in an order that is a pure
// function of (seed, epoch), readable from any batch. This is what makes `--resume` exact: the batches
// after a restart are the ones an uninterrupted run would have seen.

namespace RetinaSharp.Training;

/// <summary>Batches of training images for the <see cref="Trainer"/>.</summary>
public interface ITrainingData
{
    /// <summary>The number of images per batch (used for images/s and the linear LR scaling rule).</summary>
    int BatchSize { get; }

    /// <summary>The number of batches in one epoch (&gt; 0).</summary>
    int BatchesPerEpoch { get; }

    /// <summary>
    /// The batches of <paramref name="epoch"/> from batch <paramref name="startBatch"/> to the end of the epoch.
    /// The order and content (including augmentation) must depend only on the data's seed, the epoch and the
    /// batch index, never on what was read before. The trainer disposes each batch after its step.
    /// </summary>
    /// <param name="epoch">0-based epoch.</param>
    /// <param name="startBatch">0-based batch index inside the epoch to start from.</param>
    IEnumerable<TrainingBatch> ReadEpoch(int epoch, int startBatch);
}
