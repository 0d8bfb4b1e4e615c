// The HTML evaluation report: one self-contained file (no server, no network) with the 12 COCO numbers, per-class AP/AR,
// precision-recall curves from the evaluator's arrays, an image browser marking every detection's error kind and every
// missed object at a chosen IoU and score threshold, a class confusion table and the anchor coverage. The numbers come
// from one CocoEvaluator pass (EvaluateWithMatches) and the error kinds from its matching (DetectionErrors).
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.IO;

namespace RetinaSharp.Reporting;

/// <summary>
/// A COCO evaluation with its error analysis, written as one HTML page (<see cref="FileName"/>). The page embeds its data
/// as JSON (<c>&lt;script type="application/json" id="report-data"&gt;</c>) and the images as reduced JPEG thumbnails.
/// </summary>
public sealed class EvaluationReport
{
    /// <summary>The report's file name in an output folder.</summary>
    public const string FileName = "report.html";

    /// <summary>The letter of each <see cref="DetectionErrorKind"/> in the page's data (index = the kind's value).</summary>
    public const string KindLetters = "NTIDCLB";

    private EvaluationReport(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections, CocoEvaluation evaluation, DetectionErrors errors)
    {
        GroundTruth = groundTruth;
        Detections = detections;
        Evaluation = evaluation;
        Errors = errors;
    }

    /// <summary>The ground truth evaluated against.</summary>
    public CocoInstances GroundTruth { get; }

    /// <summary>The detections evaluated.</summary>
    public IReadOnlyList<CocoResult> Detections { get; }

    /// <summary>The COCO evaluation (the numbers of the report).</summary>
    public CocoEvaluation Evaluation { get; }

    /// <summary>The error kind of every detection, from the evaluation's matching.</summary>
    public DetectionErrors Errors { get; }

    /// <summary>Evaluates <paramref name="detections"/> against <paramref name="groundTruth"/> once
    /// (<see cref="CocoEvaluator.EvaluateWithMatches"/>) and classifies the errors from that matching.</summary>
    /// <param name="groundTruth">The COCO instances.</param>
    /// <param name="detections">XYWH pixels, original category ids.</param>
    /// <param name="detectionsSource">The detections' file, for error messages.</param>
    /// <exception cref="DataFormatException">As <see cref="CocoEvaluator.Evaluate"/>.</exception>
    public static EvaluationReport Evaluate(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections, string detectionsSource = "detections")
    {
        var (evaluation, matches) = CocoEvaluator.EvaluateWithMatches(groundTruth, detections, detectionsSource);
        return new EvaluationReport(groundTruth, detections, evaluation, DetectionErrors.Classify(groundTruth, detections, matches));
    }

    /// <summary>
    /// Image files of COCO image records as <see cref="DetectionDataset.Load"/> finds them: an absolute
    /// <c>file_name</c> as is, else relative to the instances file's folder, then to its <c>images/</c> subfolder; null
    /// when no such file exists.
    /// </summary>
    /// <param name="instancesPath">The COCO instances json.</param>
    public static Func<CocoImage, string?> ImageFilesBeside(string instancesPath)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(instancesPath))!;
        return image =>
        {
            foreach (var candidate in new[] { Path.Combine(dir, image.FileName), Path.Combine(dir, "images", image.FileName) })
                if (File.Exists(candidate)) return Path.GetFullPath(candidate);
            return null;
        };
    }

    /// <summary>
    /// Writes the report to <paramref name="path"/> atomically (temporary file + rename).
    /// </summary>
    /// <param name="path">The HTML file.</param>
    /// <param name="imageFile">The file of an image record (null: drawn on a grey background). Default: the record's
    /// <c>file_name</c> when it is an existing file (as <see cref="DetectionDataset.ToCoco"/> writes them).</param>
    /// <param name="anchors">The anchor coverage of the model, or null when the model's anchors are not known.</param>
    /// <param name="options">Title and thumbnail budget.</param>
    /// <param name="progress">Called with (images done, total) while the thumbnails are made.</param>
    /// <returns>What was embedded: thumbnails made, unreadable and left out.</returns>
    /// <exception cref="IOException">The file cannot be written.</exception>
    /// <exception cref="ArgumentException"><paramref name="anchors"/> was computed for other ground truth.</exception>
    public ThumbnailSummary Write(string path, Func<CocoImage, string?>? imageFile = null, AnchorCoverage? anchors = null,
        EvaluationReportOptions? options = null, Action<int, int>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new EvaluationReportOptions();
        if (anchors != null && anchors.AnnotationCount != GroundTruth.Annotations.Count)
            throw new ArgumentException($"the anchor coverage has {anchors.AnnotationCount} annotations but the ground truth has {GroundTruth.Annotations.Count}", nameof(anchors));
        imageFile ??= image => File.Exists(image.FileName) ? image.FileName : null;
        var images = ImagesById();
        var thumbs = ReportThumbnails.Make(images.Select(imageFile).ToList(), options.ThumbnailBudgetBytes, Math.Max(16, options.ThumbnailMaxSide),
            Math.Clamp(options.JpegQuality, 1, 100), progress);
        var (head, tail) = Template();
        AtomicFile.Write(path, stream =>
        {
            stream.Write(Encoding.UTF8.GetBytes(head.Replace("{{TITLE}}", System.Net.WebUtility.HtmlEncode(options.Title))));
            WriteAscii(stream, "<script type=\"application/json\" id=\"report-data\">");
            using (var w = new Utf8JsonWriter(stream))
                WriteData(w, images, thumbs, anchors, options);
            WriteAscii(stream, "</script>\n");
            for (int i = 0; i < images.Count; i++)
            {
                if (thumbs.Jpegs[i] is not byte[] jpeg) continue;
                WriteAscii(stream, $"<script type=\"text/plain\" id=\"thumb-{i.ToString(CultureInfo.InvariantCulture)}\">");
                stream.Write(Encoding.ASCII.GetBytes(Convert.ToBase64String(jpeg)));
                WriteAscii(stream, "</script>\n");
            }
            stream.Write(Encoding.UTF8.GetBytes(tail));
        });
        return new ThumbnailSummary(images.Count, thumbs.Jpegs.Count(j => j != null), thumbs.Unreadable, thumbs.LeftOut, thumbs.EmbeddedBytes);
    }

    /// <summary>What a report embeds of the images.</summary>
    /// <param name="Images">Images in the report.</param>
    /// <param name="Embedded">Images with a thumbnail.</param>
    /// <param name="Unreadable">Images whose file was missing or not decodable (drawn on grey).</param>
    /// <param name="LeftOut">Readable images left out to keep within the budget (drawn on grey).</param>
    /// <param name="Bytes">Bytes of the embedded thumbnails (base64).</param>
    public sealed record ThumbnailSummary(int Images, int Embedded, int Unreadable, int LeftOut, long Bytes);

    private List<CocoImage> ImagesById()
    {
        var byId = new Dictionary<long, CocoImage>();
        foreach (var im in GroundTruth.Images) byId.TryAdd(im.Id, im);
        return Evaluation.ImageIds.Select(id => byId[id]).ToList();
    }

    private static void WriteAscii(Stream s, string text) => s.Write(Encoding.ASCII.GetBytes(text));

    private static (string Head, string Tail) Template()
    {
        var assembly = typeof(EvaluationReport).Assembly;
        using var stream = assembly.GetManifestResourceStream("RetinaSharp.Reporting.report.html")
            ?? throw new InvalidOperationException("the report template is missing from the assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string html = reader.ReadToEnd();
        const string marker = "<!--REPORT-DATA-->";
        int at = html.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException("the report template has no data marker");
        return (html[..at], html[(at + marker.Length)..]);
    }

    private void WriteData(Utf8JsonWriter w, List<CocoImage> images, ReportThumbnails.Result thumbs, AnchorCoverage? anchors, EvaluationReportOptions options)
    {
        var e = Evaluation;
        int numT = e.IouThresholds.Count, numK = e.CategoryIds.Count;
        var categoryIndex = new Dictionary<long, int>();
        for (int k = 0; k < numK; k++) categoryIndex[e.CategoryIds[k]] = k;
        var matches = Errors.Matches;

        w.WriteStartObject();
        w.WriteNumber("version", 1);
        w.WriteString("title", options.Title);
        w.WriteString("source", options.Source);
        w.WriteString("created", DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture));
        w.WriteString("kindLetters", KindLetters);
        w.WriteNumber("backgroundIou", DetectionErrors.BackgroundIou);
        Numbers(w, "iou", e.IouThresholds, 2);
        Numbers(w, "recall", e.RecallThresholds, 2);
        Strings(w, "statNames", CocoStats.Names);
        Numbers(w, "stats", e.Stats.ToArray(), 4);

        w.WriteStartArray("categories");
        for (int k = 0; k < numK; k++)
        {
            w.WriteStartObject();
            w.WriteNumber("id", e.CategoryIds[k]);
            w.WriteString("name", e.CategoryNames[k]);
            w.WriteNumber("objects", e.PerCategory[k].GroundTruthCount);
            Numbers(w, "stats", ClassStats(k), 4);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        // Precision at the 101 recall points, area all, 100 detections: [T][R] for the mean over classes, then per class.
        w.WriteStartArray("prMean");
        for (int t = 0; t < numT; t++) Numbers(w, null, e.PrecisionCurve(t), 4);
        w.WriteEndArray();
        w.WriteStartArray("prClass");
        for (int k = 0; k < numK; k++)
        {
            w.WriteStartArray();
            for (int t = 0; t < numT; t++) Numbers(w, null, e.PrecisionCurve(t, k), 4);
            w.WriteEndArray();
        }
        w.WriteEndArray();

        // The evaluator's own counts, for the page to show beside its own sums.
        w.WriteStartArray("evaluatorCounts");
        for (int t = 0; t < numT; t++)
        {
            var c = e.Counts(t);
            w.WriteStartArray();
            w.WriteNumberValue(c.TruePositives); w.WriteNumberValue(c.FalsePositives); w.WriteNumberValue(c.FalseNegatives);
            w.WriteEndArray();
        }
        w.WriteEndArray();

        int notEvaluated = 0, crowd = 0;
        for (int d = 0; d < Detections.Count; d++)
            if (Errors.Kind(d, 0) == DetectionErrorKind.NotEvaluated) notEvaluated++;
        foreach (var a in GroundTruth.Annotations) if (a.IsCrowd) crowd++;
        w.WriteStartObject("totals");
        w.WriteNumber("images", images.Count);
        w.WriteNumber("annotations", GroundTruth.Annotations.Count);
        w.WriteNumber("crowd", crowd);
        w.WriteNumber("detections", Detections.Count);
        w.WriteNumber("notEvaluated", notEvaluated);
        w.WriteEndObject();

        w.WriteStartObject("thumbnails");
        w.WriteNumber("embedded", thumbs.Jpegs.Count(j => j != null));
        w.WriteNumber("unreadable", thumbs.Unreadable);
        w.WriteNumber("leftOut", thumbs.LeftOut);
        w.WriteNumber("bytes", thumbs.EmbeddedBytes);
        w.WriteNumber("budget", options.ThumbnailBudgetBytes);
        w.WriteNumber("largestSide", thumbs.LargestSide);
        w.WriteEndObject();

        if (anchors is null) w.WriteNull("anchors");
        else WriteAnchors(w, anchors, categoryIndex, numK);

        // Images: ground truth [x, y, w, h, k, crowd, best anchor IoU or -1, match_t per threshold (detection index in this
        // image or -1)], detections [x, y, w, h, k, score, kind letter per threshold, class of the most-overlapped other object or -1].
        var annotationsByImage = new Dictionary<long, List<int>>();
        for (int a = 0; a < GroundTruth.Annotations.Count; a++)
        {
            var g = GroundTruth.Annotations[a];
            if (!categoryIndex.ContainsKey(g.CategoryId)) continue;
            if (!annotationsByImage.TryGetValue(g.ImageId, out var list)) annotationsByImage[g.ImageId] = list = new List<int>();
            list.Add(a);
        }
        var detectionsByImage = new Dictionary<long, List<int>>();
        for (int d = 0; d < Detections.Count; d++)
        {
            if (Errors.Kind(d, 0) == DetectionErrorKind.NotEvaluated) continue;
            var r = Detections[d];
            if (!detectionsByImage.TryGetValue(r.ImageId, out var list)) detectionsByImage[r.ImageId] = list = new List<int>();
            list.Add(d);
        }
        var kinds = new char[numT];
        w.WriteStartArray("images");
        for (int i = 0; i < images.Count; i++)
        {
            var im = images[i];
            var dets = detectionsByImage.GetValueOrDefault(im.Id) ?? [];
            dets.Sort((x, y) => Detections[y].Score.CompareTo(Detections[x].Score) is int c && c != 0 ? c : x.CompareTo(y));
            var local = new Dictionary<int, int>();
            for (int j = 0; j < dets.Count; j++) local[dets[j]] = j;
            w.WriteStartObject();
            w.WriteNumber("id", im.Id);
            w.WriteString("file", Path.GetFileName(im.FileName));
            w.WriteNumber("w", im.Width);
            w.WriteNumber("h", im.Height);
            w.WriteBoolean("thumb", thumbs.Jpegs[i] != null);
            w.WriteStartArray("g");
            foreach (int a in annotationsByImage.GetValueOrDefault(im.Id) ?? [])
            {
                var g = GroundTruth.Annotations[a];
                w.WriteStartArray();
                Box(w, g.X, g.Y, g.Width, g.Height);
                w.WriteNumberValue(categoryIndex[g.CategoryId]);
                w.WriteNumberValue(matches.IsCounted(a) ? 0 : 1);
                double best = anchors?.BestIou(a) ?? double.NaN;
                w.WriteNumberValue(double.IsNaN(best) ? -1 : Math.Round(best, 3));
                for (int t = 0; t < numT; t++)
                {
                    int d = matches.MatchedDetection(a, t);
                    w.WriteNumberValue(d >= 0 && local.TryGetValue(d, out int j) ? j : -1);
                }
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteStartArray("d");
            foreach (int d in dets)
            {
                var r = Detections[d];
                w.WriteStartArray();
                Box(w, r.X, r.Y, r.Width, r.Height);
                w.WriteNumberValue(categoryIndex[r.CategoryId]);
                w.WriteNumberValue(Math.Round(r.Score, 5));
                for (int t = 0; t < numT; t++) kinds[t] = KindLetters[(int)Errors.Kind(d, t)];
                w.WriteStringValue(kinds);
                int other = Errors.ConfusedAnnotation(d);
                w.WriteNumberValue(other >= 0 ? categoryIndex[GroundTruth.Annotations[other].CategoryId] : -1);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private void WriteAnchors(Utf8JsonWriter w, AnchorCoverage anchors, Dictionary<long, int> categoryIndex, int numK)
    {
        w.WriteStartObject("anchors");
        w.WriteNumber("fgIou", anchors.FgIouThreshold);
        var (covered, total) = anchors.Count();
        w.WriteNumber("covered", covered);
        w.WriteNumber("total", total);
        var anns = GroundTruth.Annotations;
        w.WriteStartArray("perClass");
        for (int k = 0; k < numK; k++)
        {
            var (c, n) = anchors.Count(Enumerable.Range(0, anns.Count).Where(a => categoryIndex.TryGetValue(anns[a].CategoryId, out int ka) && ka == k));
            w.WriteStartArray(); w.WriteNumberValue(c); w.WriteNumberValue(n); w.WriteEndArray();
        }
        w.WriteEndArray();
        // COCO size ranges small, medium, large by the annotation's area.
        w.WriteStartArray("perArea");
        foreach (var range in Evaluation.AreaRanges.Skip(1))
        {
            var (c, n) = anchors.Count(Enumerable.Range(0, anns.Count).Where(a => !range.Excludes(anns[a].Area)));
            w.WriteStartArray(); w.WriteStringValue(range.Label); w.WriteNumberValue(c); w.WriteNumberValue(n); w.WriteEndArray();
        }
        w.WriteEndArray();
        // Histogram of the best anchor IoU in 20 bins of 0.05.
        var histogram = new int[20];
        for (int a = 0; a < anchors.AnnotationCount; a++)
        {
            double v = anchors.BestIou(a);
            if (!double.IsNaN(v)) histogram[Math.Clamp((int)(v * 20), 0, 19)]++;
        }
        w.WriteStartArray("histogram");
        foreach (int h in histogram) w.WriteNumberValue(h);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>The 12 COCO numbers restricted to category k (means of its entries of the precision and recall arrays that are not -1).</summary>
    private double[] ClassStats(int k)
    {
        var e = Evaluation;
        int numT = e.IouThresholds.Count, numR = e.RecallThresholds.Count, last = e.MaxDetections.Count - 1;
        int t50 = IndexOf(e.IouThresholds, 0.5), t75 = IndexOf(e.IouThresholds, 0.75);
        double Ap(int? t, int a)
        {
            double sum = 0; int n = 0;
            for (int tt = t ?? 0; tt < (t + 1 ?? numT); tt++)
                for (int r = 0; r < numR; r++)
                {
                    double v = e.Precision(tt, r, k, a, last);
                    if (v > -1) { sum += v; n++; }
                }
            return n == 0 ? -1 : sum / n;
        }
        double Ar(int a, int m)
        {
            double sum = 0; int n = 0;
            for (int t = 0; t < numT; t++)
            {
                double v = e.Recall(t, k, a, m);
                if (v > -1) { sum += v; n++; }
            }
            return n == 0 ? -1 : sum / n;
        }
        return [Ap(null, 0), t50 < 0 ? -1 : Ap(t50, 0), t75 < 0 ? -1 : Ap(t75, 0), Ap(null, 1), Ap(null, 2), Ap(null, 3),
            Ar(0, 0), Ar(0, 1), Ar(0, last), Ar(1, last), Ar(2, last), Ar(3, last)];
    }

    private static int IndexOf(IReadOnlyList<double> values, double v)
    {
        for (int i = 0; i < values.Count; i++) if (values[i] == v) return i;
        return -1;
    }

    private static void Box(Utf8JsonWriter w, double x, double y, double width, double height)
    {
        w.WriteNumberValue(Math.Round(x, 2)); w.WriteNumberValue(Math.Round(y, 2));
        w.WriteNumberValue(Math.Round(width, 2)); w.WriteNumberValue(Math.Round(height, 2));
    }

    private static void Numbers(Utf8JsonWriter w, string? name, IEnumerable<double> values, int decimals)
    {
        if (name is null) w.WriteStartArray(); else w.WriteStartArray(name);
        foreach (double v in values) w.WriteNumberValue(Math.Round(v, decimals));
        w.WriteEndArray();
    }

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (string v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
