// How well a model's anchors cover the ground-truth boxes: for each box, the best IoU of any anchor in the frame the
// model sees (resize as DetectionTransform, padding to SizeDivisible, P3-P7 feature sizes of RetinaNet.FeatureSizes,
// anchors of the model's AnchorGenerator, IoU of BoxOps.Iou), and whether it reaches the matcher's foreground
// threshold (RetinaNet paper section 4: anchors with IoU >= 0.5 are assigned to a box).
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Geometry;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Reporting;

/// <summary>
/// The anchor coverage of ground-truth boxes: the fraction with at least one anchor of IoU ≥ the foreground threshold.
/// Boxes below it are trained only through the matcher's low-quality match (their best anchor), if at all.
/// </summary>
public sealed class AnchorCoverage
{
    private readonly double[] _bestIou;

    private AnchorCoverage(double fgIouThreshold, double[] bestIou)
    {
        FgIouThreshold = fgIouThreshold;
        _bestIou = bestIou;
    }

    /// <summary>The matcher's foreground threshold (<see cref="RetinaNetOptions.FgIouThreshold"/>, 0.5 in the paper).</summary>
    public double FgIouThreshold { get; }

    /// <summary>The best anchor IoU of annotation <paramref name="annotation"/> (index in the ground truth's annotations),
    /// or NaN for a crowd region, an empty box or an annotation of an unlisted image.</summary>
    /// <exception cref="IndexOutOfRangeException">The index is out of range.</exception>
    public double BestIou(int annotation) => _bestIou[annotation];

    /// <summary>The number of annotations (crowd and empty ones included, as NaN).</summary>
    public int AnnotationCount => _bestIou.Length;

    /// <summary>Boxes whose best anchor reaches <see cref="FgIouThreshold"/>, of <paramref name="annotations"/> (all when null).</summary>
    public (int Covered, int Total) Count(IEnumerable<int>? annotations = null)
    {
        int covered = 0, total = 0;
        foreach (int a in annotations ?? Enumerable.Range(0, _bestIou.Length))
        {
            double v = _bestIou[a];
            if (double.IsNaN(v)) continue;
            total++;
            if (v >= FgIouThreshold) covered++;
        }
        return (covered, total);
    }

    /// <summary>
    /// Computes the best anchor IoU of every non-crowd box of <paramref name="groundTruth"/> for <paramref name="model"/>.
    /// Each image is taken alone (padded to its own size rounded up to <see cref="RetinaNetOptions.SizeDivisible"/>); in a
    /// batch with larger images only the padding differs, which moves no anchor over the image.
    /// </summary>
    /// <param name="model">The model whose resize, anchors and foreground threshold are used (weights are not read).</param>
    /// <param name="groundTruth">Images (their width and height) and annotations (XYWH pixels of the original image).</param>
    /// <param name="progress">Called with (images done, total).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static AnchorCoverage Compute(RetinaNet model, CocoInstances groundTruth, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(groundTruth);
        var best = new double[groundTruth.Annotations.Count];
        Array.Fill(best, double.NaN);
        var byImage = new Dictionary<long, List<int>>();
        for (int a = 0; a < groundTruth.Annotations.Count; a++)
        {
            var g = groundTruth.Annotations[a];
            if (g.IsCrowd || !(g.Width > 0) || !(g.Height > 0)) continue;
            if (!byImage.TryGetValue(g.ImageId, out var list)) byImage[g.ImageId] = list = new List<int>();
            list.Add(a);
        }
        var images = groundTruth.Images.GroupBy(i => i.Id).Select(g => g.First()).ToList();
        long div = Math.Max(1, model.Options.SizeDivisible);
        for (int i = 0; i < images.Count; i++)
        {
            var im = images[i];
            if (byImage.TryGetValue(im.Id, out var anns) && im.Width > 0 && im.Height > 0)
            {
                using var scope = NewDisposeScope();
                var resized = model.Transform.ResizedSize(im.Height, im.Width);
                (long H, long W) padded = ((resized.H + div - 1) / div * div, (resized.W + div - 1) / div * div);
                var anchors = cat(model.AnchorsPerLevel(padded, RetinaNet.FeatureSizes(padded)), 0);     // (A, 4) XYXY, padded frame
                var xyxy = new float[anns.Count * 4];
                for (int j = 0; j < anns.Count; j++)
                {
                    var g = groundTruth.Annotations[anns[j]];
                    xyxy[4 * j] = (float)g.X; xyxy[4 * j + 1] = (float)g.Y;
                    xyxy[4 * j + 2] = (float)(g.X + g.Width); xyxy[4 * j + 3] = (float)(g.Y + g.Height);
                }
                var boxes = DetectionTransform.ScaleBoxes(tensor(xyxy, new long[] { anns.Count, 4 }), (im.Height, im.Width), resized);
                var iou = BoxOps.Iou(boxes, anchors).max(1).values;                                     // (G)
                var values = iou.to(ScalarType.Float64).data<double>().ToArray();
                for (int j = 0; j < anns.Count; j++) best[anns[j]] = values[j];
            }
            progress?.Invoke(i + 1, images.Count);
        }
        return new AnchorCoverage(model.Options.FgIouThreshold, best);
    }
}
