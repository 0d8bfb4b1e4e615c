using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>
/// The detections of one image, sorted by decreasing score. torchvision equivalent: one dict of the list
/// returned by <c>RetinaNet.forward</c> in eval mode ("boxes", "scores", "labels").
/// </summary>
/// <param name="Boxes">(N, 4) float32, XYXY absolute pixels of the image the detections refer to.</param>
/// <param name="Scores">(N) float32 sigmoid scores in [0, 1].</param>
/// <param name="Labels">(N) int64 contiguous class indices 0..K-1.</param>
public sealed record Detections(Tensor Boxes, Tensor Scores, Tensor Labels)
{
    /// <summary>The number of detections N.</summary>
    public long Count => Scores.shape[0];
}
