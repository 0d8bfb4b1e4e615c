// The ground-truth boxes an anchor analysis looks at, flat (one array of XYXY per set, one image index per box), so
// that the analysis runs over hundreds of thousands of boxes without per-box objects. Crowd regions and degenerate
// boxes are left out as the matcher never sees them (torchvision drops crowd boxes from COCO training targets).
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Analysis;

/// <summary>Images (their sizes) and ground-truth boxes (XYXY pixels of the original image) for anchor analysis.</summary>
public sealed class AnchorBoxSet
{
    private readonly int[] _imageWidth, _imageHeight, _imageOfBox;
    private readonly float[] _xyxy;

    /// <summary>Creates a set from flat arrays (copied).</summary>
    /// <param name="imageWidths">Per image, its width in pixels (original).</param>
    /// <param name="imageHeights">Per image, its height in pixels (original).</param>
    /// <param name="imageOfBox">Per box, the index of its image in the two lists above.</param>
    /// <param name="xyxy">Per box, x1, y1, x2, y2 in original pixels: length 4 × boxes.</param>
    /// <exception cref="ArgumentException">Lengths differ, an image size is not positive, a box index is out of range,
    /// or a box is not finite with x2 &gt; x1 and y2 &gt; y1 (the message names the box).</exception>
    public AnchorBoxSet(int[] imageWidths, int[] imageHeights, int[] imageOfBox, float[] xyxy)
    {
        ArgumentNullException.ThrowIfNull(imageWidths); ArgumentNullException.ThrowIfNull(imageHeights);
        ArgumentNullException.ThrowIfNull(imageOfBox); ArgumentNullException.ThrowIfNull(xyxy);
        if (imageWidths.Length != imageHeights.Length) throw new ArgumentException($"{imageWidths.Length} widths but {imageHeights.Length} heights", nameof(imageHeights));
        if (xyxy.Length != 4 * imageOfBox.Length) throw new ArgumentException($"{imageOfBox.Length} boxes need {4 * imageOfBox.Length} coordinates, got {xyxy.Length}", nameof(xyxy));
        for (int i = 0; i < imageWidths.Length; i++)
            if (imageWidths[i] <= 0 || imageHeights[i] <= 0) throw new ArgumentException($"image {i}: size {imageWidths[i]}x{imageHeights[i]} must be positive", nameof(imageWidths));
        for (int b = 0; b < imageOfBox.Length; b++)
        {
            if ((uint)imageOfBox[b] >= (uint)imageWidths.Length) throw new ArgumentException($"box {b}: image index {imageOfBox[b]} is out of range 0..{imageWidths.Length - 1}", nameof(imageOfBox));
            float x1 = xyxy[4 * b], y1 = xyxy[4 * b + 1], x2 = xyxy[4 * b + 2], y2 = xyxy[4 * b + 3];
            if (!(float.IsFinite(x1) && float.IsFinite(y1) && float.IsFinite(x2) && float.IsFinite(y2) && x2 > x1 && y2 > y1))
                throw new ArgumentException($"box {b}: ({x1}, {y1}, {x2}, {y2}) must be finite with x2 > x1 and y2 > y1", nameof(xyxy));
        }
        _imageWidth = (int[])imageWidths.Clone(); _imageHeight = (int[])imageHeights.Clone();
        _imageOfBox = (int[])imageOfBox.Clone(); _xyxy = (float[])xyxy.Clone();
    }

    /// <summary>The number of images (empty ones included).</summary>
    public int ImageCount => _imageWidth.Length;
    /// <summary>The number of boxes.</summary>
    public int BoxCount => _imageOfBox.Length;
    /// <summary>The images that have no box.</summary>
    public int EmptyImageCount
    {
        get
        {
            var has = new bool[_imageWidth.Length];
            foreach (var i in _imageOfBox) has[i] = true;
            return has.Count(h => !h);
        }
    }

    internal ReadOnlySpan<int> ImageWidths => _imageWidth;
    internal ReadOnlySpan<int> ImageHeights => _imageHeight;
    internal int[] ImageOfBoxArray => _imageOfBox;
    internal float[] XyxyArray => _xyxy;

    /// <summary>Every k-th box (k chosen so at most <paramref name="maxBoxes"/> remain), all images kept; this set when small enough.</summary>
    internal AnchorBoxSet Subsample(int maxBoxes)
    {
        if (BoxCount <= maxBoxes) return this;
        double step = (double)BoxCount / maxBoxes;
        var of = new int[maxBoxes];
        var xy = new float[4 * maxBoxes];
        for (int i = 0; i < maxBoxes; i++)
        {
            int b = (int)(i * step);
            of[i] = _imageOfBox[b];
            Array.Copy(_xyxy, 4 * b, xy, 4 * i, 4);
        }
        return new AnchorBoxSet(_imageWidth, _imageHeight, of, xy);
    }

    /// <summary>The boxes of a loaded dataset (COCO, VOC or CSV): every image (empty ones counted), boxes that are not
    /// crowd and not degenerate. Images whose size is unknown (0) are skipped with their boxes.</summary>
    /// <param name="dataset">The dataset.</param>
    /// <param name="skippedImages">Images left out because their size is unknown.</param>
    /// <exception cref="ArgumentNullException"><paramref name="dataset"/> is null.</exception>
    public static AnchorBoxSet FromDataset(DetectionDataset dataset, out int skippedImages)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var w = new List<int>(); var h = new List<int>(); var of = new List<int>(); var xy = new List<float>();
        skippedImages = 0;
        foreach (var im in dataset.Images)
        {
            if (im.Width <= 0 || im.Height <= 0) { skippedImages++; continue; }
            int index = w.Count;
            w.Add(im.Width); h.Add(im.Height);
            foreach (var b in im.Boxes)
            {
                if (b.IsCrowd || b.IsDegenerate) continue;
                of.Add(index); xy.Add(b.X1); xy.Add(b.Y1); xy.Add(b.X2); xy.Add(b.Y2);
            }
        }
        return new AnchorBoxSet([.. w], [.. h], [.. of], [.. xy]);
    }

    /// <summary>The boxes of COCO ground truth (XYWH converted to XYXY), with, per box, its annotation index; crowd and
    /// empty boxes and annotations of unlisted or size-less images are left out (they have no entry).</summary>
    /// <param name="groundTruth">The ground truth.</param>
    /// <param name="annotationOfBox">Per box of the set, the index of its annotation in <c>groundTruth.Annotations</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="groundTruth"/> is null.</exception>
    public static AnchorBoxSet FromCoco(CocoInstances groundTruth, out int[] annotationOfBox)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        var index = new Dictionary<long, int>();
        var w = new List<int>(); var h = new List<int>();
        foreach (var im in groundTruth.Images)
        {
            if (index.ContainsKey(im.Id) || im.Width <= 0 || im.Height <= 0) continue;
            index[im.Id] = w.Count; w.Add(im.Width); h.Add(im.Height);
        }
        var of = new List<int>(); var xy = new List<float>(); var ann = new List<int>();
        for (int a = 0; a < groundTruth.Annotations.Count; a++)
        {
            var g = groundTruth.Annotations[a];
            if (g.IsCrowd || !(g.Width > 0) || !(g.Height > 0) || !index.TryGetValue(g.ImageId, out int i)) continue;
            float x1 = (float)g.X, y1 = (float)g.Y, x2 = (float)(g.X + g.Width), y2 = (float)(g.Y + g.Height);
            if (!(x2 > x1 && y2 > y1)) continue;
            of.Add(i); ann.Add(a); xy.Add(x1); xy.Add(y1); xy.Add(x2); xy.Add(y2);
        }
        annotationOfBox = [.. ann];
        return new AnchorBoxSet([.. w], [.. h], [.. of], [.. xy]);
    }
}
