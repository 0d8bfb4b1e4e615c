// TEMPORARY private stand-ins for RetinaSharp.Geometry / RetinaSharp.Losses / RetinaNetPostProcessor, which other
// branches are writing (same signatures). Deleted once those are merged into main. Behaviour follows torchvision 0.14
// (box_iou, BoxCoder, AnchorGenerator, Matcher, sigmoid_focal_loss, RetinaNet.postprocess_detections).
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling.Pending;

internal enum FocalReduction { None, Sum, Mean, Normalized }

internal static class FocalLoss
{
    public static Tensor SigmoidFocalLossFromIndices(Tensor logits, Tensor classIndices, double? alpha = 0.25, double gamma = 2.0,
        FocalReduction reduction = FocalReduction.Normalized, double normalizer = 1.0, Tensor? alphaPerClass = null)
    {
        using var scope = NewDisposeScope();
        var valid = classIndices.ne(-2);
        var l = logits[valid];
        var idx = classIndices[valid];
        var t = zeros_like(l);
        var fg = idx.ge(0);
        if (fg.any().item<bool>())
        {
            var rows = nonzero(fg).squeeze(1);
            t.index_put_(ones(1), [rows, idx[fg]]);
        }
        var p = sigmoid(l);
        var ce = nn.functional.binary_cross_entropy_with_logits(l, t, reduction: nn.Reduction.None);
        var pt = p * t + (1 - p) * (1 - t);
        var loss = ce * (1 - pt).pow(gamma);
        if (alpha is { } a) loss = (a * t + (1 - a) * (1 - t)) * loss;
        var r = reduction switch
        {
            FocalReduction.None => loss,
            FocalReduction.Sum => loss.sum(),
            FocalReduction.Mean => loss.mean(),
            _ => loss.sum() / Math.Max(1.0, normalizer),
        };
        return r.MoveToOuterDisposeScope();
    }
}

internal static class BoxOps
{
    public static Tensor Area(Tensor b) => (b[.., 2] - b[.., 0]) * (b[.., 3] - b[.., 1]);

    public static Tensor Iou(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var area1 = Area(a); var area2 = Area(b);
        var lt = maximum(a[.., TensorIndex.None, ..2], b[.., ..2]);
        var rb = minimum(a[.., TensorIndex.None, 2..], b[.., 2..]);
        var wh = (rb - lt).clamp_min(0);
        var inter = wh[.., .., 0] * wh[.., .., 1];
        var union = area1[.., TensorIndex.None] + area2 - inter;
        return (inter / union).MoveToOuterDisposeScope();
    }

    public static Tensor GeneralizedIouLoss(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        const double eps = 1e-7;
        var (x1, y1, x2, y2) = (a[.., 0], a[.., 1], a[.., 2], a[.., 3]);
        var (x1g, y1g, x2g, y2g) = (b[.., 0], b[.., 1], b[.., 2], b[.., 3]);
        var xkis1 = maximum(x1, x1g); var ykis1 = maximum(y1, y1g);
        var xkis2 = minimum(x2, x2g); var ykis2 = minimum(y2, y2g);
        var intsctk = zeros_like(x1);
        var mask = ykis2.gt(ykis1).logical_and(xkis2.gt(xkis1));
        intsctk = where(mask, (xkis2 - xkis1) * (ykis2 - ykis1), intsctk);
        var unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk;
        var iouk = intsctk / (unionk + eps);
        var xc1 = minimum(x1, x1g); var yc1 = minimum(y1, y1g);
        var xc2 = maximum(x2, x2g); var yc2 = maximum(y2, y2g);
        var area_c = (xc2 - xc1) * (yc2 - yc1);
        var miouk = iouk - ((area_c - unionk) / (area_c + eps));
        return (1 - miouk).MoveToOuterDisposeScope();
    }

    public static Tensor ClipToImage(Tensor boxes, long h, long w)
    {
        using var scope = NewDisposeScope();
        return stack([boxes[.., 0].clamp(0, w), boxes[.., 1].clamp(0, h), boxes[.., 2].clamp(0, w), boxes[.., 3].clamp(0, h)], 1).MoveToOuterDisposeScope();
    }
}

internal sealed class BoxCoder(double wx, double wy, double ww, double wh)
{
    private static readonly double Clip = Math.Log(1000.0 / 16);

    public Tensor Encode(Tensor gt, Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var ew = anchors[.., 2] - anchors[.., 0]; var eh = anchors[.., 3] - anchors[.., 1];
        var ex = anchors[.., 0] + 0.5 * ew; var ey = anchors[.., 1] + 0.5 * eh;
        var gw = gt[.., 2] - gt[.., 0]; var gh = gt[.., 3] - gt[.., 1];
        var gx = gt[.., 0] + 0.5 * gw; var gy = gt[.., 1] + 0.5 * gh;
        var dx = wx * (gx - ex) / ew; var dy = wy * (gy - ey) / eh;
        var dw = ww * log(gw / ew); var dh = wh * log(gh / eh);
        return stack([dx, dy, dw, dh], 1).MoveToOuterDisposeScope();
    }

    public Tensor Decode(Tensor d, Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var w = anchors[.., 2] - anchors[.., 0]; var h = anchors[.., 3] - anchors[.., 1];
        var cx = anchors[.., 0] + 0.5 * w; var cy = anchors[.., 1] + 0.5 * h;
        var dx = d[.., 0] / wx; var dy = d[.., 1] / wy;
        var dw = (d[.., 2] / ww).clamp_max(Clip); var dh = (d[.., 3] / wh).clamp_max(Clip);
        var pcx = dx * w + cx; var pcy = dy * h + cy;
        var pw = exp(dw) * w; var ph = exp(dh) * h;
        var hw = 0.5 * pw; var hh = 0.5 * ph;
        return stack([pcx - hw, pcy - hh, pcx + hw, pcy + hh], 1).MoveToOuterDisposeScope();
    }
}

internal sealed class AnchorGenerator(int[][] sizes, double[] ratios)
{
    public static AnchorGenerator RetinaNetDefault() => new(new RetinaNetOptions(1).EffectiveAnchorSizes(), [0.5, 1.0, 2.0]);
    public int AnchorsPerLocation => sizes[0].Length * ratios.Length;

    public Tensor[] AnchorsPerLevel((long H, long W) paddedImageSize, IReadOnlyList<(long H, long W)> featureSizes, Device? device = null)
    {
        var result = new Tensor[featureSizes.Count];
        for (int l = 0; l < featureSizes.Count; l++)
        {
            using var scope = NewDisposeScope();
            var scales = tensor(sizes[l].Select(s => (float)s).ToArray());
            var ar = tensor(ratios.Select(r => (float)r).ToArray());
            var hr = sqrt(ar); var wr = 1 / hr;
            var ws = (wr[.., TensorIndex.None] * scales[TensorIndex.None, ..]).view(-1);
            var hs = (hr[.., TensorIndex.None] * scales[TensorIndex.None, ..]).view(-1);
            var baseA = (stack([-ws, -hs, ws, hs], 1) / 2).round();
            var (fh, fw) = featureSizes[l];
            long sh = paddedImageSize.H / fh, sw = paddedImageSize.W / fw;
            var sx = arange(0, fw, dtype: ScalarType.Int32).to(ScalarType.Float32) * sw;
            var sy = arange(0, fh, dtype: ScalarType.Int32).to(ScalarType.Float32) * sh;
            var g = meshgrid([sy, sx], indexing: "ij");
            var shx = g[1].reshape(-1); var shy = g[0].reshape(-1);
            var shifts = stack([shx, shy, shx, shy], 1);
            result[l] = (shifts.view(-1, 1, 4) + baseA.view(1, -1, 4)).reshape(-1, 4).to(device ?? CPU).MoveToOuterDisposeScope();
        }
        return result;
    }
}

internal sealed class Matcher(double high, double low, bool allowLowQualityMatches)
{
    public Tensor Match(Tensor iou)
    {
        using var scope = NewDisposeScope();
        var (vals, matches) = iou.max(0);
        var all = matches.clone();
        matches = where(vals.lt(low), full_like(matches, -1), matches);
        matches = where(vals.ge(low).logical_and(vals.lt(high)), full_like(matches, -2), matches);
        if (allowLowQualityMatches)
        {
            var best = iou.max(1).values;
            var pairs = nonzero(iou.eq(best[.., TensorIndex.None]));
            var upd = pairs[.., 1];
            matches[upd] = all[upd];
        }
        return matches.MoveToOuterDisposeScope();
    }
}

internal static class NonMaxSuppression
{
    public static Tensor Batched(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold)
    {
        using var scope = NewDisposeScope();
        if (boxes.shape[0] == 0) return empty(0, dtype: ScalarType.Int64).MoveToOuterDisposeScope();
        var offsets = labels.to(boxes.dtype) * (boxes.max() + 1);
        var b = boxes + offsets[.., TensorIndex.None];
        var order = scores.sort(descending: true, stable: true).Indices;
        var iou = BoxOps.Iou(b, b);
        var ord = order.data<long>().ToArray();
        var iouArr = iou.data<float>().ToArray();
        long n = boxes.shape[0];
        var removed = new bool[n];
        var keep = new List<long>();
        foreach (var i in ord)
        {
            if (removed[i]) continue;
            keep.Add(i);
            for (long j = 0; j < n; j++) if (!removed[j] && iouArr[i * n + j] > iouThreshold) removed[j] = true;
        }
        return tensor(keep.ToArray()).MoveToOuterDisposeScope();
    }
}
