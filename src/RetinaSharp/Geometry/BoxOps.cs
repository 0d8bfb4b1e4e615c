// Reference behaviour: torchvision.ops.boxes (box_convert, box_area, box_iou, generalized_box_iou,
// clip_boxes_to_image, remove_small_boxes) and torchvision.ops.generalized_box_iou_loss (reduction "none"),
// torchvision 0.14. Same formulas and the same float operation order, written from their documentation.
using System.Globalization;
using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Geometry;

/// <summary>
/// Whole-tensor operations on boxes. Boxes are (N, 4) float tensors in absolute pixels; XYXY means
/// (x1, y1, x2, y2) with x2 = x1 + width (no "+1"), XYWH is COCO's (x, y, width, height) and CXCYWH is
/// (centre x, centre y, width, height). Empty inputs of shape (0, 4) are valid everywhere.
/// Every method works on any device and keeps the input's dtype.
/// </summary>
public static class BoxOps
{
    /// <summary>The ε of <see cref="GeneralizedIouLoss"/>'s divisions (torchvision's 1e-7).</summary>
    private static readonly Scalar Eps = 1e-7.ToScalar();

    /// <summary>XYXY to XYWH (COCO): (x1, y1, x2 - x1, y2 - y1). torchvision <c>box_convert(in_fmt="xyxy", out_fmt="xywh")</c>.</summary>
    /// <param name="boxes">(..., 4) XYXY boxes.</param>
    /// <returns>(..., 4) XYWH boxes.</returns>
    /// <exception cref="ArgumentException">The last dimension is not 4.</exception>
    public static Tensor XyxyToXywh(Tensor boxes)
    {
        CheckLastDim(boxes, nameof(boxes));
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        return stack(new[] { c[0], c[1], c[2] - c[0], c[3] - c[1] }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>XYWH (COCO) to XYXY: (x, y, x + w, y + h). torchvision <c>box_convert(in_fmt="xywh", out_fmt="xyxy")</c>.</summary>
    /// <param name="boxes">(..., 4) XYWH boxes.</param>
    /// <returns>(..., 4) XYXY boxes.</returns>
    /// <exception cref="ArgumentException">The last dimension is not 4.</exception>
    public static Tensor XywhToXyxy(Tensor boxes)
    {
        CheckLastDim(boxes, nameof(boxes));
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        return stack(new[] { c[0], c[1], c[0].add(c[2], One), c[1].add(c[3], One) }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>XYXY to CXCYWH: ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1). torchvision <c>box_convert(in_fmt="xyxy", out_fmt="cxcywh")</c>.</summary>
    /// <param name="boxes">(..., 4) XYXY boxes.</param>
    /// <returns>(..., 4) CXCYWH boxes.</returns>
    /// <exception cref="ArgumentException">The last dimension is not 4.</exception>
    public static Tensor XyxyToCxcywh(Tensor boxes)
    {
        CheckLastDim(boxes, nameof(boxes));
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        return stack(new[] { c[0].add(c[2], One).div(Two), c[1].add(c[3], One).div(Two), c[2] - c[0], c[3] - c[1] }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>CXCYWH to XYXY: (cx - w/2, cy - h/2, cx + w/2, cy + h/2). torchvision <c>box_convert(in_fmt="cxcywh", out_fmt="xyxy")</c>.</summary>
    /// <param name="boxes">(..., 4) CXCYWH boxes.</param>
    /// <returns>(..., 4) XYXY boxes.</returns>
    /// <exception cref="ArgumentException">The last dimension is not 4.</exception>
    public static Tensor CxcywhToXyxy(Tensor boxes)
    {
        CheckLastDim(boxes, nameof(boxes));
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        var hw = c[2].mul(OneHalf);
        var hh = c[3].mul(OneHalf);
        return stack(new[] { c[0] - hw, c[1] - hh, c[0].add(hw, One), c[1].add(hh, One) }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>Box areas (x2 - x1) * (y2 - y1) in square pixels. torchvision <c>box_area</c>.</summary>
    /// <param name="boxes">(N, 4) XYXY boxes.</param>
    /// <returns>(N) areas (negative for inverted boxes: validate first where that matters).</returns>
    /// <exception cref="ArgumentException"><paramref name="boxes"/> is not (N, 4).</exception>
    public static Tensor Area(Tensor boxes)
    {
        CheckBoxes(boxes, nameof(boxes));
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        return ((c[2] - c[0]) * (c[3] - c[1])).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Pairwise intersection over union. torchvision <c>box_iou</c>: inter / (area1 + area2 - inter), with
    /// widths and heights of the intersection clamped at 0. Two zero-area boxes give NaN (0 / 0), as there.
    /// </summary>
    /// <param name="boxes1">(N, 4) XYXY boxes.</param>
    /// <param name="boxes2">(M, 4) XYXY boxes.</param>
    /// <returns>(N, M) IoU in [0, 1].</returns>
    /// <exception cref="ArgumentException">An input is not (K, 4).</exception>
    public static Tensor Iou(Tensor boxes1, Tensor boxes2)
    {
        CheckBoxes(boxes1, nameof(boxes1));
        CheckBoxes(boxes2, nameof(boxes2));
        using var scope = NewDisposeScope();
        var (inter, union) = InterUnion(boxes1, boxes2);
        return (inter / union).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Pairwise generalised IoU (Rezatofighi et al. 2019): IoU - (C - U) / C with C the area of the smallest
    /// enclosing box. torchvision <c>generalized_box_iou</c>.
    /// </summary>
    /// <param name="boxes1">(N, 4) XYXY boxes.</param>
    /// <param name="boxes2">(M, 4) XYXY boxes.</param>
    /// <returns>(N, M) GIoU in [-1, 1].</returns>
    /// <exception cref="ArgumentException">An input is not (K, 4).</exception>
    public static Tensor GeneralizedIou(Tensor boxes1, Tensor boxes2)
    {
        CheckBoxes(boxes1, nameof(boxes1));
        CheckBoxes(boxes2, nameof(boxes2));
        using var scope = NewDisposeScope();
        var (inter, union) = InterUnion(boxes1, boxes2);
        var iou = inter / union;
        var a = boxes1.unsqueeze(1);                                   // (N, 1, 4)
        var lt = minimum(a.narrow(-1, 0, 2), boxes2.narrow(-1, 0, 2)); // (N, M, 2)
        var rb = maximum(a.narrow(-1, 2, 2), boxes2.narrow(-1, 2, 2)); // (N, M, 2)
        var wh = (rb - lt).clamp_min(Zero);
        var enclosing = wh.select(-1, 0) * wh.select(-1, 1);           // (N, M)
        return (iou - (enclosing - union) / enclosing).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// 1 - GIoU of aligned pairs, the box loss of torchvision <c>ops.generalized_box_iou_loss</c> with
    /// reduction "none" and eps = 1e-7 (added to both denominators so degenerate boxes give finite values).
    /// Differentiable.
    /// </summary>
    /// <param name="boxes1">(N, 4) XYXY boxes.</param>
    /// <param name="boxes2">(N, 4) XYXY boxes, paired row by row with <paramref name="boxes1"/>.</param>
    /// <returns>(N) losses in [0, 2].</returns>
    /// <exception cref="ArgumentException">An input is not (N, 4), or the two row counts differ.</exception>
    public static Tensor GeneralizedIouLoss(Tensor boxes1, Tensor boxes2)
    {
        CheckBoxes(boxes1, nameof(boxes1));
        CheckBoxes(boxes2, nameof(boxes2));
        if (boxes1.shape[0] != boxes2.shape[0])
            throw new ArgumentException($"boxes1 has {boxes1.shape[0]} rows but boxes2 has {boxes2.shape[0]}; the loss pairs them row by row.", nameof(boxes2));
        using var scope = NewDisposeScope();
        var p = boxes1.unbind(-1);
        var g = boxes2.unbind(-1);
        var iw = (minimum(p[2], g[2]) - maximum(p[0], g[0])).clamp_min(Zero);
        var ih = (minimum(p[3], g[3]) - maximum(p[1], g[1])).clamp_min(Zero);
        var inter = iw * ih;
        var union = ((p[2] - p[0]) * (p[3] - p[1])).add((g[2] - g[0]) * (g[3] - g[1]), One) - inter;
        var iou = inter / union.add(Eps, One);
        var enclosing = (maximum(p[2], g[2]) - minimum(p[0], g[0])) * (maximum(p[3], g[3]) - minimum(p[1], g[1]));
        var giou = iou - (enclosing - union) / enclosing.add(Eps, One);
        return giou.neg().add(One, One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Clamps x to [0, width] and y to [0, height]: boxes partly outside the image are cut at its border,
    /// boxes wholly outside become zero-width or zero-height. torchvision <c>clip_boxes_to_image</c>.
    /// </summary>
    /// <param name="boxes">(N, 4) XYXY boxes.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <returns>(N, 4) clipped boxes (a new tensor).</returns>
    /// <exception cref="ArgumentException"><paramref name="boxes"/> is not (N, 4), or a size is negative.</exception>
    public static Tensor ClipToImage(Tensor boxes, long height, long width)
    {
        CheckBoxes(boxes, nameof(boxes));
        if (height < 0) throw new ArgumentOutOfRangeException(nameof(height), height, "image height must be >= 0");
        if (width < 0) throw new ArgumentOutOfRangeException(nameof(width), width, "image width must be >= 0");
        using var scope = NewDisposeScope();
        using var w = width.ToScalar();
        using var h = height.ToScalar();
        var c = boxes.unbind(-1);
        return stack(new[]
        {
            c[0].clamp(Zero, w), c[1].clamp(Zero, h), c[2].clamp(Zero, w), c[3].clamp(Zero, h),
        }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>Indices of the boxes whose width and height are both >= <paramref name="minSize"/>. torchvision <c>remove_small_boxes</c>.</summary>
    /// <param name="boxes">(N, 4) XYXY boxes.</param>
    /// <param name="minSize">Minimum width and height in pixels.</param>
    /// <returns>(K) int64 indices of the kept boxes, increasing.</returns>
    /// <exception cref="ArgumentException"><paramref name="boxes"/> is not (N, 4), or <paramref name="minSize"/> is NaN (which would drop every box).</exception>
    public static Tensor RemoveSmallBoxes(Tensor boxes, double minSize)
    {
        CheckBoxes(boxes, nameof(boxes));
        if (double.IsNaN(minSize))
            throw new ArgumentException($"minSize must be a number, got {minSize}", nameof(minSize));
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        using var min = minSize.ToScalar();
        var keep = (c[2] - c[0]).ge(min).logical_and((c[3] - c[1]).ge(min));
        return nonzero(keep).view(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Checks boxes given to training code: shape (N, 4), every coordinate finite and x2 >= x1, y2 >= y1
    /// (zero-size boxes pass). One device-to-host transfer of a flag, plus one row when a box is bad.
    /// </summary>
    /// <param name="boxes">(N, 4) XYXY boxes; (0, 4) is valid.</param>
    /// <param name="paramName">The argument name reported in the exception.</param>
    /// <exception cref="ArgumentException">Wrong shape, or the first offending box: its index, its four values and what is wrong (x2 &lt; x1, y2 &lt; y1, NaN or Inf).</exception>
    public static void Validate(Tensor boxes, string paramName)
    {
        CheckBoxes(boxes, paramName);
        if (boxes.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        var c = boxes.unbind(-1);
        var bad = isfinite(boxes).all(-1).logical_not()
            .logical_or(c[2].lt(c[0])).logical_or(c[3].lt(c[1]));
        if (!bad.any().item<bool>()) return;
        long i = nonzero(bad)[0, 0].item<long>();
        double[] v = boxes[i].to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        string problem = v.Any(x => double.IsNaN(x)) ? "a coordinate is NaN"
            : v.Any(double.IsInfinity) ? "a coordinate is infinite"
            : v[2] < v[0] ? "x2 < x1" : "y2 < y1";
        string values = string.Join(", ", v.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));
        throw new ArgumentException($"box {i} = [{values}] (x1, y1, x2, y2) is degenerate: {problem}.", paramName);
    }

    /// <summary>Pairwise intersection and union areas, (N, M) each; clamps the intersection's sides at 0.</summary>
    private static (Tensor Inter, Tensor Union) InterUnion(Tensor boxes1, Tensor boxes2)
    {
        var area1 = Area(boxes1);
        var area2 = Area(boxes2);
        var a = boxes1.unsqueeze(1);                                   // (N, 1, 4)
        var lt = maximum(a.narrow(-1, 0, 2), boxes2.narrow(-1, 0, 2)); // (N, M, 2)
        var rb = minimum(a.narrow(-1, 2, 2), boxes2.narrow(-1, 2, 2)); // (N, M, 2)
        var wh = (rb - lt).clamp_min(Zero);
        var inter = wh.select(-1, 0) * wh.select(-1, 1);               // (N, M)
        var union = area1.unsqueeze(1).add(area2, One) - inter;
        return (inter, union);
    }

    /// <summary>Throws unless <paramref name="boxes"/> is (N, 4).</summary>
    internal static void CheckBoxes(Tensor boxes, string paramName)
    {
        ArgumentNullException.ThrowIfNull(boxes, paramName);
        if (boxes.dim() != 2 || boxes.shape[1] != 4)
            throw new ArgumentException($"boxes must have shape (N, 4); got ({string.Join(", ", boxes.shape)}).", paramName);
    }

    private static void CheckLastDim(Tensor boxes, string paramName)
    {
        ArgumentNullException.ThrowIfNull(boxes, paramName);
        if (boxes.dim() == 0 || boxes.shape[^1] != 4)
            throw new ArgumentException($"boxes must have shape (..., 4); got ({string.Join(", ", boxes.shape)}).", paramName);
    }
}
