// Reduction modes of the focal loss: torchvision.ops.sigmoid_focal_loss's "none" / "sum" / "mean", plus the
// detector's "sum divided by the number of foreground anchors" (Lin et al. 2017, section 4, "Focal Loss").

namespace RetinaSharp.Losses;

/// <summary>How the element-wise focal loss is reduced to the returned tensor.</summary>
public enum FocalReduction
{
    /// <summary>No reduction: one loss value per logit, shaped like the logits.</summary>
    None,
    /// <summary>The sum of all element losses (a scalar tensor).</summary>
    Sum,
    /// <summary>
    /// The sum divided by the number of contributing elements (a scalar tensor). With class-index targets,
    /// ignored anchors (-2) do not count; an empty input gives 0.
    /// </summary>
    Mean,
    /// <summary>
    /// The sum divided by <c>max(1, normalizer)</c> (a scalar tensor). The paper normalises the total loss of an
    /// image batch by the number of anchors assigned to a ground-truth box (section 4, "Focal Loss").
    /// </summary>
    Normalized,
}
