// The result of a COCO bounding-box evaluation: pycocotools' COCOeval.eval["precision"] / ["recall"] arrays,
// COCOeval.stats and the text that COCOeval.summarize() prints, plus per-category AP and a JSON report.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.IO;

namespace RetinaSharp.Evaluation;

/// <summary>
/// What <see cref="CocoEvaluator.Evaluate"/> returns. Indices follow pycocotools: t over <see cref="IouThresholds"/>,
/// r over <see cref="RecallThresholds"/>, k over <see cref="CategoryIds"/> (sorted), a over <see cref="AreaRanges"/>,
/// m over <see cref="MaxDetections"/>.
/// </summary>
public sealed class CocoEvaluation
{
    /// <summary>Array sizes T, R, K, A, M and the C-order index arithmetic of the (T, R, K, A, M) and (T, K, A, M) arrays.</summary>
    internal readonly record struct Shape(int T, int R, int K, int A, int M)
    {
        public int PrecisionIndex(int t, int r, int k, int a, int m) => (((t * R + r) * K + k) * A + a) * M + m;
        public int RecallIndex(int t, int k, int a, int m) => ((t * K + k) * A + a) * M + m;
    }

    private readonly Shape _shape;
    private readonly double[] _precision;
    private readonly double[] _recall;
    private readonly int[] _groundTruthCounts, _truePositives, _falsePositives;

    internal CocoEvaluation(long[] imageIds, long[] categoryIds, string[] categoryNames, int[] groundTruthCounts,
        double[] iouThresholds, double[] recallThresholds, CocoAreaRange[] areaRanges, int[] maxDetections,
        Shape shape, double[] precision, double[] recall, int[] truePositives, int[] falsePositives)
    {
        _groundTruthCounts = groundTruthCounts;
        _truePositives = truePositives;
        _falsePositives = falsePositives;
        ImageIds = imageIds;
        CategoryIds = categoryIds;
        CategoryNames = categoryNames;
        IouThresholds = iouThresholds;
        RecallThresholds = recallThresholds;
        AreaRanges = areaRanges;
        MaxDetections = maxDetections;
        _shape = shape;
        _precision = precision;
        _recall = recall;
        int last = maxDetections.Length - 1;
        int t50 = Array.IndexOf(iouThresholds, 0.5), t75 = Array.IndexOf(iouThresholds, 0.75);
        Stats = new CocoStats(
            MeanPrecision(null, 0, last), MeanPrecision(t50, 0, last), MeanPrecision(t75, 0, last),
            MeanPrecision(null, 1, last), MeanPrecision(null, 2, last), MeanPrecision(null, 3, last),
            MeanRecall(0, 0), MeanRecall(0, 1), MeanRecall(0, last),
            MeanRecall(1, last), MeanRecall(2, last), MeanRecall(3, last));
        var perCategory = new CocoCategoryAp[categoryIds.Length];
        for (int k = 0; k < categoryIds.Length; k++)
            perCategory[k] = new CocoCategoryAp(categoryIds[k], categoryNames[k], groundTruthCounts[k],
                MeanPrecision(null, 0, last, k), MeanPrecision(t50, 0, last, k), MeanPrecision(t75, 0, last, k));
        PerCategory = perCategory;
    }

    /// <summary>The evaluated image ids, ascending (pycocotools <c>params.imgIds</c>).</summary>
    public IReadOnlyList<long> ImageIds { get; }
    /// <summary>The category ids, ascending (pycocotools <c>params.catIds</c>): index k of the arrays.</summary>
    public IReadOnlyList<long> CategoryIds { get; }
    /// <summary>The category names, in <see cref="CategoryIds"/> order.</summary>
    public IReadOnlyList<string> CategoryNames { get; }
    /// <summary>IoU thresholds 0.50:0.05:0.95 (index t).</summary>
    public IReadOnlyList<double> IouThresholds { get; }
    /// <summary>Recall points 0:0.01:1 (index r).</summary>
    public IReadOnlyList<double> RecallThresholds { get; }
    /// <summary>Area ranges all, small, medium, large (index a).</summary>
    public IReadOnlyList<CocoAreaRange> AreaRanges { get; }
    /// <summary>Detections per image 1, 10, 100 (index m).</summary>
    public IReadOnlyList<int> MaxDetections { get; }

    /// <summary>The 12 summary numbers (pycocotools <c>COCOeval.stats</c>).</summary>
    public CocoStats Stats { get; }

    /// <summary>AP per category, in <see cref="CategoryIds"/> order; -1 for a category without ground truth.</summary>
    public IReadOnlyList<CocoCategoryAp> PerCategory { get; }

    /// <summary>The whole precision array, shape (T, R, K, A, M) in C order, -1 where undefined (pycocotools <c>eval["precision"]</c>).</summary>
    public ReadOnlySpan<double> PrecisionArray => _precision;

    /// <summary>The whole recall array, shape (T, K, A, M) in C order, -1 where undefined (pycocotools <c>eval["recall"]</c>).</summary>
    public ReadOnlySpan<double> RecallArray => _recall;

    /// <summary>Interpolated precision at IoU threshold t, recall point r, category k, area range a, limit m; -1 when the
    /// category has no ground truth in that range.</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public double Precision(int t, int r, int k, int a, int m) => _precision[_shape.PrecisionIndex(t, r, k, a, m)];

    /// <summary>Recall reached at IoU threshold t, category k, area range a, limit m; -1 when undefined.</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public double Recall(int t, int k, int a, int m) => _recall[_shape.RecallIndex(t, k, a, m)];

    /// <summary>
    /// True positives, false positives and false negatives at IoU threshold index <paramref name="t"/> for area range "all"
    /// and 100 detections per image, of category index <paramref name="category"/> or summed over all categories: the
    /// counts from which recall (TP / (TP + FN)) and the last point of the precision curve (TP / (TP + FP)) are computed.
    /// </summary>
    /// <param name="t">IoU threshold index (0 = 0.50).</param>
    /// <param name="category">A category index k, or null for the sum.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range.</exception>
    public CocoCounts Counts(int t, int? category = null)
    {
        if ((uint)t >= (uint)_shape.T) throw new ArgumentOutOfRangeException(nameof(t), t, $"IoU threshold indices are 0..{_shape.T - 1}");
        if (category is int c && (uint)c >= (uint)_shape.K) throw new ArgumentOutOfRangeException(nameof(category), c, $"category indices are 0..{_shape.K - 1}");
        int tp = 0, fp = 0, gt = 0;
        for (int k = category ?? 0; k < (category + 1 ?? _shape.K); k++)
        {
            tp += _truePositives[t * _shape.K + k];
            fp += _falsePositives[t * _shape.K + k];
            gt += _groundTruthCounts[k];
        }
        return new CocoCounts(tp, fp, gt - tp);
    }

    /// <summary>
    /// The precision-recall curve at IoU threshold index <paramref name="t"/>: for each of the 101 recall points, the
    /// mean interpolated precision over the categories that have ground truth (or of category index
    /// <paramref name="category"/> alone). -1 at every point when no category has ground truth.
    /// </summary>
    /// <param name="t">IoU threshold index (0 = 0.50, 5 = 0.75).</param>
    /// <param name="category">A category index k, or null for the mean over categories.</param>
    /// <param name="area">Area range index (0 = all).</param>
    /// <param name="maxDetections">Limit index (2 = 100).</param>
    public double[] PrecisionCurve(int t, int? category = null, int area = 0, int maxDetections = 2)
    {
        var curve = new double[_shape.R];
        for (int r = 0; r < _shape.R; r++)
        {
            double sum = 0;
            int n = 0;
            for (int k = category ?? 0; k < (category + 1 ?? _shape.K); k++)
            {
                double v = Precision(t, r, k, area, maxDetections);
                if (v > -1) { sum += v; n++; }
            }
            curve[r] = n == 0 ? -1 : sum / n;
        }
        return curve;
    }

    /// <summary>
    /// The 12 lines that pycocotools' <c>COCOeval.summarize()</c> prints, character for character, each ending in "\n",
    /// e.g. " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.364".
    /// </summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        int last = MaxDetections[^1];
        double[] s = Stats.ToArray();
        Line(sb, true, null, "all", last, s[0]);
        Line(sb, true, 0.5, "all", last, s[1]);
        Line(sb, true, 0.75, "all", last, s[2]);
        Line(sb, true, null, "small", last, s[3]);
        Line(sb, true, null, "medium", last, s[4]);
        Line(sb, true, null, "large", last, s[5]);
        Line(sb, false, null, "all", MaxDetections[0], s[6]);
        Line(sb, false, null, "all", MaxDetections[1], s[7]);
        Line(sb, false, null, "all", last, s[8]);
        Line(sb, false, null, "small", last, s[9]);
        Line(sb, false, null, "medium", last, s[10]);
        Line(sb, false, null, "large", last, s[11]);
        return sb.ToString();
    }

    /// <summary>The name of the metrics file the CLI writes (`retina eval --out`, `retina demo`'s report): <see cref="WriteJson(string, JsonObject?)"/>'s schema.</summary>
    public const string MetricsFileName = "metrics.json";

    /// <summary>
    /// The report as JSON, RetinaSharp's one metrics schema (written by `retina eval --out` and `retina demo` alike):
    /// <c>iou_type</c> ("bbox"), <c>num_images</c>, <c>stats</c> (the 12 COCO numbers by name, <see cref="CocoStats.Names"/>),
    /// <c>per_category</c> (per category: <c>category_id</c>, <c>name</c>, <c>num_ground_truth</c>, <c>AP</c>, <c>AP50</c>,
    /// <c>AP75</c>; -1 where undefined), <c>pr_curves</c> (the mean precision per recall threshold for each IoU threshold)
    /// and, when given, <c>run</c>: what produced the numbers (for the demo: iterations, batch size, wall time).
    /// </summary>
    /// <param name="run">Extra facts about the run, written as the <c>run</c> object; null = no <c>run</c> key.</param>
    public string ToJson(JsonObject? run = null)
    {
        using var stream = new MemoryStream();
        WriteJson(stream, run);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/> atomically (temporary file + rename).</summary>
    /// <param name="path">The file to write (conventionally <see cref="MetricsFileName"/>).</param>
    /// <param name="run">Extra facts about the run, written as the <c>run</c> object; null = no <c>run</c> key.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void WriteJson(string path, JsonObject? run = null) => AtomicFile.Write(path, s => WriteJson(s, run));

    private void WriteJson(Stream stream, JsonObject? run)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("iou_type", "bbox");
        w.WriteNumber("num_images", ImageIds.Count);
        w.WriteStartObject("stats");
        double[] stats = Stats.ToArray();
        for (int i = 0; i < stats.Length; i++) w.WriteNumber(CocoStats.Names[i], stats[i]);
        w.WriteEndObject();
        w.WriteStartArray("per_category");
        foreach (var c in PerCategory)
        {
            w.WriteStartObject();
            w.WriteNumber("category_id", c.CategoryId);
            w.WriteString("name", c.Name);
            w.WriteNumber("num_ground_truth", c.GroundTruthCount);
            w.WriteNumber("AP", c.Ap);
            w.WriteNumber("AP50", c.Ap50);
            w.WriteNumber("AP75", c.Ap75);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("pr_curves");
        w.WriteString("description", "mean interpolated precision over categories with ground truth, area=all, maxDets=100; -1 = undefined");
        w.WriteStartArray("recall");
        foreach (double r in RecallThresholds) w.WriteNumberValue(r);
        w.WriteEndArray();
        w.WriteStartArray("curves");
        for (int t = 0; t < IouThresholds.Count; t++)
        {
            w.WriteStartObject();
            w.WriteNumber("iou", IouThresholds[t]);
            w.WriteStartArray("precision");
            foreach (double p in PrecisionCurve(t)) w.WriteNumberValue(p);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        if (run != null)
        {
            w.WritePropertyName("run");
            run.WriteTo(w);
        }
        w.WriteEndObject();
    }

    // pycocotools: ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
    private void Line(StringBuilder sb, bool ap, double? iou, string area, int maxDets, double value)
    {
        string title = ap ? "Average Precision" : "Average Recall";
        string type = ap ? "(AP)" : "(AR)";
        string iouText = iou is double v ? Fixed(v, 2) : $"{Fixed(IouThresholds[0], 2)}:{Fixed(IouThresholds[^1], 2)}";
        sb.Append(CultureInfo.InvariantCulture, $" {title,-18} {type} @[ IoU={iouText,-9} | area={area,6} | maxDets={maxDets,3} ] = {Fixed(value, 3)}\n");
    }

    /// <summary>Python's '{:0.Nf}' format: the exact binary value rounded to N decimals, exact halves to even.</summary>
    internal static string Fixed(double value, int decimals)
    {
        // .NET rounds the exact value correctly but sends exact halves away from zero; Python sends them to even.
        string exact = value.ToString("F" + (decimals + 30).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        int dot = exact.IndexOf('.');
        string tail = exact[(dot + 1 + decimals)..];
        if (tail[0] == '5' && tail.AsSpan(1).TrimEnd('0').IsEmpty)
        {
            double scaled = value * Math.Pow(10, decimals); // exact enough to find the even neighbour
            double even = Math.Round(scaled, MidpointRounding.ToEven) / Math.Pow(10, decimals);
            return even.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        }
        return value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    private double MeanPrecision(int? t, int a, int m, int? k = null)
    {
        if (t is int ti && ti < 0) return -1; // threshold not in the list: pycocotools' np.where finds nothing
        double sum = 0;
        long n = 0;
        int t0 = t ?? 0, t1 = t + 1 ?? _shape.T;
        int k0 = k ?? 0, k1 = k + 1 ?? _shape.K;
        for (int tt = t0; tt < t1; tt++)
            for (int r = 0; r < _shape.R; r++)
                for (int kk = k0; kk < k1; kk++)
                {
                    double v = _precision[_shape.PrecisionIndex(tt, r, kk, a, m)];
                    if (v > -1) { sum += v; n++; }
                }
        return n == 0 ? -1 : sum / n;
    }

    private double MeanRecall(int a, int m)
    {
        double sum = 0;
        long n = 0;
        for (int t = 0; t < _shape.T; t++)
            for (int k = 0; k < _shape.K; k++)
            {
                double v = _recall[_shape.RecallIndex(t, k, a, m)];
                if (v > -1) { sum += v; n++; }
            }
        return n == 0 ? -1 : sum / n;
    }
}
