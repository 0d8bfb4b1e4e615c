// Drawing detections for people to look at (SkiaSharp): boxes in a readable colour per class with
// "name score" labels, one image or a grid of images — what torchvision.utils.draw_bounding_boxes and
// detectron2's Visualizer produce for a quick visual check.
using System.Runtime.InteropServices;
using RetinaSharp.Data;
using RetinaSharp.IO;
using SkiaSharp;

namespace RetinaSharp.Visualization;

/// <summary>One box to draw, in pixels of the image it belongs to (XYXY).</summary>
/// <param name="X1">Left edge.</param>
/// <param name="Y1">Top edge.</param>
/// <param name="X2">Right edge.</param>
/// <param name="Y2">Bottom edge.</param>
/// <param name="ClassIndex">Contiguous class index (selects the colour).</param>
/// <param name="Label">The text drawn above the box (for example "Sneaker 0.93").</param>
public sealed record DrawnBox(float X1, float Y1, float X2, float Y2, int ClassIndex, string Label);

/// <summary>Draws boxes on images and tiles images into a grid PNG.</summary>
public static class DetectionDrawing
{
    /// <summary>Ten distinct colours readable on light and dark backgrounds (Tableau 10), cycled by class index.</summary>
    public static IReadOnlyList<SKColor> Palette { get; } =
    [
        new(0x1f, 0x77, 0xb4), new(0xff, 0x7f, 0x0e), new(0x2c, 0xa0, 0x2c), new(0xd6, 0x27, 0x28), new(0x94, 0x67, 0xbd),
        new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x17, 0xbe, 0xcf), new(0xbc, 0xbd, 0x22), new(0x7f, 0x7f, 0x7f),
    ];

    /// <summary>The colour of class <paramref name="classIndex"/>.</summary>
    public static SKColor ColorOf(int classIndex) => Palette[((classIndex % Palette.Count) + Palette.Count) % Palette.Count];

    /// <summary>Renders <paramref name="image"/> scaled by <paramref name="scale"/> with <paramref name="boxes"/> drawn on it.</summary>
    /// <param name="image">The RGB image.</param>
    /// <param name="boxes">Boxes in the image's pixels.</param>
    /// <param name="scale">Magnification (&gt; 0) so small images stay readable.</param>
    /// <returns>A new bitmap the caller disposes.</returns>
    /// <exception cref="ArgumentException"><paramref name="scale"/> is not positive.</exception>
    public static SKBitmap Render(RgbImage image, IEnumerable<DrawnBox> boxes, float scale = 1)
    {
        if (!(scale > 0)) throw new ArgumentException($"The scale must be positive; got {scale}.", nameof(scale));
        using var src = ToBitmap(image);
        int w = Math.Max(1, (int)Math.Round(image.Width * scale)), h = Math.Max(1, (int)Math.Round(image.Height * scale));
        var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bmp);
        using (var srcImage = SKImage.FromBitmap(src))
            canvas.DrawImage(srcImage, new SKRect(0, 0, w, h), new SKSamplingOptions(SKFilterMode.Nearest));
        DrawBoxes(canvas, boxes, scale, 0, 0);
        return bmp;
    }

    /// <summary>
    /// Tiles images with their boxes into a grid (row-major, <paramref name="columns"/> per row, 4-pixel gaps) and
    /// writes it to <paramref name="path"/> as PNG, atomically.
    /// </summary>
    /// <param name="path">The PNG file.</param>
    /// <param name="cells">The images with their boxes (in each image's pixels).</param>
    /// <param name="columns">Images per row (&gt; 0).</param>
    /// <param name="scale">Magnification of each image.</param>
    /// <exception cref="ArgumentException">No cells, or <paramref name="columns"/> not positive.</exception>
    public static void WriteGrid(string path, IReadOnlyList<(RgbImage Image, IReadOnlyList<DrawnBox> Boxes)> cells, int columns = 4, float scale = 2)
    {
        if (cells.Count == 0) throw new ArgumentException("There are no images to draw.", nameof(cells));
        if (columns <= 0) throw new ArgumentException($"columns must be positive; got {columns}.", nameof(columns));
        const int gap = 4;
        int cellW = (int)Math.Ceiling(cells.Max(c => c.Image.Width) * scale);
        int cellH = (int)Math.Ceiling(cells.Max(c => c.Image.Height) * scale);
        int cols = Math.Min(columns, cells.Count), rows = (cells.Count + columns - 1) / columns;
        using var grid = new SKBitmap(new SKImageInfo(cols * cellW + (cols + 1) * gap, rows * cellH + (rows + 1) * gap, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(grid))
        {
            canvas.Clear(SKColors.White);
            for (int i = 0; i < cells.Count; i++)
            {
                using var cell = Render(cells[i].Image, cells[i].Boxes, scale);
                canvas.DrawBitmap(cell, gap + (i % columns) * (cellW + gap), gap + (i / columns) * (cellH + gap));
            }
        }
        AtomicFile.WriteAllBytes(path, EncodePng(grid));
    }

    /// <summary>PNG bytes of <paramref name="bitmap"/>.</summary>
    public static byte[] EncodePng(SKBitmap bitmap)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static void DrawBoxes(SKCanvas canvas, IEnumerable<DrawnBox> boxes, float scale, float dx, float dy)
    {
        using var stroke = new SKPaint { Style = SKPaintStyle.Stroke, StrokeWidth = 2, IsAntialias = true };
        using var fill = new SKPaint { Style = SKPaintStyle.Fill, IsAntialias = true };
        using var text = new SKPaint { Color = SKColors.White, IsAntialias = true };
        using var font = new SKFont(SKTypeface.Default, 11);
        foreach (var b in boxes)
        {
            var color = ColorOf(b.ClassIndex);
            var rect = new SKRect(dx + b.X1 * scale, dy + b.Y1 * scale, dx + b.X2 * scale, dy + b.Y2 * scale);
            stroke.Color = color;
            canvas.DrawRect(rect, stroke);
            if (b.Label.Length == 0) continue;
            float tw = font.MeasureText(b.Label);
            float th = font.Size + 3;
            float ty = rect.Top - th >= 0 ? rect.Top - th : rect.Top;
            fill.Color = color.WithAlpha(220);
            canvas.DrawRect(new SKRect(rect.Left, ty, rect.Left + tw + 4, ty + th), fill);
            canvas.DrawText(b.Label, rect.Left + 2, ty + font.Size, SKTextAlign.Left, font, text);
        }
    }

    private static SKBitmap ToBitmap(RgbImage image)
    {
        image.Validate();
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Width * image.Height; i++, j += 3)
        {
            rgba[4 * i] = image.Pixels[j];
            rgba[4 * i + 1] = image.Pixels[j + 1];
            rgba[4 * i + 2] = image.Pixels[j + 2];
            rgba[4 * i + 3] = 255;
        }
        var bmp = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        return bmp;
    }
}
