// The objects found in one image, with the image they were found in: drawn with the library's one drawing code
// (Visualization.DetectionDrawing) and written with its one COCO results writer (Data.CocoJson.WriteResults).
using System.Collections;
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.IO;
using RetinaSharp.Visualization;
using SkiaSharp;

namespace RetinaSharp.Inference;

/// <summary>The objects <see cref="Detector"/> found in one image, by decreasing score.</summary>
public sealed class DetectionResult : IReadOnlyList<DetectedObject>
{
    private readonly IReadOnlyList<DetectedObject> _objects;

    /// <summary>Wraps detections of <paramref name="image"/>.</summary>
    /// <param name="objects">The detections, by decreasing score.</param>
    /// <param name="image">The image they were found in (its pixels are what <see cref="Draw(double, float)"/> draws on).</param>
    /// <param name="source">The image file, or null for a stream or bitmap.</param>
    public DetectionResult(IReadOnlyList<DetectedObject> objects, RgbImage image, string? source = null)
    {
        _objects = objects ?? throw new ArgumentNullException(nameof(objects));
        Image = image ?? throw new ArgumentNullException(nameof(image));
        Source = source;
    }

    /// <summary>The image file the detections came from, or null (a stream or a bitmap).</summary>
    public string? Source { get; }

    /// <summary>The decoded input image (EXIF orientation applied: the boxes are in its pixels).</summary>
    public RgbImage Image { get; }

    /// <summary>Width of the input image, pixels.</summary>
    public int Width => Image.Width;

    /// <summary>Height of the input image, pixels.</summary>
    public int Height => Image.Height;

    /// <inheritdoc/>
    public int Count => _objects.Count;

    /// <inheritdoc/>
    public DetectedObject this[int index] => _objects[index];

    /// <inheritdoc/>
    public IEnumerator<DetectedObject> GetEnumerator() => _objects.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A copy of the image with the boxes scoring at least <paramref name="minScore"/> drawn, labelled "name score"
    /// in a colour per class.</summary>
    /// <param name="minScore">Draw only detections scoring at least this [default 0.5].</param>
    /// <param name="scale">Magnification (&gt; 0) for small images [default 1].</param>
    /// <returns>A new bitmap the caller disposes.</returns>
    /// <exception cref="ArgumentException"><paramref name="scale"/> is not positive.</exception>
    public SKBitmap Draw(double minScore = 0.5, float scale = 1) =>
        DetectionDrawing.Render(Image, _objects.Where(o => o.Score >= minScore).Select(o => new DrawnBox(o.Box.X1, o.Box.Y1, o.Box.X2, o.Box.Y2,
            o.ClassIndex, $"{o.ClassName} {o.Score.ToString("0.00", CultureInfo.InvariantCulture)}")), scale);

    /// <summary>Writes <see cref="Draw(double, float)"/> as a PNG file, atomically.</summary>
    /// <param name="pngPath">The PNG file to write (its folder is created when missing).</param>
    /// <param name="minScore">Draw only detections scoring at least this [default 0.5].</param>
    /// <exception cref="IOException">The destination cannot be written.</exception>
    public void Draw(string pngPath, double minScore = 0.5)
    {
        ArgumentException.ThrowIfNullOrEmpty(pngPath);
        using var bitmap = Draw(minScore);
        AtomicFile.WriteAllBytes(pngPath, DetectionDrawing.EncodePng(bitmap));
    }

    /// <summary>The detections as COCO results records (XYWH pixels, <see cref="DetectedObject.ClassId"/> as category id).</summary>
    /// <param name="imageId">The COCO image id to give them [default 1].</param>
    public IEnumerable<CocoResult> ToCocoResults(long imageId = 1) =>
        _objects.Select(o => new CocoResult(imageId, o.ClassId, o.Box.X1, o.Box.Y1, o.Box.Width, o.Box.Height, o.Score));

    /// <summary>Writes the detections as a COCO results JSON file (<c>[{image_id, category_id, bbox: [x, y, w, h], score}]</c>,
    /// what <c>retina eval --dt</c> and pycocotools' <c>loadRes</c> read), atomically.</summary>
    /// <param name="path">The JSON file to write.</param>
    /// <param name="imageId">The image id of the records [default 1].</param>
    public void WriteCocoJson(string path, long imageId = 1) => WriteCocoJson(path, [this], [imageId]);

    /// <summary>Writes the detections of several images as one COCO results JSON file, atomically; each record also names
    /// its image file (<c>file_name</c>) when the result has a <see cref="Source"/>.</summary>
    /// <param name="path">The JSON file to write.</param>
    /// <param name="results">The images' results.</param>
    /// <param name="imageIds">One image id per result [default: 1..N in order].</param>
    /// <exception cref="ArgumentException"><paramref name="imageIds"/> has another count than <paramref name="results"/>, or repeats an id.</exception>
    public static void WriteCocoJson(string path, IReadOnlyList<DetectionResult> results, IReadOnlyList<long>? imageIds = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(results);
        var ids = imageIds ?? Enumerable.Range(1, results.Count).Select(i => (long)i).ToList();
        if (ids.Count != results.Count)
            throw new ArgumentException($"{ids.Count} image ids for {results.Count} results; give one id per result", nameof(imageIds));
        if (ids.Distinct().Count() != ids.Count)
            throw new ArgumentException("image ids repeat; give each result its own id", nameof(imageIds));
        var source = ids.Select((id, i) => (id, results[i].Source)).ToDictionary(x => x.id, x => x.Source);
        bool named = results.Any(r => r.Source != null);
        CocoJson.WriteResults(path, results.SelectMany((r, i) => r.ToCocoResults(ids[i])), named ? id => source[id] ?? "" : null);
    }

    /// <summary>One line per detection ("name 0.93 at (x1, y1, x2, y2)"), or "no objects".</summary>
    public override string ToString() => Count == 0 ? "no objects" : string.Join(Environment.NewLine, _objects);
}
