using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>
/// The ground truth of one training image, in the pixel frame of the image tensor given to the model
/// (before the model's own resize). torchvision equivalent: the <c>targets[i]</c> dict of
/// <c>RetinaNet.forward</c> with keys "boxes" and "labels".
/// </summary>
/// <param name="Boxes">(G, 4) float32, XYXY absolute pixels; (0, 4) for an image with no objects (a valid negative).</param>
/// <param name="Labels">(G) int64 contiguous class indices 0..K-1 (datasets map original category ids to these).</param>
/// <param name="IsCrowd">(G) bool or null: crowd boxes are ignored for matching (neither foreground nor background).</param>
public sealed record DetectionTarget(Tensor Boxes, Tensor Labels, Tensor? IsCrowd = null)
{
    /// <summary>A target with no objects on <paramref name="device"/>.</summary>
    public static DetectionTarget Empty(Device? device = null) =>
        new(zeros(0, 4, dtype: ScalarType.Float32, device: device), zeros(0, dtype: ScalarType.Int64, device: device));
}
