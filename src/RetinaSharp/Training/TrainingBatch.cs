// One minibatch as the trainer sees it: the images and targets of torchvision's
// RetinaNet.forward(images, targets) in training mode, plus the image ids for logging.
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>A minibatch. Disposing it disposes its tensors.</summary>
/// <param name="ImageIds">The dataset image id of each image (logged when a step is skipped).</param>
/// <param name="Images">Each image (3, H, W) float32 in [0, 1]; sizes may differ (the model pads).</param>
/// <param name="Targets">The ground truth of each image, in the image's pixel frame.</param>
public sealed record TrainingBatch(IReadOnlyList<long> ImageIds, IReadOnlyList<Tensor> Images, IReadOnlyList<DetectionTarget> Targets) : IDisposable
{
    /// <summary>The number of images.</summary>
    public int Count => Images.Count;

    /// <summary>Disposes the image and target tensors.</summary>
    public void Dispose()
    {
        foreach (var t in Images) t.Dispose();
        foreach (var t in Targets)
        {
            t.Boxes.Dispose();
            t.Labels.Dispose();
            t.IsCrowd?.Dispose();
        }
    }
}
