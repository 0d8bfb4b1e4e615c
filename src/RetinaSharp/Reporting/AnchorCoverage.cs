// How well a model's anchors cover the ground-truth boxes, for the evaluation report: for each box, the best IoU of any
// anchor in the frame the model sees (computed by Analysis/AnchorCoverageAnalysis), and whether it reaches the matcher's
// foreground threshold (RetinaNet paper section 4: anchors with IoU >= 0.5 are assigned to a box).
using RetinaSharp.Analysis;
using RetinaSharp.Data;
using RetinaSharp.Modeling;

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
    /// Computes the best anchor IoU of every non-crowd box of <paramref name="groundTruth"/> for <paramref name="model"/>
    /// with <see cref="AnchorCoverageAnalysis"/> (the one implementation, shared with <c>retina data anchors</c>).
    /// Each image is taken alone (padded to its own size rounded up to <see cref="RetinaNetOptions.SizeDivisible"/>); in a
    /// batch with larger images only the padding differs, which moves no anchor over the image.
    /// </summary>
    /// <param name="model">The model whose resize, anchors and foreground threshold are used (weights are not read).</param>
    /// <param name="groundTruth">Images (their width and height) and annotations (XYWH pixels of the original image).</param>
    /// <param name="progress">Called with (boxes done, total).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static AnchorCoverage Compute(RetinaNet model, CocoInstances groundTruth, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Compute(model.Options, groundTruth, progress);
    }

    /// <summary>
    /// As <see cref="Compute(RetinaNet, CocoInstances, Action{int, int}?)"/> for a model known by its options only (for example
    /// an exported ONNX file run by ONNX Runtime: the options are in its metadata): the same resize, anchors and threshold.
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static AnchorCoverage Compute(RetinaNetOptions options, CocoInstances groundTruth, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(groundTruth);
        var best = new double[groundTruth.Annotations.Count];
        Array.Fill(best, double.NaN);
        var boxes = AnchorBoxSet.FromCoco(groundTruth, out var annotationOfBox);
        var result = AnchorCoverageAnalysis.Analyze(AnchorSettings.From(options), boxes, progress);
        for (int b = 0; b < annotationOfBox.Length; b++) best[annotationOfBox[b]] = result.BestIou(b);
        return new AnchorCoverage(options.FgIouThreshold, best);
    }
}
