// Geometric augmentation of an image and its boxes, exact for boxes: torchvision's references/detection
// transforms.RandomHorizontalFlip (x1' = W - x2, x2' = W - x1) and the resize of GeneralizedRCNNTransform
// (boxes scaled by new/old size per axis; bilinear sampling with half-pixel centres, align_corners=False).
namespace RetinaSharp.Data;

/// <summary>Flip and resize of an <see cref="RgbImage"/> with its boxes (flat XYXY arrays, 4 floats per box, absolute pixels).</summary>
public static class Augmentation
{
    /// <summary>Mirrors the image left-right; a box [x1, y1, x2, y2] becomes [W - x2, y1, W - x1, y2].</summary>
    /// <param name="image">The image.</param>
    /// <param name="boxes">XYXY boxes, length 4N; not modified.</param>
    /// <returns>The new image and new boxes.</returns>
    public static (RgbImage Image, float[] Boxes) HorizontalFlip(RgbImage image, float[] boxes)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckBoxes(boxes);
        int w = image.Width, h = image.Height;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < h; y++)
        {
            int row = y * w * 3;
            for (int x = 0; x < w; x++)
            {
                int s = row + x * 3, d = row + (w - 1 - x) * 3;
                dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2];
            }
        }
        var nb = new float[boxes.Length];
        for (int i = 0; i < boxes.Length; i += 4)
        {
            nb[i] = w - boxes[i + 2];
            nb[i + 1] = boxes[i + 1];
            nb[i + 2] = w - boxes[i];
            nb[i + 3] = boxes[i + 3];
        }
        return (new RgbImage(dst, w, h), nb);
    }

    /// <summary>
    /// Resizes so that the shorter side is <paramref name="shorterSide"/> pixels (the longer side capped at
    /// <paramref name="maxLongerSide"/>), keeping the aspect ratio up to rounding. New size:
    /// round(W * s) x round(H * s); boxes are scaled by exactly newW / W and newH / H.
    /// </summary>
    /// <param name="image">The image.</param>
    /// <param name="boxes">XYXY boxes, length 4N; not modified.</param>
    /// <param name="shorterSide">Target length of the shorter side, pixels (&gt; 0).</param>
    /// <param name="maxLongerSide">Optional cap on the longer side, pixels.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public static (RgbImage Image, float[] Boxes) ResizeShorterSide(RgbImage image, float[] boxes, int shorterSide, int? maxLongerSide = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shorterSide);
        if (maxLongerSide is int m) ArgumentOutOfRangeException.ThrowIfNegativeOrZero(m, nameof(maxLongerSide));
        double scale = (double)shorterSide / Math.Min(image.Width, image.Height);
        if (maxLongerSide is int cap && Math.Max(image.Width, image.Height) * scale > cap)
            scale = (double)cap / Math.Max(image.Width, image.Height);
        int nw = Math.Max(1, (int)Math.Round(image.Width * scale)), nh = Math.Max(1, (int)Math.Round(image.Height * scale));
        return Resize(image, boxes, nw, nh);
    }

    /// <summary>Resizes to <paramref name="width"/> x <paramref name="height"/> (bilinear, half-pixel centres, no antialiasing) and scales the boxes per axis.</summary>
    /// <param name="image">The image.</param>
    /// <param name="boxes">XYXY boxes, length 4N; not modified.</param>
    /// <param name="width">New width, pixels (&gt; 0).</param>
    /// <param name="height">New height, pixels (&gt; 0).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public static (RgbImage Image, float[] Boxes) Resize(RgbImage image, float[] boxes, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckBoxes(boxes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        float sx = (float)width / image.Width, sy = (float)height / image.Height;
        var nb = new float[boxes.Length];
        for (int i = 0; i < boxes.Length; i += 4)
        {
            nb[i] = boxes[i] * sx; nb[i + 1] = boxes[i + 1] * sy;
            nb[i + 2] = boxes[i + 2] * sx; nb[i + 3] = boxes[i + 3] * sy;
        }
        if (width == image.Width && height == image.Height)
            return (new RgbImage((byte[])image.Pixels.Clone(), width, height), nb);
        return (Bilinear(image, width, height), nb);
    }

    /// <summary>Applies <paramref name="options"/> with random choices from <paramref name="rng"/>: first the resize, then the flip.</summary>
    /// <param name="image">The image.</param>
    /// <param name="boxes">XYXY boxes, length 4N; not modified.</param>
    /// <param name="options">What to do.</param>
    /// <param name="rng">The source of the random choices (seeded per image and epoch by the loader).</param>
    public static (RgbImage Image, float[] Boxes) Apply(RgbImage image, float[] boxes, AugmentationOptions options, Random rng)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rng);
        int? side = options.ShorterSideScales is { Length: > 0 } s ? s[rng.Next(s.Length)]
            : options.ShorterSideRange is { } r ? rng.Next(r.Min, r.Max + 1) : null;
        bool flip = options.HorizontalFlip && rng.NextDouble() < options.FlipProbability;
        var result = (image, boxes);
        if (side is int sz) result = ResizeShorterSide(result.image, result.boxes, sz, options.MaxLongerSide);
        if (flip) result = HorizontalFlip(result.image, result.boxes);
        return result;
    }

    private static void CheckBoxes(float[] boxes)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Length % 4 != 0)
            throw new ArgumentException($"boxes must hold 4 floats per box (XYXY), found length {boxes.Length}", nameof(boxes));
    }

    // Bilinear resampling with half-pixel centres: source coordinate (d + 0.5) * in / out - 0.5, clamped at 0
    // (torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)).
    internal static RgbImage Bilinear(RgbImage image, int width, int height)
    {
        int iw = image.Width, ih = image.Height;
        var src = image.Pixels;
        var dst = new byte[width * height * 3];
        var x0 = new int[width]; var x1 = new int[width]; var fx = new float[width];
        float rx = (float)iw / width, ry = (float)ih / height;
        for (int x = 0; x < width; x++)
        {
            float s = Math.Max(0f, (x + 0.5f) * rx - 0.5f);
            x0[x] = Math.Min((int)s, iw - 1); x1[x] = Math.Min(x0[x] + 1, iw - 1); fx[x] = s - (int)s;
        }
        for (int y = 0; y < height; y++)
        {
            float s = Math.Max(0f, (y + 0.5f) * ry - 0.5f);
            int y0 = Math.Min((int)s, ih - 1), y1 = Math.Min(y0 + 1, ih - 1);
            float fy = s - (int)s;
            int r0 = y0 * iw * 3, r1 = y1 * iw * 3, o = y * width * 3;
            for (int x = 0; x < width; x++)
            {
                int a = r0 + x0[x] * 3, b = r0 + x1[x] * 3, c = r1 + x0[x] * 3, d = r1 + x1[x] * 3;
                float wx = fx[x];
                for (int ch = 0; ch < 3; ch++)
                {
                    float top = src[a + ch] + (src[b + ch] - src[a + ch]) * wx;
                    float bottom = src[c + ch] + (src[d + ch] - src[c + ch]) * wx;
                    dst[o + x * 3 + ch] = (byte)Math.Clamp((int)MathF.Round(top + (bottom - top) * fy), 0, 255);
                }
            }
        }
        return new RgbImage(dst, width, height);
    }
}
