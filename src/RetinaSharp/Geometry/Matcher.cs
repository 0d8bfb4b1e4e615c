// Reference behaviour: torchvision.models.detection._utils.Matcher (with set_low_quality_matches_),
// torchvision 0.14, as used by torchvision's RetinaNet (0.5 / 0.4, low-quality matches on); RetinaNet paper
// (Lin et al. 2017) section 4 "Anchors". One difference on purpose: no ground truth gives all background.
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Geometry;

/// <summary>
/// Assigns each anchor the ground-truth box it overlaps most: IoU >= high threshold is a match (the box
/// index), IoU &lt; low threshold is background (<see cref="BelowLowThreshold"/>), in between is ignored
/// (<see cref="BetweenThresholds"/>). With low-quality matches on, every ground-truth box also claims the
/// anchors with its own highest IoU (ties included); such an anchor gets the box it overlaps most (its
/// plain arg-max, as torchvision does), even when that IoU is below the low threshold.
/// </summary>
public sealed class Matcher
{
    /// <summary>Matched index of an anchor whose best IoU is below the low threshold: background.</summary>
    public const long BelowLowThreshold = -1;
    /// <summary>Matched index of an anchor whose best IoU is in [low, high): ignored by the losses.</summary>
    public const long BetweenThresholds = -2;

    // The two states as Scalars for masked_fill_ (process lifetime: never finalised during a call).
    private static readonly Scalar Background = BelowLowThreshold.ToScalar();
    private static readonly Scalar Ignored = BetweenThresholds.ToScalar();

    /// <summary>Creates a matcher; defaults are RetinaNet's (section 4 of the paper, torchvision's retinanet).</summary>
    /// <param name="highThreshold">IoU at or above which an anchor is foreground.</param>
    /// <param name="lowThreshold">IoU below which an anchor is background.</param>
    /// <param name="allowLowQualityMatches">Whether each ground-truth box also claims its best-overlapping anchors.</param>
    /// <exception cref="ArgumentException"><paramref name="lowThreshold"/> &gt; <paramref name="highThreshold"/> or a threshold is NaN.</exception>
    public Matcher(double highThreshold = 0.5, double lowThreshold = 0.4, bool allowLowQualityMatches = true)
    {
        if (double.IsNaN(highThreshold))
            throw new ArgumentException($"highThreshold must be a number, got {highThreshold}", nameof(highThreshold));
        if (double.IsNaN(lowThreshold))
            throw new ArgumentException($"lowThreshold must be a number, got {lowThreshold}", nameof(lowThreshold));
        if (lowThreshold > highThreshold)
            throw new ArgumentException($"need lowThreshold <= highThreshold; got low {lowThreshold}, high {highThreshold}", nameof(lowThreshold));
        HighThreshold = highThreshold;
        LowThreshold = lowThreshold;
        AllowLowQualityMatches = allowLowQualityMatches;
    }

    /// <summary>IoU at or above which an anchor is foreground.</summary>
    public double HighThreshold { get; }
    /// <summary>IoU below which an anchor is background.</summary>
    public double LowThreshold { get; }
    /// <summary>Whether each ground-truth box also claims its best-overlapping anchors.</summary>
    public bool AllowLowQualityMatches { get; }

    /// <summary>
    /// Matches anchors to ground truth. torchvision <c>Matcher.__call__</c>; ties in an anchor's best IoU go
    /// to the lower ground-truth index.
    /// </summary>
    /// <param name="iou">(G, A) IoU of G ground-truth boxes with A anchors (<see cref="BoxOps.Iou"/>).</param>
    /// <returns>(A) int64: the matched ground-truth index, <see cref="BelowLowThreshold"/> or <see cref="BetweenThresholds"/>.
    /// G = 0 gives all <see cref="BelowLowThreshold"/> (an image without objects is all background).</returns>
    /// <exception cref="ArgumentException"><paramref name="iou"/> is not 2-D, or holds a NaN (its position is named).</exception>
    public Tensor Match(Tensor iou)
    {
        ArgumentNullException.ThrowIfNull(iou);
        if (iou.dim() != 2)
            throw new ArgumentException($"iou must be (G, A); got ({string.Join(", ", iou.shape)}).", nameof(iou));
        long numAnchors = iou.shape[1];
        if (iou.shape[0] == 0 || numAnchors == 0)
            return full(numAnchors, Background, dtype: ScalarType.Int64, device: iou.device);
        using var scope = NewDisposeScope();
        // torchvision lets a NaN IoU (from a NaN box) fall through both threshold tests, so the anchor silently becomes a
        // foreground match of box 0. Refuse it instead, naming the first NaN entry.
        var nan = isnan(iou);
        if (nan.any().item<bool>())
        {
            long flat = nan.flatten().nonzero()[0, 0].item<long>();
            throw new ArgumentException($"iou[{flat / numAnchors}, {flat % numAnchors}] is NaN (a ground-truth box or an anchor has a NaN coordinate)", nameof(iou));
        }
        var (best, argBest) = iou.max(0);                       // (A), (A)
        var matches = argBest.clone();
        using var low = LowThreshold.ToScalar();
        using var high = HighThreshold.ToScalar();
        matches.masked_fill_(best.lt(low), Background);
        matches.masked_fill_(best.ge(low).logical_and(best.lt(high)), Ignored);
        if (AllowLowQualityMatches)
        {
            var bestPerGt = iou.max(1).values;                  // (G)
            var claimed = iou.eq(bestPerGt.unsqueeze(1)).any(0); // (A) anchors that are some box's best
            matches = where(claimed, argBest, matches);
        }
        return matches.MoveToOuterDisposeScope();
    }
}
