// A training sample as plain arrays, prepared off the training thread by DetectionDataLoader.
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Data;

/// <summary>
/// A decoded and augmented sample as plain arrays, made on the loader's background thread (no tensors there:
/// TorchSharp's DisposeScopes are thread-local). <see cref="ToTrainingSample"/> makes the tensors.
/// </summary>
/// <param name="ImageId">The dataset image id.</param>
/// <param name="Image">The augmented image.</param>
/// <param name="Boxes">XYXY boxes in the augmented image's pixels, 4 floats per box.</param>
/// <param name="Labels">Contiguous class index per box.</param>
/// <param name="IsCrowd">Per box: ignored for matching (COCO iscrowd or VOC difficult).</param>
public sealed record PreparedSample(long ImageId, RgbImage Image, float[] Boxes, long[] Labels, bool[] IsCrowd)
{
    /// <summary>The tensors of this sample, created in the caller's current DisposeScope.</summary>
    public TrainingSample ToTrainingSample()
    {
        int g = Labels.Length;
        var target = new DetectionTarget(
            g == 0 ? zeros(0, 4, dtype: ScalarType.Float32) : tensor(Boxes, new long[] { g, 4 }),
            g == 0 ? zeros(0, dtype: ScalarType.Int64) : tensor(Labels, new long[] { g }),
            g == 0 ? zeros(0, dtype: ScalarType.Bool) : tensor(IsCrowd, new long[] { g }));
        return new TrainingSample(ImageId, ImageIO.ToTensor(Image), target);
    }
}
