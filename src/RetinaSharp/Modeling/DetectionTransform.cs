// Reference: torchvision 0.14 GeneralizedRCNNTransform: normalise with mean/std, resize bilinearly
// (align_corners=False) by scale = min(min_size / shorter side, max_size / longer side) computed in float32 tensors
// (`min_size / t` is `t.reciprocal() * min_size`) with output size floor(side · scale) in double precision
// (interpolate(..., recompute_scale_factor=True)), scale boxes by float32 ratios new/old, pad the batch with zeros on the right and bottom to a
// multiple of size_divisible; postprocess maps boxes back by old/new ratios. Differences: each resized side is at least
// 1 pixel (torchvision fails on a 5000x1 image whose height rounds to 0), and images containing NaN/Inf are rejected.
using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>A normalised, resized and padded batch ready for the network.</summary>
/// <param name="Images">(N, 3, H_pad, W_pad) float32; H_pad and W_pad are multiples of the size divisor.</param>
/// <param name="ImageSizes">Per image, its resized (H, W) in pixels inside the padded batch (top-left aligned).</param>
/// <param name="OriginalSizes">Per image, the (H, W) in pixels of the image as given.</param>
public sealed record PreprocessedBatch(Tensor Images, IReadOnlyList<(long H, long W)> ImageSizes, IReadOnlyList<(long H, long W)> OriginalSizes)
{
    /// <summary>The padded (H, W) of the batch.</summary>
    public (long H, long W) PaddedSize => (Images.shape[2], Images.shape[3]);
}

/// <summary>Resizes, normalises and batches images; scales boxes into and out of the resized frame.</summary>
public sealed class DetectionTransform
{
    private readonly RetinaNetOptions _o;

    /// <summary>Uses <see cref="RetinaNetOptions.MinSize"/>, TrainMinSizes, MaxSize, SizeDivisible, ImageMean, ImageStd.</summary>
    public DetectionTransform(RetinaNetOptions options) => _o = options;

    /// <summary>
    /// The resized (H, W) for an image of (h, w) pixels at the inference size <see cref="RetinaNetOptions.MinSize"/>:
    /// see <see cref="ResizedSize(long, long, int, int)"/>.
    /// </summary>
    public (long H, long W) ResizedSize(long h, long w) => ResizedSize(h, w, _o.MinSize, _o.MaxSize);

    /// <summary>
    /// The padded (H, W) of a batch holding only an image of (h, w) pixels at the inference size: <see cref="ResizedSize(long, long)"/>
    /// rounded up to a multiple of <see cref="RetinaNetOptions.SizeDivisible"/>. Images with the same padded size can share a
    /// batch without either seeing padding it would not see alone.
    /// </summary>
    /// <param name="h">Image height in pixels (at least 1).</param>
    /// <param name="w">Image width in pixels (at least 1).</param>
    public (long H, long W) PaddedSize(long h, long w)
    {
        var (rh, rw) = ResizedSize(h, w);
        return (RoundUpToDivisible(rh), RoundUpToDivisible(rw));
    }

    /// <summary><paramref name="side"/> pixels rounded up to a multiple of <see cref="RetinaNetOptions.SizeDivisible"/>.</summary>
    private long RoundUpToDivisible(long side) => (side + _o.SizeDivisible - 1) / _o.SizeDivisible * _o.SizeDivisible;

    /// <summary>
    /// The resized (H, W) for an image of (h, w) pixels, exactly as torchvision 0.14 computes it: the scale
    /// s = min(minSize / min(h, w), maxSize / max(h, w)) in float32, each quotient as float32(float32(1 / side) · size)
    /// (torchvision's <c>size / tensor</c> is <c>tensor.reciprocal() * size</c>), then max(1, floor(side · s)) in double
    /// precision. The float32 scale is often just below the exact ratio, so the side that meets its target is then one
    /// pixel short (a 427x640 image becomes 799x1199 at 800/1333, not 800x1199), as in torchvision (checked for every size
    /// up to 2000x2000 against a table from torchvision 0.14). The lower bound of 1 pixel keeps extreme aspect ratios (for
    /// example 5000x1 with MaxSize 64) processable; torchvision would ask libtorch for a 0-pixel output there and fail.
    /// </summary>
    /// <param name="h">Image height in pixels (at least 1).</param>
    /// <param name="w">Image width in pixels (at least 1).</param>
    /// <param name="minSize">Target of the shorter side in pixels.</param>
    /// <param name="maxSize">Upper bound of the longer side in pixels.</param>
    public static (long H, long W) ResizedSize(long h, long w, int minSize, int maxSize)
    {
        float shorter = Math.Min(h, w), longer = Math.Max(h, w);
        float scale = Math.Min(1f / shorter * minSize, 1f / longer * maxSize);
        return (Math.Max(1L, (long)Math.Floor(h * (double)scale)), Math.Max(1L, (long)Math.Floor(w * (double)scale)));
    }

    /// <summary>
    /// Checks an input image and returns it as (3, H, W) float32 (a 1-channel image is repeated; float64, float16 and
    /// bfloat16 are converted to float32). As torchvision's <c>GeneralizedRCNNTransform</c>, only floating-point images in
    /// [0, 1] are accepted: uint8 and other integer tensors are rejected (convert with <c>image.to(float32) / 255</c>,
    /// or use <c>ImageIO.ToTensor</c>). Values are not checked here for NaN/Inf (see <see cref="Preprocess"/>).
    /// </summary>
    /// <param name="image">(C, H, W) with C = 1 or 3, floating point in [0, 1].</param>
    /// <param name="index">Its position in the batch, for the error message.</param>
    /// <exception cref="ArgumentException">Not 3-D, C not 1 or 3, zero pixels, or not a floating-point tensor (the message names <c>images[index]</c> and the dtype).</exception>
    public static Tensor CheckImage(Tensor image, int index)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.dim() != 3)
            throw new ArgumentException($"images[{index}]: expected a (C, H, W) tensor, got shape [{string.Join(", ", image.shape)}]", "images");
        if (image.shape[0] is not (1 or 3))
            throw new ArgumentException($"images[{index}]: expected 1 or 3 channels, got {image.shape[0]} (shape [{string.Join(", ", image.shape)}])", "images");
        if (image.shape[1] == 0 || image.shape[2] == 0)
            throw new ArgumentException($"images[{index}]: has 0 pixels (shape [{string.Join(", ", image.shape)}])", "images");
        var x = image.dtype switch
        {
            ScalarType.Float32 => image.alias(),
            ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16 => image.to(ScalarType.Float32),
            _ => throw new ArgumentException($"images[{index}]: dtype {image.dtype} is not supported: expected a floating-point tensor with values in [0, 1] (for uint8 pixels use image.to(float32) / 255)", "images"),
        };
        return x.shape[0] == 1 ? x.expand(3, -1, -1) : x;
    }

    /// <summary>
    /// The shorter-side target for the next image: <see cref="RetinaNetOptions.MinSize"/>, or in training with
    /// <see cref="RetinaNetOptions.TrainMinSizes"/> one of those drawn uniformly with torch's global generator
    /// (torchvision's <c>torch_choice</c>: floor of a uniform draw in [0, count)).
    /// </summary>
    /// <param name="training">Training mode (draw among TrainMinSizes).</param>
    public int ChooseMinSize(bool training)
    {
        if (!training || _o.TrainMinSizes is not { Length: > 0 } sizes) return _o.MinSize;
        using var draw = empty(1).uniform_(0, sizes.Length);
        return sizes[Math.Min(sizes.Length - 1, (int)draw.item<float>())];
    }

    /// <summary>Normalises, resizes and pads <paramref name="images"/> into one batch.</summary>
    /// <param name="images">Each (C, H, W), C = 1 or 3, floating point in [0, 1]; sizes may differ.</param>
    /// <param name="training">Training mode: each image's shorter side is drawn from <see cref="RetinaNetOptions.TrainMinSizes"/>
    /// when given (<see cref="ChooseMinSize"/>), so the batch's padded size changes with the draw; otherwise <see cref="RetinaNetOptions.MinSize"/>.</param>
    /// <exception cref="ArgumentException">An empty list, a bad image (see <see cref="CheckImage"/>), or an image containing NaN or ±Inf
    /// (one <c>isfinite().all()</c> per image; the message names <c>images[i]</c>).</exception>
    public PreprocessedBatch Preprocess(IReadOnlyList<Tensor> images, bool training = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("images is empty", nameof(images));
        using var scope = NewDisposeScope();
        var device = images[0].device;
        var mean = tensor(_o.ImageMean.Select(v => (float)v).ToArray(), device: device).view(3, 1, 1);
        var std = tensor(_o.ImageStd.Select(v => (float)v).ToArray(), device: device).view(3, 1, 1);
        var resized = new List<Tensor>();
        var sizes = new List<(long, long)>();
        var originals = new List<(long, long)>();
        for (int i = 0; i < images.Count; i++)
        {
            var x = CheckImage(images[i], i);
            if (!x.isfinite().all().item<bool>())
                throw new ArgumentException($"images[{i}]: contains NaN or Inf values (shape [{string.Join(", ", images[i].shape)}], dtype {images[i].dtype}); expected finite values in [0, 1]", nameof(images));
            long h = x.shape[1], w = x.shape[2];
            originals.Add((h, w));
            x = (x - mean) / std;
            var (nh, nw) = ResizedSize(h, w, ChooseMinSize(training), _o.MaxSize);
            x = nn.functional.interpolate(x.unsqueeze(0), size: [nh, nw], mode: InterpolationMode.Bilinear, align_corners: false).squeeze(0);
            resized.Add(x);
            sizes.Add((nh, nw));
        }
        long hp = RoundUpToDivisible(sizes.Max(s => s.Item1));
        long wp = RoundUpToDivisible(sizes.Max(s => s.Item2));
        var batch = zeros(images.Count, 3, hp, wp, dtype: ScalarType.Float32, device: device);
        for (int i = 0; i < resized.Count; i++)
            batch[i, .., ..(int)sizes[i].Item1, ..(int)sizes[i].Item2] = resized[i];
        return new PreprocessedBatch(batch.MoveToOuterDisposeScope(), sizes, originals);
    }

    /// <summary>Scales boxes (G, 4) XYXY from a frame of size <paramref name="from"/> to <paramref name="to"/> (float32 ratios to/from per axis, as torchvision <c>resize_boxes</c>).</summary>
    public static Tensor ScaleBoxes(Tensor boxes, (long H, long W) from, (long H, long W) to)
    {
        using var scope = NewDisposeScope();
        float rh = (float)to.H / (float)from.H, rw = (float)to.W / (float)from.W;
        var ratio = tensor(new[] { rw, rh, rw, rh }, device: boxes.device);
        return (boxes * ratio).MoveToOuterDisposeScope();
    }
}
