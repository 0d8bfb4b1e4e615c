// Reference behaviour: torchvision.models.detection._utils.BoxCoder (encode_single / decode_single),
// torchvision 0.14; the parameterisation is R-CNN's (Girshick et al. 2014, appendix C) used by RetinaNet
// (Lin et al. 2017, section 4). Same float operation order, written from the formulas.
using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Geometry;

/// <summary>
/// Encodes boxes as offsets (dx, dy, dw, dh) from anchors and decodes them back:
/// dx = wx (cx - cxa) / wa, dy = wy (cy - cya) / ha, dw = ww ln(w / wa), dh = wh ln(h / ha).
/// Decoding clamps dw / ww and dh / wh at <see cref="ScaleClamp"/> before exp so that no box overflows.
/// </summary>
public sealed class BoxCoder
{
    /// <summary>The default clamp ln(1000 / 16): a box at most 62.5 times wider or taller than its anchor (torchvision, detectron2).</summary>
    public static readonly double DefaultScaleClamp = Math.Log(1000.0 / 16);

    /// <summary>Creates a coder with weights (wx, wy, ww, wh); RetinaNet uses (1, 1, 1, 1).</summary>
    /// <param name="wx">Weight of dx.</param>
    /// <param name="wy">Weight of dy.</param>
    /// <param name="ww">Weight of dw.</param>
    /// <param name="wh">Weight of dh.</param>
    /// <param name="scaleClamp">Upper bound on dw / ww and dh / wh before exp on decode; null = ln(1000 / 16).</param>
    /// <exception cref="ArgumentOutOfRangeException">A weight is not finite and positive, or the clamp is NaN.</exception>
    public BoxCoder(double wx = 1, double wy = 1, double ww = 1, double wh = 1, double? scaleClamp = null)
    {
        foreach (var (w, name) in new[] { (wx, nameof(wx)), (wy, nameof(wy)), (ww, nameof(ww)), (wh, nameof(wh)) })
            if (!double.IsFinite(w) || w <= 0) throw new ArgumentOutOfRangeException(name, w, "box coder weights must be finite and > 0");
        double clamp = scaleClamp ?? DefaultScaleClamp;
        if (double.IsNaN(clamp)) throw new ArgumentOutOfRangeException(nameof(scaleClamp), clamp, "scale clamp must not be NaN");
        Wx = wx; Wy = wy; Ww = ww; Wh = wh;
        ScaleClamp = clamp;
    }

    /// <summary>Weight of dx.</summary>
    public double Wx { get; }
    /// <summary>Weight of dy.</summary>
    public double Wy { get; }
    /// <summary>Weight of dw.</summary>
    public double Ww { get; }
    /// <summary>Weight of dh.</summary>
    public double Wh { get; }
    /// <summary>Upper bound applied to dw / ww and dh / wh before exp on decode.</summary>
    public double ScaleClamp { get; }

    /// <summary>
    /// Regression targets of <paramref name="targetBoxes"/> relative to <paramref name="anchors"/>, row by row.
    /// torchvision <c>BoxCoder.encode_single(reference_boxes=targetBoxes, proposals=anchors)</c>.
    /// Anchors must have positive width and height (else the result holds Inf or NaN).
    /// </summary>
    /// <param name="targetBoxes">(N, 4) XYXY ground-truth boxes, pixels.</param>
    /// <param name="anchors">(N, 4) XYXY anchors, pixels.</param>
    /// <returns>(N, 4) deltas (dx, dy, dw, dh) in the dtype of <paramref name="targetBoxes"/>.</returns>
    /// <exception cref="ArgumentException">Shapes are not (N, 4) or the row counts differ.</exception>
    public Tensor Encode(Tensor targetBoxes, Tensor anchors)
    {
        CheckPair(targetBoxes, nameof(targetBoxes), anchors, nameof(anchors));
        using var scope = NewDisposeScope();
        var a = anchors.to_type(targetBoxes.dtype).unbind(-1);
        var g = targetBoxes.unbind(-1);
        var aw = a[2] - a[0];
        var ah = a[3] - a[1];
        var acx = a[0].add(aw.mul(OneHalf), One);
        var acy = a[1].add(ah.mul(OneHalf), One);
        var gw = g[2] - g[0];
        var gh = g[3] - g[1];
        var gcx = g[0].add(gw.mul(OneHalf), One);
        var gcy = g[1].add(gh.mul(OneHalf), One);
        using var wx = Wx.ToScalar();
        using var wy = Wy.ToScalar();
        using var ww = Ww.ToScalar();
        using var wh = Wh.ToScalar();
        var dx = (gcx - acx).mul(wx) / aw;
        var dy = (gcy - acy).mul(wy) / ah;
        var dw = (gw / aw).log().mul(ww);
        var dh = (gh / ah).log().mul(wh);
        return stack(new[] { dx, dy, dw, dh }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Boxes from deltas applied to anchors, row by row. torchvision <c>BoxCoder.decode_single</c>: the centre
    /// moves by (dx / wx) anchor widths, the width is multiplied by exp(min(dw / ww, clamp)). Not clipped.
    /// </summary>
    /// <param name="deltas">(N, 4) deltas (dx, dy, dw, dh).</param>
    /// <param name="anchors">(N, 4) XYXY anchors, pixels.</param>
    /// <returns>(N, 4) XYXY boxes, pixels, in the dtype of <paramref name="deltas"/>.</returns>
    /// <exception cref="ArgumentException">Shapes are not (N, 4) or the row counts differ.</exception>
    public Tensor Decode(Tensor deltas, Tensor anchors)
    {
        CheckPair(deltas, nameof(deltas), anchors, nameof(anchors));
        using var scope = NewDisposeScope();
        var a = anchors.to_type(deltas.dtype).unbind(-1);
        var d = deltas.unbind(-1);
        var aw = a[2] - a[0];
        var ah = a[3] - a[1];
        var acx = a[0].add(aw.mul(OneHalf), One);
        var acy = a[1].add(ah.mul(OneHalf), One);
        using var wx = Wx.ToScalar();
        using var wy = Wy.ToScalar();
        using var ww = Ww.ToScalar();
        using var wh = Wh.ToScalar();
        using var clamp = ScaleClamp.ToScalar();
        var dx = d[0].div(wx);
        var dy = d[1].div(wy);
        var dw = d[2].div(ww).clamp_max(clamp);
        var dh = d[3].div(wh).clamp_max(clamp);
        var cx = (dx * aw).add(acx, One);
        var cy = (dy * ah).add(acy, One);
        var halfW = (dw.exp() * aw).mul(OneHalf);
        var halfH = (dh.exp() * ah).mul(OneHalf);
        return stack(new[] { cx - halfW, cy - halfH, cx.add(halfW, One), cy.add(halfH, One) }, -1).MoveToOuterDisposeScope();
    }

    private static void CheckPair(Tensor x, string xName, Tensor anchors, string anchorsName)
    {
        BoxOps.CheckBoxes(x, xName);
        BoxOps.CheckBoxes(anchors, anchorsName);
        if (x.shape[0] != anchors.shape[0])
            throw new ArgumentException($"{xName} has {x.shape[0]} rows but {anchorsName} has {anchors.shape[0]}; they pair row by row.", anchorsName);
    }
}
