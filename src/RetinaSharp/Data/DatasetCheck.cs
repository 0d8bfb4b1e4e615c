// `retina data check`: validation and repair of a detection dataset. The checks follow what torchvision's
// detection references and pycocotools silently assume (boxes with x2 > x1 and y2 > y1 inside the image,
// known categories, unique ids, images that exist and match their declared size); repair clips boxes to
// the image and drops what cannot be used, as detectron2's filter_empty_annotations / clip do.
using System.Globalization;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>The result of <see cref="DatasetCheck.Repair"/>.</summary>
/// <param name="Dataset">The repaired dataset (no problems left that repair can fix).</param>
/// <param name="Changes">One line per change: what was clipped, dropped, renumbered or resized, and where.</param>
public sealed record DatasetRepair(DetectionDataset Dataset, IReadOnlyList<string> Changes);

/// <summary>Lists the problems of a dataset and repairs them.</summary>
public static class DatasetCheck
{
    /// <summary>
    /// Lists every problem: missing or unreadable image, declared size different from the file's, degenerate box
    /// (x2 &lt;= x1, y2 &lt;= y1, NaN), box outside the image, unknown category, duplicate image/annotation/category
    /// ids, annotations of unknown images, a dataset without images. Each names the file, the record, the field and the value.
    /// </summary>
    /// <param name="dataset">The dataset as loaded by <see cref="DetectionDataset.Load"/>.</param>
    /// <param name="decodeImages">True: decode every image fully (finds truncated files; parallel); false: read the headers only.</param>
    /// <returns>The problems, in image order; empty when the dataset is clean.</returns>
    public static IReadOnlyList<DataProblem> Check(DetectionDataset dataset, bool decodeImages = true)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var problems = new List<DataProblem>(dataset.LoadProblems);
        if (dataset.Images.Count == 0)
            problems.Add(new(DataProblemKind.EmptyDataset, dataset.Source, "dataset", "images", "0 images", "the dataset has no images: nothing to train or evaluate on"));
        var probes = ProbeImages(dataset, decodeImages);
        var seenImages = new HashSet<long>();
        var seenAnnotations = new HashSet<long>();
        for (int i = 0; i < dataset.Images.Count; i++)
        {
            var im = dataset.Images[i];
            var src = dataset.ImageSource(i);
            if (!seenImages.Add(im.Id))
                problems.Add(new(DataProblemKind.DuplicateId, src.File, src.Record, "id", Str(im.Id), "another image has the same id"));
            var probe = probes[i];
            if (probe.Error != null)
                problems.Add(new(probe.Missing ? DataProblemKind.MissingImage : DataProblemKind.UnreadableImage, src.File, src.Record,
                    src.ImageField, $"'{im.FilePath}'", probe.Missing ? "image file not found" : $"image cannot be read: {probe.Error}"));
            else if (probe.Width != im.Width || probe.Height != im.Height)
                problems.Add(new(DataProblemKind.SizeMismatch, src.File, src.Record, im.Width != probe.Width ? "width" : "height",
                    $"{im.Width}x{im.Height}", $"declared size {im.Width}x{im.Height} differs from the image file's {probe.Width}x{probe.Height} ('{im.FilePath}')"));

            for (int j = 0; j < im.Boxes.Count; j++)
            {
                var b = im.Boxes[j];
                var bs = dataset.BoxSource(i, j);
                if (!seenAnnotations.Add(b.AnnotationId))
                    problems.Add(new(DataProblemKind.DuplicateId, bs.File, bs.Record, "id", Str(b.AnnotationId), "another annotation has the same id"));
                if (!dataset.Categories.Contains(b.CategoryId))
                    problems.Add(new(DataProblemKind.UnknownCategory, bs.File, bs.Record, bs.CategoryField, Str(b.CategoryId),
                        $"category id is not among the dataset's categories ({string.Join(", ", dataset.Categories.Categories.Select(c => c.Id))})"));
                if (b.IsDegenerate)
                    problems.Add(new(DataProblemKind.DegenerateBox, bs.File, bs.Record, bs.BoxField, AsInFile(b, bs),
                        $"degenerate box ({Why(b)}) in image '{Path.GetFileName(im.FilePath)}'"));
                else if (im.Width > 0 && im.Height > 0 && IsOutside(b, im.Width, im.Height))
                    problems.Add(new(DataProblemKind.BoxOutsideImage, bs.File, bs.Record, bs.BoxField, AsInFile(b, bs),
                        $"box {BoxText(b)} extends beyond the {im.Width}x{im.Height} image '{Path.GetFileName(im.FilePath)}'"));
            }
        }
        return problems;
    }

    /// <summary>
    /// Repairs a dataset: drops images that are missing or unreadable and later images with a duplicate id, takes
    /// the size of the image file where the declared one differs, drops boxes of unknown categories, clips boxes to
    /// the image, drops boxes that are degenerate (before or after clipping), gives duplicate annotation ids new
    /// unique ids. Boxes left out at load (unknown image id or class) stay out. Every change is listed.
    /// </summary>
    /// <param name="dataset">The dataset.</param>
    /// <param name="decodeImages">As for <see cref="Check"/>.</param>
    public static DatasetRepair Repair(DetectionDataset dataset, bool decodeImages = true)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var changes = new List<string>();
        foreach (var p in dataset.LoadProblems)
            changes.Add($"{p.File}: {p.Record}: left out ({p.Message.Split(';')[0]}: {p.Field} = {p.Value})");
        var probes = ProbeImages(dataset, decodeImages);
        var images = new List<DetectionImage>();
        var imageSources = new List<DataSource>();
        var boxSources = new List<DataSource[]>();
        var seenImages = new HashSet<long>();
        var annotationIds = new HashSet<long>();
        long nextId = dataset.Images.SelectMany(im => im.Boxes).Select(b => b.AnnotationId).DefaultIfEmpty(0).Max() + 1;
        for (int i = 0; i < dataset.Images.Count; i++)
        {
            var im = dataset.Images[i];
            var src = dataset.ImageSource(i);
            string where = $"{src.File}: {src.Record}";
            if (probes[i].Error != null)
            {
                changes.Add($"{where}: dropped the image ({(probes[i].Missing ? "file not found" : "unreadable")}: '{im.FilePath}'){ItsBoxes(im.Boxes.Count)}");
                continue;
            }
            if (!seenImages.Add(im.Id))
            {
                changes.Add($"{where}: dropped the image (duplicate image id {im.Id}){ItsBoxes(im.Boxes.Count)}");
                continue;
            }
            int w = im.Width, h = im.Height;
            if (probes[i].Width != w || probes[i].Height != h)
            {
                changes.Add($"{where}: size {w}x{h} replaced by the file's {probes[i].Width}x{probes[i].Height}");
                (w, h) = (probes[i].Width, probes[i].Height);
            }
            var boxes = new List<DetectionBox>();
            var sources = new List<DataSource>();
            for (int j = 0; j < im.Boxes.Count; j++)
            {
                var b = im.Boxes[j];
                var bs = dataset.BoxSource(i, j);
                string bwhere = $"{bs.File}: {bs.Record}";
                if (!dataset.Categories.Contains(b.CategoryId))
                {
                    changes.Add($"{bwhere}: dropped the box (unknown category id {b.CategoryId})");
                    continue;
                }
                if (b.IsDegenerate)
                {
                    changes.Add($"{bwhere}: dropped the degenerate box {BoxText(b)}");
                    continue;
                }
                if (IsOutside(b, w, h))
                {
                    var c = b with { X1 = Math.Clamp(b.X1, 0, w), Y1 = Math.Clamp(b.Y1, 0, h), X2 = Math.Clamp(b.X2, 0, w), Y2 = Math.Clamp(b.Y2, 0, h) };
                    if (c.IsDegenerate)
                    {
                        changes.Add($"{bwhere}: dropped the box {BoxText(b)}: nothing of it lies inside the {w}x{h} image");
                        continue;
                    }
                    changes.Add($"{bwhere}: clipped the box {BoxText(b)} to {BoxText(c)} (image {w}x{h})");
                    b = c;
                }
                if (!annotationIds.Add(b.AnnotationId))
                {
                    changes.Add($"{bwhere}: duplicate annotation id {b.AnnotationId} renumbered to {nextId}");
                    b = b with { AnnotationId = nextId };
                    annotationIds.Add(nextId++);
                }
                boxes.Add(b);
                sources.Add(b.AnnotationId == im.Boxes[j].AnnotationId ? bs : bs with { Record = $"annotation id {b.AnnotationId}" });
            }
            images.Add(im with { Width = w, Height = h, Boxes = boxes });
            imageSources.Add(src);
            boxSources.Add(sources.ToArray());
        }
        return new DatasetRepair(dataset.With(images, imageSources.ToArray(), boxSources.ToArray()), changes);
    }

    private readonly record struct ImageProbe(int Width, int Height, string? Error, bool Missing);

    private static ImageProbe[] ProbeImages(DetectionDataset dataset, bool decode)
    {
        var probes = new ImageProbe[dataset.Images.Count];
        Parallel.For(0, probes.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
        {
            string path = dataset.Images[i].FilePath;
            if (!File.Exists(path)) { probes[i] = new ImageProbe(0, 0, "image file not found", true); return; }
            try
            {
                if (decode)
                {
                    var img = ImageIO.Load(path);
                    probes[i] = new ImageProbe(img.Width, img.Height, null, false);
                }
                else
                {
                    var (w, h) = ImageIO.ReadSize(path);
                    probes[i] = new ImageProbe(w, h, null, false);
                }
            }
            catch (DataFormatException e) { probes[i] = new ImageProbe(0, 0, e.Problem, false); }
        });
        return probes;
    }

    private static bool IsOutside(DetectionBox b, int width, int height) =>
        b.X1 < 0 || b.Y1 < 0 || b.X2 > width || b.Y2 > height;

    private static string Why(DetectionBox b) =>
        !float.IsFinite(b.X1) || !float.IsFinite(b.Y1) || !float.IsFinite(b.X2) || !float.IsFinite(b.Y2) ? "a coordinate is not a finite number"
        : b.X2 <= b.X1 ? "x2 <= x1" : "y2 <= y1";

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string F(float v) => v.ToString("G7", CultureInfo.InvariantCulture);

    // The box in the notation of its file, so that the user finds the value they wrote.
    private static string AsInFile(DetectionBox b, DataSource s) => s.BoxField switch
    {
        "bbox" => $"[{F(b.X1)}, {F(b.Y1)}, {F(b.X2 - b.X1)}, {F(b.Y2 - b.Y1)}]",
        "bndbox" => $"[xmin {F(b.X1 + 1)}, ymin {F(b.Y1 + 1)}, xmax {F(b.X2)}, ymax {F(b.Y2)}]",
        _ => $"{F(b.X1)},{F(b.Y1)},{F(b.X2)},{F(b.Y2)}",
    };

    /// <summary>"[x1, y1, x2, y2]" of a box.</summary>
    internal static string BoxText(DetectionBox b) => $"[x1 {F(b.X1)}, y1 {F(b.Y1)}, x2 {F(b.X2)}, y2 {F(b.Y2)}]";

    // " and its box", " and its 3 boxes", "" for an image without boxes.
    private static string ItsBoxes(int count) => count switch { 0 => "", 1 => " and its box", _ => $" and its {count} boxes" };
}
