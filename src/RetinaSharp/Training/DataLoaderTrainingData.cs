// Adapts the data stage's DetectionDataLoader (seeded shuffle and augmentation per epoch, background
// prefetch) to the trainer's ITrainingData: batch order and content are functions of (seed, epoch, batch).
using RetinaSharp.Data;

namespace RetinaSharp.Training;

/// <summary>The batches of a <see cref="DetectionDataLoader"/> as <see cref="TrainingBatch"/>es.</summary>
/// <param name="loader">The loader (its seed fixes the data order of every epoch).</param>
public sealed class DataLoaderTrainingData(DetectionDataLoader loader) : ITrainingData
{
    /// <summary>The wrapped loader.</summary>
    public DetectionDataLoader Loader { get; } = loader ?? throw new ArgumentNullException(nameof(loader));

    /// <inheritdoc/>
    public int BatchSize => Loader.BatchSize;

    /// <inheritdoc/>
    public int BatchesPerEpoch => Loader.BatchesPerEpoch;

    /// <inheritdoc/>
    public IEnumerable<TrainingBatch> ReadEpoch(int epoch, int startBatch)
    {
        foreach (var samples in Loader.Epoch(epoch, startBatch))
            yield return new TrainingBatch(
                samples.Select(s => s.ImageId).ToArray(),
                samples.Select(s => s.Image).ToArray(),
                samples.Select(s => s.Target).ToArray());
    }
}
