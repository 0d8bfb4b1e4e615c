// One ground-truth box of a detection dataset, in the convention of docs/ARCHITECTURE.md (XYXY absolute
// pixels, x2 = x + w). Matches the per-object fields torchvision's detection references read from COCO
// ("bbox" converted from XYWH, "category_id", "iscrowd") and from Pascal VOC ("bndbox", "difficult").
namespace RetinaSharp.Data;

/// <summary>A ground-truth box: XYXY absolute pixels of the original image, original category id.</summary>
/// <param name="AnnotationId">The annotation id: COCO's "id"; for VOC and CSV a running number from 1 in load order.</param>
/// <param name="X1">Left edge, pixels.</param>
/// <param name="Y1">Top edge, pixels.</param>
/// <param name="X2">Right edge, pixels (exclusive: x2 = x + w).</param>
/// <param name="Y2">Bottom edge, pixels (exclusive: y2 = y + h).</param>
/// <param name="CategoryId">The original category id (not the contiguous index; see <see cref="CategoryMap"/>).</param>
/// <param name="IsCrowd">COCO "iscrowd": the box is ignored for matching (neither foreground nor background).</param>
/// <param name="Difficult">VOC "difficult": treated like a crowd box in training and ignored by VOC evaluation.</param>
public sealed record DetectionBox(long AnnotationId, float X1, float Y1, float X2, float Y2, long CategoryId, bool IsCrowd = false, bool Difficult = false)
{
    /// <summary>Width x2 - x1 in pixels (negative or NaN for a degenerate box).</summary>
    public float Width => X2 - X1;

    /// <summary>Height y2 - y1 in pixels (negative or NaN for a degenerate box).</summary>
    public float Height => Y2 - Y1;

    /// <summary>True when a coordinate is NaN or infinite, or x2 &lt;= x1, or y2 &lt;= y1.</summary>
    public bool IsDegenerate =>
        !float.IsFinite(X1) || !float.IsFinite(Y1) || !float.IsFinite(X2) || !float.IsFinite(Y2) || X2 <= X1 || Y2 <= Y1;
}
