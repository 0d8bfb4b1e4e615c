// COCO bounding-box evaluation with the semantics of pycocotools' COCOeval for iouType "bbox"
// (cocoapi PythonAPI/pycocotools/cocoeval.py: evaluate, evaluateImg, accumulate; the box IoU of
// common/maskApi.c bbIou). Written from that documented behaviour, not from its code.
// One deliberate difference: pycocotools marks a match by storing the annotation id and reads 0 as "no
// match", so a ground-truth annotation with id 0 is never counted as found; here matches are flags and
// every id value works. Results are otherwise identical (checked against pycocotools by the fixtures in
// tests/RetinaSharp.Tests/Fixtures/eval/, made by scripts/make_eval_fixtures.py).
using System.Globalization;
using System.Runtime.InteropServices;
using RetinaSharp.Data;
using RetinaSharp.IO;

namespace RetinaSharp.Evaluation;

/// <summary>
/// Computes COCO detection metrics (AP, AP50, AP75, APs/m/l, AR1/10/100, ARs/m/l) for bounding boxes, exactly as
/// pycocotools' <c>COCOeval(gt, dt, "bbox")</c> followed by <c>evaluate()</c>, <c>accumulate()</c>, <c>summarize()</c>.
/// </summary>
/// <remarks>
/// The rules reproduced: IoU thresholds 0.50:0.05:0.95 and recall thresholds 0:0.01:1 computed like
/// <c>numpy.linspace</c>; per image and category the detections are sorted by decreasing score (stable: ties keep
/// file order) and only the first 100 are kept; ground truth is matched greedily, highest-scored detection first,
/// to the unmatched ground truth of highest IoU (the last one wins a tie), non-ignored ground truth before ignored;
/// crowd regions (<c>iscrowd</c>) can be matched many times, use intersection / detection area as IoU, and are
/// ignored; ground truth outside the area range is ignored, as is a detection matched to ignored ground truth or
/// unmatched and outside the range; precision is made monotone (the envelope) and read at 101 recall points with a
/// left binary search; categories (or area ranges) without non-ignored ground truth stay -1 and are left out of
/// the means. Areas are the ground-truth "area" field and w*h for detections. Work is spread over categories.
/// </remarks>
public static class CocoEvaluator
{
    /// <summary>Detections kept per image and category, the last of <see cref="MaxDetections"/> (pycocotools <c>maxDets[-1]</c>).</summary>
    public const int MaxDetectionsPerImage = 100;

    /// <summary>The 10 IoU thresholds 0.50, 0.55, ..., 0.95, bit for bit as <c>np.linspace(.5, 0.95, 10)</c>.</summary>
    public static IReadOnlyList<double> IouThresholds { get; } = Linspace(0.5, 0.95, 10);

    /// <summary>The 101 recall points 0.00, 0.01, ..., 1.00, bit for bit as <c>np.linspace(.0, 1.00, 101)</c>.</summary>
    public static IReadOnlyList<double> RecallThresholds { get; } = Linspace(0.0, 1.0, 101);

    /// <summary>The detection limits per image: 1, 10, 100.</summary>
    public static IReadOnlyList<int> MaxDetections { get; } = [1, 10, MaxDetectionsPerImage];

    /// <summary>The area ranges all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10], square pixels.</summary>
    public static IReadOnlyList<CocoAreaRange> AreaRanges { get; } =
    [
        new("all", 0, 1e10), new("small", 0, 32 * 32), new("medium", 32 * 32, 96 * 96), new("large", 96 * 96, 1e10),
    ];

    /// <summary>Evaluates <paramref name="detections"/> against <paramref name="groundTruth"/>.</summary>
    /// <param name="groundTruth">The COCO instances: every image id is evaluated (sorted ascending) and every category id
    /// (sorted ascending). Annotations whose image or category is not listed are left out, as pycocotools does.</param>
    /// <param name="detections">Detections with XYWH boxes in pixels and original category ids, in file order (the
    /// order breaks score ties).</param>
    /// <param name="detectionsSource">Name of the detections' file, used in error messages.</param>
    /// <returns>The precision/recall arrays, the 12 summary numbers and per-category AP.</returns>
    /// <exception cref="DataFormatException">A detection names an image id or a category id that the ground truth does
    /// not have, or has a non-finite or negative box size or a non-finite score; the message names the record
    /// ("result #i (image_id N)") and the field.</exception>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static CocoEvaluation Evaluate(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections, string detectionsSource = "detections") =>
        Run(groundTruth, detections, detectionsSource, recordMatches: false).Evaluation;

    /// <summary>
    /// As <see cref="Evaluate"/>, and also returns the matching the numbers were computed from: for area range "all" and
    /// 100 detections per image, at each of the 10 IoU thresholds, which ground-truth annotation each detection was
    /// greedily matched to (and the reverse). The same pass produces both, so an analysis built on the matches (true and
    /// false positives, missed objects) agrees with the evaluator's numbers by construction.
    /// </summary>
    /// <param name="groundTruth">As for <see cref="Evaluate"/>; annotation indices of the matches refer to its
    /// <see cref="CocoInstances.Annotations"/> list.</param>
    /// <param name="detections">As for <see cref="Evaluate"/>; detection indices of the matches refer to this list.</param>
    /// <param name="detectionsSource">Name of the detections' file, used in error messages.</param>
    /// <exception cref="DataFormatException">As for <see cref="Evaluate"/>.</exception>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static (CocoEvaluation Evaluation, CocoMatches Matches) EvaluateWithMatches(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections,
        string detectionsSource = "detections")
    {
        var (evaluation, matches) = Run(groundTruth, detections, detectionsSource, recordMatches: true);
        return (evaluation, matches!);
    }

    private static (CocoEvaluation Evaluation, CocoMatches? Matches) Run(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections,
        string detectionsSource, bool recordMatches)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        ArgumentNullException.ThrowIfNull(detections);
        ArgumentNullException.ThrowIfNull(detectionsSource);

        // Images and categories, sorted by id (pycocotools: np.unique of the ids).
        long[] imageIds = groundTruth.Images.Select(im => im.Id).Distinct().ToArray();
        Array.Sort(imageIds);
        var imageIndex = new Dictionary<long, int>(imageIds.Length);
        for (int i = 0; i < imageIds.Length; i++) imageIndex[imageIds[i]] = i;
        var categoryNames = new Dictionary<long, string>();
        foreach (var c in groundTruth.Categories) categoryNames.TryAdd(c.Id, c.Name);
        long[] categoryIds = categoryNames.Keys.ToArray();
        Array.Sort(categoryIds);
        var categoryIndex = new Dictionary<long, int>(categoryIds.Length);
        for (int k = 0; k < categoryIds.Length; k++) categoryIndex[categoryIds[k]] = k;
        int numImages = imageIds.Length, numCategories = categoryIds.Length;
        if ((long)numImages * numCategories >= int.MaxValue)
            throw new ArgumentException($"too many images x categories ({numImages} x {numCategories})", nameof(groundTruth));

        var gt = GroundTruthArrays.From(groundTruth.Annotations, imageIndex, categoryIndex, numImages, numCategories);
        var dt = DetectionArrays.From(detections, imageIndex, categoryIndex, numImages, numCategories, detectionsSource);

        var iouThresholds = IouThresholds.ToArray();
        var recallThresholds = RecallThresholds.ToArray();
        var areas = AreaRanges.ToArray();
        int[] maxDets = MaxDetections.ToArray();
        var shape = new CocoEvaluation.Shape(iouThresholds.Length, recallThresholds.Length, numCategories, areas.Length, maxDets.Length);
        var precision = new double[shape.T * shape.R * shape.K * shape.A * shape.M];
        var recall = new double[shape.T * shape.K * shape.A * shape.M];
        Array.Fill(precision, -1.0);
        Array.Fill(recall, -1.0);
        var gtCounts = new int[numCategories];
        var truePositives = new int[shape.T * numCategories];
        var falsePositives = new int[shape.T * numCategories];
        var recorder = recordMatches ? new MatchRecorder(detections.Count, groundTruth.Annotations.Count, shape.T) : null;

        Parallel.For(0, numCategories, k =>
        {
            var matches = MatchCategory(k, numImages, gt, dt, iouThresholds, areas, recorder);
            gtCounts[k] = matches.NotIgnoredCount[0];
            CountOutcomes(k, matches, shape, maxDets[^1], truePositives, falsePositives);
            Accumulate(k, matches, shape, recallThresholds, maxDets, precision, recall);
        });

        var names = categoryIds.Select(id => categoryNames[id]).ToArray();
        var evaluation = new CocoEvaluation(imageIds, categoryIds, names, gtCounts, iouThresholds, recallThresholds, areas, maxDets, shape, precision, recall,
            truePositives, falsePositives);
        return (evaluation, recorder?.ToMatches(iouThresholds));
    }

    /// <summary>The per-detection outcome of greedy matching for one category, over all images.</summary>
    private sealed class CategoryMatches
    {
        /// <summary>Score of each kept detection, grouped by image (ascending image id), sorted within an image.</summary>
        public readonly List<double> Scores = new();
        /// <summary>Rank of each detection within its image and category (0 = highest score).</summary>
        public readonly List<int> Ranks = new();
        /// <summary>Per detection, per area range a and IoU threshold t at [a * T + t]: bit 0 matched, bit 1 ignored.</summary>
        public readonly List<byte> Flags = new();
        /// <summary>Non-ignored ground-truth count per area range (pycocotools <c>npig</c>).</summary>
        public int[] NotIgnoredCount = [];
    }

    private const byte Matched = 1, Ignored = 2;

    /// <summary>
    /// Where <see cref="EvaluateWithMatches"/> keeps the matching of area range "all" (index 0) at the largest detection
    /// limit: per original detection and annotation index. Categories write disjoint entries, so the parallel loop needs
    /// no lock.
    /// </summary>
    private sealed class MatchRecorder(int numDetections, int numAnnotations, int numThresholds)
    {
        public readonly byte[] DetectionOutcome = new byte[numDetections * numThresholds]; // CocoMatchOutcome
        public readonly int[] DetectionMatch = Filled(numDetections * numThresholds);
        public readonly int[] AnnotationMatch = Filled(numAnnotations * numThresholds);
        public readonly bool[] AnnotationCounted = new bool[numAnnotations];

        private static int[] Filled(int n)
        {
            var a = new int[n];
            Array.Fill(a, -1);
            return a;
        }

        public CocoMatches ToMatches(double[] iouThresholds) =>
            new(iouThresholds, DetectionOutcome, DetectionMatch, AnnotationMatch, AnnotationCounted);
    }

    /// <summary>pycocotools computeIoU + evaluateImg for all images of category <paramref name="k"/>.</summary>
    private static CategoryMatches MatchCategory(int k, int numImages, GroundTruthArrays gt, DetectionArrays dt,
        double[] iouThresholds, CocoAreaRange[] areas, MatchRecorder? recorder)
    {
        int numT = iouThresholds.Length, numA = areas.Length, flagsPerDet = numA * numT;
        var result = new CategoryMatches { NotIgnoredCount = new int[numA] };
        var thresholds = new double[numT];
        for (int t = 0; t < numT; t++) thresholds[t] = MatchThreshold(iouThresholds[t]);
        int[] order = new int[16];
        double[] iou = new double[256];
        bool[] gtIgnored = new bool[16], gtMatched = new bool[16], gtCrowd = new bool[16];
        int[] gtOrder = new int[16];
        int[] detectionMatch = new int[MaxDetectionsPerImage];
        Comparison<int> byScoreThenFileOrder = (x, y) =>
        {
            int c = dt.Score[y].CompareTo(dt.Score[x]);
            return c != 0 ? c : x.CompareTo(y);
        };

        for (int i = 0; i < numImages; i++)
        {
            int key = k * numImages + i;
            int g0 = gt.Offsets[key], numG = gt.Offsets[key + 1] - g0;
            int d0 = dt.Offsets[key], numD = dt.Offsets[key + 1] - d0;
            if (numG == 0 && numD == 0) continue;

            // Detections by decreasing score (ties: file order), at most 100.
            if (order.Length < numD) order = new int[Math.Max(numD, 2 * order.Length)];
            Array.Copy(dt.Order, d0, order, 0, numD);
            order.AsSpan(0, numD).Sort(byScoreThenFileOrder);
            int nd = Math.Min(numD, MaxDetectionsPerImage);

            // IoU [nd, numG], ground truth in file order.
            if (iou.Length < nd * numG) iou = new double[Math.Max(nd * numG, 2 * iou.Length)];
            for (int d = 0; d < nd; d++)
            {
                int di = order[d];
                for (int g = 0; g < numG; g++)
                {
                    int gi = gt.Order[g0 + g];
                    iou[d * numG + g] = BoxIou(dt.X[di], dt.Y[di], dt.W[di], dt.H[di], gt.X[gi], gt.Y[gi], gt.W[gi], gt.H[gi], gt.Crowd[gi]);
                }
            }
            if (gtIgnored.Length < numG)
            {
                int n = Math.Max(numG, 2 * gtIgnored.Length);
                gtIgnored = new bool[n]; gtMatched = new bool[n]; gtCrowd = new bool[n]; gtOrder = new int[n];
            }
            for (int g = 0; g < numG; g++) gtCrowd[g] = gt.Crowd[gt.Order[g0 + g]];

            int entryBase = result.Scores.Count;
            for (int d = 0; d < nd; d++)
            {
                result.Scores.Add(dt.Score[order[d]]);
                result.Ranks.Add(d);
            }
            CollectionsMarshal.SetCount(result.Flags, (entryBase + nd) * flagsPerDet);
            var flags = CollectionsMarshal.AsSpan(result.Flags).Slice(entryBase * flagsPerDet);
            if (numG == 0)
            {
                // Nothing to match (most image/category pairs): each detection is a false positive, or ignored when
                // its own area is outside the range.
                for (int a = 0; a < numA; a++)
                    for (int d = 0; d < nd; d++)
                    {
                        byte f = areas[a].Excludes(dt.Area[order[d]]) ? Ignored : (byte)0;
                        flags.Slice(d * flagsPerDet + a * numT, numT).Fill(f);
                        if (a == 0 && recorder != null)
                            for (int t = 0; t < numT; t++) Record(recorder, numT, t, order[d], -1, f);
                    }
                continue;
            }
            for (int a = 0; a < numA; a++)
            {
                var range = areas[a];
                // Ignored ground truth (crowd or outside the range) goes last, keeping file order otherwise.
                int kept = 0;
                for (int g = 0; g < numG; g++)
                {
                    int gi = gt.Order[g0 + g];
                    gtIgnored[g] = gtCrowd[g] || range.Excludes(gt.Area[gi]);
                    if (!gtIgnored[g]) gtOrder[kept++] = g;
                    if (a == 0 && recorder != null) recorder.AnnotationCounted[gi] = !gtIgnored[g];
                }
                result.NotIgnoredCount[a] += kept;
                for (int g = 0, p = kept; g < numG; g++)
                    if (gtIgnored[g]) gtOrder[p++] = g;

                for (int t = 0; t < numT; t++)
                {
                    GreedyMatch(iou.AsSpan(0, nd * numG), nd, numG, gtOrder.AsSpan(0, numG), gtIgnored.AsSpan(0, numG), gtCrowd.AsSpan(0, numG),
                        thresholds[t], gtMatched.AsSpan(0, numG), detectionMatch.AsSpan(0, nd));
                    for (int d = 0; d < nd; d++)
                    {
                        int m = detectionMatch[d];
                        byte f = m >= 0
                            ? (gtIgnored[m] ? (byte)(Matched | Ignored) : Matched)
                            : (range.Excludes(dt.Area[order[d]]) ? Ignored : (byte)0);
                        flags[d * flagsPerDet + a * numT + t] = f;
                        if (a == 0 && recorder != null) Record(recorder, numT, t, order[d], m >= 0 ? gt.Order[g0 + m] : -1, f);
                    }
                }
            }
        }
        return result;
    }

    /// <summary>The IoU a match needs at threshold <paramref name="iouThreshold"/>: pycocotools caps it at 1 - 1e-10, so
    /// that threshold 1.0 still accepts a perfect overlap.</summary>
    internal static double MatchThreshold(double iouThreshold) => Math.Min(iouThreshold, 1 - 1e-10);

    /// <summary>
    /// The greedy matching of pycocotools' evaluateImg for one image, one category, one area range and one IoU threshold:
    /// detections in the order given (decreasing score), each takes the not-yet-taken ground truth of highest IoU (at
    /// least <paramref name="threshold"/>; the last one wins a tie), visiting <paramref name="gtOrder"/> (non-ignored
    /// ground truth first) and stopping at the first ignored one once a non-ignored one is held; crowd ground truth can
    /// be taken many times.
    /// </summary>
    /// <param name="iou">IoU [detection d, ground truth g] at d * numGroundTruth + g.</param>
    /// <param name="numDetections">Detections (rows of <paramref name="iou"/>).</param>
    /// <param name="numGroundTruth">Ground-truth boxes (columns of <paramref name="iou"/>).</param>
    /// <param name="gtOrder">The ground-truth indices g, non-ignored first.</param>
    /// <param name="gtIgnored">Per g: crowd, or outside the area range.</param>
    /// <param name="gtCrowd">Per g: a crowd region.</param>
    /// <param name="threshold">The IoU a match needs (see <see cref="MatchThreshold"/>).</param>
    /// <param name="gtMatched">Work space of <paramref name="numGroundTruth"/> flags; on return, which g were taken.</param>
    /// <param name="detectionMatch">On return, per detection the g it took, or -1.</param>
    internal static void GreedyMatch(ReadOnlySpan<double> iou, int numDetections, int numGroundTruth, ReadOnlySpan<int> gtOrder,
        ReadOnlySpan<bool> gtIgnored, ReadOnlySpan<bool> gtCrowd, double threshold, Span<bool> gtMatched, Span<int> detectionMatch)
    {
        gtMatched[..numGroundTruth].Clear();
        for (int d = 0; d < numDetections; d++)
        {
            double best = threshold;
            int m = -1;
            int row = d * numGroundTruth;
            for (int p = 0; p < numGroundTruth; p++)
            {
                int g = gtOrder[p];
                if (gtMatched[g] && !gtCrowd[g]) continue;
                if (m > -1 && !gtIgnored[m] && gtIgnored[g]) break;
                double v = iou[row + g];
                if (v < best) continue;
                best = v;
                m = g;
            }
            if (m >= 0) gtMatched[m] = true;
            detectionMatch[d] = m;
        }
    }

    private static void Record(MatchRecorder recorder, int numT, int t, int detection, int annotation, byte flags)
    {
        recorder.DetectionOutcome[detection * numT + t] = (byte)((flags & Ignored) != 0 ? CocoMatchOutcome.Ignored
            : (flags & Matched) != 0 ? CocoMatchOutcome.TruePositive : CocoMatchOutcome.FalsePositive);
        recorder.DetectionMatch[detection * numT + t] = annotation;
        if (annotation >= 0 && (flags & Ignored) == 0) recorder.AnnotationMatch[annotation * numT + t] = detection;
    }

    /// <summary>
    /// True and false positives of category <paramref name="k"/> per IoU threshold at area range "all" and the largest
    /// detection limit, counted from the match flags as accumulate() does (ignored detections left out).
    /// </summary>
    private static void CountOutcomes(int k, CategoryMatches matches, CocoEvaluation.Shape s, int maxDets, int[] truePositives, int[] falsePositives)
    {
        int flagsPerDet = s.A * s.T;
        for (int t = 0; t < s.T; t++)
        {
            int tp = 0, fp = 0;
            for (int j = 0; j < matches.Ranks.Count; j++)
            {
                if (matches.Ranks[j] >= maxDets) continue;
                byte f = matches.Flags[j * flagsPerDet + t]; // area index 0: all
                if ((f & Ignored) != 0) continue;
                if ((f & Matched) != 0) tp++;
                else fp++;
            }
            truePositives[t * s.K + k] = tp;
            falsePositives[t * s.K + k] = fp;
        }
    }

    /// <summary>pycocotools accumulate() for category <paramref name="k"/>: precision envelope at the recall points.</summary>
    private static void Accumulate(int k, CategoryMatches matches, CocoEvaluation.Shape s, double[] recallThresholds,
        int[] maxDets, double[] precision, double[] recall)
    {
        int n = matches.Scores.Count;
        int flagsPerDet = s.A * s.T;
        double[] scores = matches.Scores.ToArray();
        // All detections of the category by decreasing score; ties: image order, then rank (numpy mergesort of the
        // concatenation over images).
        int[] order = new int[n];
        for (int j = 0; j < n; j++) order[j] = j;
        Array.Sort(order, (x, y) =>
        {
            int c = scores[y].CompareTo(scores[x]);
            return c != 0 ? c : x.CompareTo(y);
        });
        byte[] flags = matches.Flags.ToArray();
        int[] kept = new int[n];
        double[] rc = new double[n], pr = new double[n];
        double eps = Math.BitIncrement(1.0) - 1.0; // np.spacing(1)

        int[] ranks = matches.Ranks.ToArray();
        int previousKept = -1;
        // Largest limit first: when a smaller limit keeps the same detections, its numbers are a copy.
        for (int mi = s.M - 1; mi >= 0; mi--)
        {
            int nk = 0;
            for (int j = 0; j < n; j++)
                if (ranks[order[j]] < maxDets[mi]) kept[nk++] = order[j];
            if (nk == previousKept)
            {
                CopyLimit(k, mi + 1, mi, s, precision, recall);
                continue;
            }
            previousKept = nk;
            for (int a = 0; a < s.A; a++)
            {
                int npig = matches.NotIgnoredCount[a];
                if (npig == 0) continue; // stays -1
                for (int t = 0; t < s.T; t++)
                {
                    double tp = 0, fp = 0;
                    int slot = a * s.T + t;
                    // Ignored detections are left out: in pycocotools they repeat the previous (recall, precision)
                    // point (or (0, 0) before the first), which changes neither the envelope nor the readings.
                    int np = 0;
                    for (int j = 0; j < nk; j++)
                    {
                        byte f = flags[kept[j] * flagsPerDet + slot];
                        if ((f & Ignored) != 0) continue;
                        if ((f & Matched) != 0) tp++;
                        else fp++;
                        rc[np] = tp / npig;
                        pr[np] = tp / (fp + tp + eps);
                        np++;
                    }
                    recall[s.RecallIndex(t, k, a, mi)] = np > 0 ? rc[np - 1] : 0;
                    for (int j = np - 1; j > 0; j--)
                        if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
                    int pos = 0;
                    for (int r = 0; r < s.R; r++)
                    {
                        while (pos < np && rc[pos] < recallThresholds[r]) pos++; // searchsorted(side="left")
                        precision[s.PrecisionIndex(t, r, k, a, mi)] = pos < np ? pr[pos] : 0;
                    }
                }
            }
        }
    }

    /// <summary>Copies the precision and recall of category k from limit index <paramref name="from"/> to <paramref name="to"/>.</summary>
    private static void CopyLimit(int k, int from, int to, CocoEvaluation.Shape s, double[] precision, double[] recall)
    {
        for (int t = 0; t < s.T; t++)
            for (int a = 0; a < s.A; a++)
            {
                recall[s.RecallIndex(t, k, a, to)] = recall[s.RecallIndex(t, k, a, from)];
                for (int r = 0; r < s.R; r++)
                    precision[s.PrecisionIndex(t, r, k, a, to)] = precision[s.PrecisionIndex(t, r, k, a, from)];
            }
    }

    /// <summary>
    /// IoU of a detection and a ground-truth box, both XYWH pixels, as pycocotools' bbIou: no "+1"; for a crowd
    /// region the union is the detection's area alone (intersection over detection area).
    /// </summary>
    internal static double BoxIou(double dx, double dy, double dw, double dh, double gx, double gy, double gw, double gh, bool crowd)
    {
        double w = Math.Min(dx + dw, gx + gw) - Math.Max(dx, gx);
        if (w <= 0) return 0;
        double h = Math.Min(dy + dh, gy + gh) - Math.Max(dy, gy);
        if (h <= 0) return 0;
        double inter = w * h;
        double da = dw * dh;
        double union = crowd ? da : da + gw * gh - inter;
        return inter / union;
    }

    /// <summary><c>np.linspace(start, stop, num)</c> bit for bit: i * ((stop - start) / (num - 1)) + start, last = stop.</summary>
    internal static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++)
        {
            double v = i * step;
            y[i] = v + start;
        }
        y[num - 1] = stop;
        return y;
    }

    /// <summary>Ground-truth boxes as arrays, bucketed by (category, image) in file order.</summary>
    private sealed class GroundTruthArrays
    {
        public required double[] X, Y, W, H, Area;
        public required bool[] Crowd;
        /// <summary>Annotation indices ordered by (category index, image index, file order).</summary>
        public required int[] Order;
        /// <summary>Start of bucket k * numImages + i in <see cref="Order"/>; length numCategories * numImages + 1.</summary>
        public required int[] Offsets;

        public static GroundTruthArrays From(IReadOnlyList<CocoAnnotation> anns, Dictionary<long, int> imageIndex,
            Dictionary<long, int> categoryIndex, int numImages, int numCategories)
        {
            int n = anns.Count;
            var keys = new int[n];
            var a = new GroundTruthArrays
            {
                X = new double[n], Y = new double[n], W = new double[n], H = new double[n], Area = new double[n],
                Crowd = new bool[n], Order = [], Offsets = [],
            };
            for (int j = 0; j < n; j++)
            {
                var ann = anns[j];
                a.X[j] = ann.X; a.Y[j] = ann.Y; a.W[j] = ann.Width; a.H[j] = ann.Height;
                a.Area[j] = ann.Area; a.Crowd[j] = ann.IsCrowd;
                keys[j] = imageIndex.TryGetValue(ann.ImageId, out int i) && categoryIndex.TryGetValue(ann.CategoryId, out int k)
                    ? k * numImages + i : -1;
            }
            (a.Order, a.Offsets) = Bucket(keys, numImages * numCategories);
            return a;
        }
    }

    /// <summary>Detections as arrays, bucketed by (category, image) in file order.</summary>
    private sealed class DetectionArrays
    {
        public required double[] X, Y, W, H, Area, Score;
        public required int[] Order, Offsets;

        public static DetectionArrays From(IReadOnlyList<CocoResult> results, Dictionary<long, int> imageIndex,
            Dictionary<long, int> categoryIndex, int numImages, int numCategories, string source)
        {
            int n = results.Count;
            var keys = new int[n];
            var a = new DetectionArrays
            {
                X = new double[n], Y = new double[n], W = new double[n], H = new double[n], Area = new double[n],
                Score = new double[n], Order = [], Offsets = [],
            };
            for (int j = 0; j < n; j++)
            {
                var r = results[j] ?? throw new DataFormatException(source, $"result #{j}", null, "is null");
                string Record() => $"result #{j} (image_id {r.ImageId})";
                if (!imageIndex.TryGetValue(r.ImageId, out int i))
                    throw new DataFormatException(source, Record(), "image_id", $"image id {r.ImageId} is not in the ground truth");
                if (!categoryIndex.TryGetValue(r.CategoryId, out int k))
                    throw new DataFormatException(source, Record(), "category_id", $"category id {r.CategoryId} is not in the ground truth");
                if (!double.IsFinite(r.X) || !double.IsFinite(r.Y) || !double.IsFinite(r.Width) || !double.IsFinite(r.Height)
                    || r.Width < 0 || r.Height < 0)
                    throw new DataFormatException(source, Record(), "bbox",
                        string.Create(CultureInfo.InvariantCulture, $"expected finite [x, y, width, height] with width, height >= 0, found [{r.X}, {r.Y}, {r.Width}, {r.Height}]"));
                if (!double.IsFinite(r.Score))
                    throw new DataFormatException(source, Record(), "score", string.Create(CultureInfo.InvariantCulture, $"not a finite number: {r.Score}"));
                a.X[j] = r.X; a.Y[j] = r.Y; a.W[j] = r.Width; a.H[j] = r.Height;
                a.Area[j] = r.Width * r.Height;
                a.Score[j] = r.Score;
                keys[j] = k * numImages + i;
            }
            (a.Order, a.Offsets) = Bucket(keys, numImages * numCategories);
            return a;
        }
    }

    /// <summary>Stable counting sort of item indices by key in [0, numKeys); key -1 drops the item.</summary>
    private static (int[] Order, int[] Offsets) Bucket(int[] keys, int numKeys)
    {
        var offsets = new int[numKeys + 1];
        int kept = 0;
        foreach (int key in keys)
            if (key >= 0) { offsets[key + 1]++; kept++; }
        for (int b = 0; b < numKeys; b++) offsets[b + 1] += offsets[b];
        var next = offsets[..numKeys];
        var order = new int[kept];
        for (int j = 0; j < keys.Length; j++)
            if (keys[j] >= 0) order[next[keys[j]]++] = j;
        return (order, offsets);
    }
}
