// One training example as the model consumes it: torchvision's (image, target) pair of the detection
// references, image as a (3, H, W) float tensor in [0, 1], target boxes in that image's pixels.
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Data;

/// <summary>An augmented image and its target, as tensors (created on the consumer's thread, in its DisposeScope).</summary>
/// <param name="ImageId">The dataset image id (for logs, for example of a batch with a NaN loss).</param>
/// <param name="Image">(3, H, W) float32 in [0, 1], H and W after augmentation.</param>
/// <param name="Target">Boxes (G, 4) XYXY in this image's pixels after augmentation, labels (G) contiguous indices, IsCrowd (G) bool (crowd or VOC difficult).</param>
public sealed record TrainingSample(long ImageId, Tensor Image, DetectionTarget Target) : IDisposable
{
    /// <summary>Disposes the image and target tensors.</summary>
    public void Dispose()
    {
        Image.Dispose();
        Target.Boxes.Dispose();
        Target.Labels.Dispose();
        Target.IsCrowd?.Dispose();
    }
}
