// Reduced JPEG copies of the evaluated images for the HTML report (SkiaSharp: decode through ImageIO, linear
// down-sampling with mipmaps, JPEG encode), sized so that all of them fit a byte budget.
using System.Runtime.InteropServices;
using RetinaSharp.Data;
using RetinaSharp.IO;
using SkiaSharp;

namespace RetinaSharp.Reporting;

/// <summary>JPEG thumbnails of a list of images within a total size budget.</summary>
internal static class ReportThumbnails
{
    /// <summary>What <see cref="Make"/> produced.</summary>
    /// <param name="Jpegs">Per image, the JPEG bytes, or null (no file, unreadable, or left out for the budget).</param>
    /// <param name="Unreadable">Images whose file was missing or could not be decoded.</param>
    /// <param name="LeftOut">Readable images left out because the budget was spent.</param>
    /// <param name="LargestSide">The largest thumbnail side used, pixels.</param>
    public sealed record Result(byte[]?[] Jpegs, int Unreadable, int LeftOut, int LargestSide)
    {
        /// <summary>The bytes of all thumbnails once base64-encoded (as they are embedded).</summary>
        public long EmbeddedBytes => Jpegs.Sum(j => j is null ? 0L : Base64Length(j.Length));
    }

    /// <summary>The length of the base64 text of <paramref name="bytes"/> bytes.</summary>
    public static long Base64Length(long bytes) => (bytes + 2) / 3 * 4;

    /// <summary>
    /// Decodes every file (EXIF orientation applied, as the boxes are) and encodes a thumbnail whose longer side is at
    /// most <paramref name="maxSide"/> (never enlarged). Each image gets an equal share of the budget: the first of a
    /// ladder of smaller sides and lower qualities that fits its share is kept (the smallest when none fits); images
    /// at the end are left out if the total still exceeds the budget.
    /// </summary>
    /// <param name="files">Per image, its file or null.</param>
    /// <param name="budgetBytes">Budget for the base64 text of all thumbnails.</param>
    /// <param name="maxSide">Largest thumbnail side, pixels (&gt;= 16).</param>
    /// <param name="quality">JPEG quality of the largest size (1-100); smaller sizes use lower qualities.</param>
    /// <param name="progress">Called with (images done, total), from worker threads, one call at a time.</param>
    public static Result Make(IReadOnlyList<string?> files, long budgetBytes, int maxSide, int quality, Action<int, int>? progress = null)
    {
        int n = files.Count;
        var jpegs = new byte[]?[n];
        if (n == 0) return new Result(jpegs, 0, 0, 0);
        long share = Math.Max(0, budgetBytes) / n;
        var ladder = Ladder(maxSide, quality);
        int unreadable = 0, done = 0, largest = 0;
        var gate = new object();
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
        {
            string? file = files[i];
            RgbImage? image = null;
            if (file != null && File.Exists(file))
            {
                try { image = ImageIO.Load(file); }
                catch (DataFormatException) { }
            }
            byte[]? jpeg = null;
            int side = 0;
            if (image is null) Interlocked.Increment(ref unreadable);
            else if (share > 0)
            {
                using var bitmap = ToBitmap(image);
                foreach (var (s, q) in ladder)
                {
                    jpeg = Encode(bitmap, s, q, out side);
                    if (Base64Length(jpeg.Length) <= share) break;
                }
            }
            jpegs[i] = jpeg;
            lock (gate)
            {
                largest = Math.Max(largest, side);
                progress?.Invoke(++done, n);
            }
        });
        // Equal shares hold in all but pathological cases (a share below the smallest thumbnail); then drop from the end.
        long total = jpegs.Sum(j => j is null ? 0L : Base64Length(j.Length));
        int leftOut = 0;
        for (int i = n - 1; i >= 0 && total > budgetBytes; i--)
        {
            if (jpegs[i] is not byte[] j) continue;
            total -= Base64Length(j.Length);
            jpegs[i] = null;
            leftOut++;
        }
        if (share == 0) leftOut = n - unreadable;
        return new Result(jpegs, unreadable, leftOut, largest);
    }

    /// <summary>(side, quality) pairs from the largest to the smallest thumbnail.</summary>
    private static List<(int Side, int Quality)> Ladder(int maxSide, int quality)
    {
        var result = new List<(int, int)>();
        foreach (double f in new[] { 1.0, 0.75, 0.5, 0.375, 0.25, 0.1875, 0.125 })
        {
            int side = Math.Max(16, (int)(maxSide * f));
            int q = Math.Clamp(quality - 5 * result.Count, Math.Min(quality, 40), 100);
            if (result.Count == 0 || result[^1].Item1 != side) result.Add((side, q));
        }
        return result;
    }

    private static byte[] Encode(SKBitmap bitmap, int maxSide, int quality, out int side)
    {
        double scale = Math.Min(1.0, (double)maxSide / Math.Max(bitmap.Width, bitmap.Height));
        int w = Math.Max(1, (int)Math.Round(bitmap.Width * scale)), h = Math.Max(1, (int)Math.Round(bitmap.Height * scale));
        side = Math.Max(w, h);
        if (w == bitmap.Width && h == bitmap.Height) return EncodeJpeg(bitmap, quality);
        using var resized = bitmap.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear))
            ?? throw new InvalidOperationException("SkiaSharp failed to resize a thumbnail");
        return EncodeJpeg(resized, quality);
    }

    private static byte[] EncodeJpeg(SKBitmap bitmap, int quality)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, quality) ?? throw new InvalidOperationException("SkiaSharp failed to encode a JPEG");
        return data.ToArray();
    }

    private static SKBitmap ToBitmap(RgbImage image)
    {
        image.Validate();
        int n = image.Width * image.Height;
        var rgba = new byte[n * 4];
        var px = image.Pixels;
        for (int i = 0; i < n; i++)
        {
            rgba[4 * i] = px[3 * i]; rgba[4 * i + 1] = px[3 * i + 1]; rgba[4 * i + 2] = px[3 * i + 2]; rgba[4 * i + 3] = 255;
        }
        var bmp = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        return bmp;
    }
}
