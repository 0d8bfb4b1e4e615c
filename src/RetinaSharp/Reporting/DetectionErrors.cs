// Per-detection error classification on top of the COCO evaluator's greedy matching (CocoEvaluator.EvaluateWithMatches,
// area "all", 100 detections per image): a false positive of the evaluator is a duplicate, a wrong class, a poor
// localisation or background, in that order of precedence (the kinds of Hoiem et al. 2012 and TIDE, Bolya et al.
// 2020, with TIDE's background IoU 0.1); a ground-truth object is missed when no detection at or above the score
// threshold matched it. Nothing is matched again here, so the counts add up to the evaluator's TP/FP/FN.
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Reporting;

/// <summary>
/// The error kind of every detection at every COCO IoU threshold, and the missed objects, derived from the matching the
/// COCO evaluator computed its numbers from.
/// </summary>
/// <remarks>
/// A false positive of the evaluator (matched to nothing at threshold τ) is, by precedence:
/// <list type="number">
/// <item><see cref="DetectionErrorKind.Duplicate"/>: IoU ≥ τ with an object of its class (the greedy matching gave every
/// such object to a higher-scored detection already);</item>
/// <item><see cref="DetectionErrorKind.WrongClass"/>: IoU ≥ τ with an object of another class;</item>
/// <item><see cref="DetectionErrorKind.PoorLocalisation"/>: IoU ≥ <see cref="BackgroundIou"/> with an object of its class;</item>
/// <item><see cref="DetectionErrorKind.Background"/>: otherwise.</item>
/// </list>
/// Crowd regions take part in no comparison. Because the matching is greedy in decreasing score, the outcome of a
/// detection depends only on detections scored higher: keeping the detections scoring at least s changes no kind, and
/// an object is missed at s when its matching detection scores below s. So <see cref="Counts"/> at any score threshold
/// equals the evaluator's TP/FP/FN on the detections scoring at least s.
/// </remarks>
public sealed class DetectionErrors
{
    /// <summary>Below this IoU with every object of its class a false positive is background (TIDE's background threshold).</summary>
    public const double BackgroundIou = 0.1;

    private readonly CocoInstances _groundTruth;
    private readonly IReadOnlyList<CocoResult> _detections;
    private readonly CocoMatches _matches;
    private readonly byte[] _kinds;          // [detection * T + t]
    private readonly int[] _confused;        // annotation of another class with the highest IoU, or -1
    private readonly double[] _confusedIou;
    private readonly int _t;

    private DetectionErrors(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections, CocoMatches matches,
        byte[] kinds, int[] confused, double[] confusedIou)
    {
        _groundTruth = groundTruth;
        _detections = detections;
        _matches = matches;
        _kinds = kinds;
        _confused = confused;
        _confusedIou = confusedIou;
        _t = matches.IouThresholds.Count;
        var ids = groundTruth.Categories.Select(c => c.Id).Distinct().ToArray();
        Array.Sort(ids);
        CategoryIds = ids;
    }

    /// <summary>The IoU thresholds, index t (as <see cref="CocoMatches.IouThresholds"/>).</summary>
    public IReadOnlyList<double> IouThresholds => _matches.IouThresholds;

    /// <summary>The ground truth's category ids, ascending: the rows and columns of <see cref="Confusion"/>.</summary>
    public IReadOnlyList<long> CategoryIds { get; }

    /// <summary>The matching the kinds were derived from.</summary>
    public CocoMatches Matches => _matches;

    /// <summary>
    /// Classifies every detection of <paramref name="matches"/>.
    /// </summary>
    /// <param name="groundTruth">The ground truth given to <see cref="CocoEvaluator.EvaluateWithMatches"/>.</param>
    /// <param name="detections">The detections given to it (XYWH pixels, original category ids).</param>
    /// <param name="matches">Its matching.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The counts of detections or annotations differ from those of <paramref name="matches"/>.</exception>
    public static DetectionErrors Classify(CocoInstances groundTruth, IReadOnlyList<CocoResult> detections, CocoMatches matches)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        ArgumentNullException.ThrowIfNull(detections);
        ArgumentNullException.ThrowIfNull(matches);
        if (detections.Count != matches.DetectionCount)
            throw new ArgumentException($"{detections.Count} detections given but the matching has {matches.DetectionCount}", nameof(detections));
        if (groundTruth.Annotations.Count != matches.AnnotationCount)
            throw new ArgumentException($"{groundTruth.Annotations.Count} annotations given but the matching has {matches.AnnotationCount}", nameof(groundTruth));

        int numT = matches.IouThresholds.Count;
        var thresholds = matches.IouThresholds.Select(CocoEvaluator.MatchThreshold).ToArray();
        var counted = new Dictionary<long, List<int>>();
        var anns = groundTruth.Annotations;
        for (int a = 0; a < anns.Count; a++)
        {
            if (!matches.IsCounted(a)) continue;
            if (!counted.TryGetValue(anns[a].ImageId, out var list)) counted[anns[a].ImageId] = list = new List<int>();
            list.Add(a);
        }

        var kinds = new byte[detections.Count * numT];
        var confused = new int[detections.Count];
        var confusedIou = new double[detections.Count];
        Array.Fill(confused, -1);
        for (int d = 0; d < detections.Count; d++)
        {
            var r = detections[d];
            bool anyFalsePositive = false;
            for (int t = 0; t < numT; t++)
            {
                var outcome = matches.Outcome(d, t);
                kinds[d * numT + t] = (byte)(outcome switch
                {
                    CocoMatchOutcome.TruePositive => DetectionErrorKind.TruePositive,
                    CocoMatchOutcome.Ignored => DetectionErrorKind.Ignored,
                    CocoMatchOutcome.FalsePositive => DetectionErrorKind.Background, // refined below
                    _ => DetectionErrorKind.NotEvaluated,
                });
                anyFalsePositive |= outcome == CocoMatchOutcome.FalsePositive;
            }
            if (!anyFalsePositive && matches.Outcome(d, 0) == CocoMatchOutcome.NotEvaluated) continue;

            // Highest IoU with an object of its own class, and with one of another class.
            double same = 0, other = 0;
            int otherAnnotation = -1;
            if (counted.TryGetValue(r.ImageId, out var objects))
                foreach (int a in objects)
                {
                    var g = anns[a];
                    double v = CocoEvaluator.BoxIou(r.X, r.Y, r.Width, r.Height, g.X, g.Y, g.Width, g.Height, crowd: false);
                    if (g.CategoryId == r.CategoryId) same = Math.Max(same, v);
                    else if (v > other) { other = v; otherAnnotation = a; }
                }
            confused[d] = otherAnnotation;
            confusedIou[d] = other;
            if (!anyFalsePositive) continue;
            for (int t = 0; t < numT; t++)
            {
                if (kinds[d * numT + t] != (byte)DetectionErrorKind.Background) continue;
                kinds[d * numT + t] = (byte)(same >= thresholds[t] ? DetectionErrorKind.Duplicate
                    : other >= thresholds[t] ? DetectionErrorKind.WrongClass
                    : same >= BackgroundIou ? DetectionErrorKind.PoorLocalisation
                    : DetectionErrorKind.Background);
            }
        }
        return new DetectionErrors(groundTruth, detections, matches, kinds, confused, confusedIou);
    }

    /// <summary>The kind of detection <paramref name="detection"/> (index in the detections list) at IoU threshold index <paramref name="t"/>.</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public DetectionErrorKind Kind(int detection, int t)
    {
        if ((uint)t >= (uint)_t) throw new IndexOutOfRangeException($"IoU threshold index {t} is outside 0..{_t - 1}");
        return (DetectionErrorKind)_kinds[detection * _t + t];
    }

    /// <summary>The object of another class that detection <paramref name="detection"/> overlaps most (annotation index),
    /// or -1 when it overlaps none; a <see cref="DetectionErrorKind.WrongClass"/> detection at threshold τ overlaps it by ≥ τ.</summary>
    /// <exception cref="IndexOutOfRangeException">The index is out of range.</exception>
    public int ConfusedAnnotation(int detection) => _confused[detection];

    /// <summary>The IoU of detection <paramref name="detection"/> with <see cref="ConfusedAnnotation"/> (0 when none).</summary>
    /// <exception cref="IndexOutOfRangeException">The index is out of range.</exception>
    public double ConfusedIou(int detection) => _confusedIou[detection];

    /// <summary>Whether annotation <paramref name="annotation"/> is an object (not crowd) that no detection scoring at least
    /// <paramref name="scoreThreshold"/> matched at IoU threshold index <paramref name="t"/>.</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public bool IsMissed(int annotation, int t, double scoreThreshold = 0)
    {
        if (!_matches.IsCounted(annotation)) return false;
        int d = _matches.MatchedDetection(annotation, t);
        return d < 0 || _detections[d].Score < scoreThreshold;
    }

    /// <summary>
    /// The counts at IoU threshold index <paramref name="t"/> over the detections scoring at least
    /// <paramref name="scoreThreshold"/>, of one category or all. TruePositives + FalsePositives and TruePositives + Missed
    /// are the evaluator's TP + FP and TP + FN (<see cref="CocoEvaluation.Counts"/> at threshold 0).
    /// </summary>
    /// <param name="t">IoU threshold index (0 = 0.50).</param>
    /// <param name="scoreThreshold">Detections scoring below it are left out (and the objects only they found are missed).</param>
    /// <param name="categoryId">An original category id (detections of that class, objects of that class), or null for all.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="t"/> is out of range.</exception>
    public ErrorCounts Counts(int t, double scoreThreshold = 0, long? categoryId = null)
    {
        if ((uint)t >= (uint)_t) throw new ArgumentOutOfRangeException(nameof(t), t, $"IoU threshold indices are 0..{_t - 1}");
        var n = new int[7];
        for (int d = 0; d < _detections.Count; d++)
        {
            var r = _detections[d];
            if (r.Score < scoreThreshold || (categoryId is long c && r.CategoryId != c)) continue;
            n[_kinds[d * _t + t]]++;
        }
        int missed = 0;
        var anns = _groundTruth.Annotations;
        for (int a = 0; a < anns.Count; a++)
            if ((categoryId is not long c || anns[a].CategoryId == c) && IsMissed(a, t, scoreThreshold)) missed++;
        return new ErrorCounts(n[(int)DetectionErrorKind.TruePositive], n[(int)DetectionErrorKind.Duplicate], n[(int)DetectionErrorKind.WrongClass],
            n[(int)DetectionErrorKind.PoorLocalisation], n[(int)DetectionErrorKind.Background], missed, n[(int)DetectionErrorKind.Ignored]);
    }

    /// <summary>
    /// The confusion between classes at IoU 0.5 (threshold index 0) over the detections scoring at least
    /// <paramref name="scoreThreshold"/>: (K + 1) x (K + 1) counts, rows = detected class, columns = object class, in
    /// <see cref="CategoryIds"/> order. [A, A] = true positives of A; [A, B] = detections of A on an object of B (wrong
    /// class); [A, K] = the other false positives of A (duplicate, poor localisation, background); [K, B] = missed objects
    /// of B; [K, K] = 0.
    /// </summary>
    public int[,] Confusion(double scoreThreshold = 0)
    {
        int k = CategoryIds.Count;
        var index = new Dictionary<long, int>();
        for (int i = 0; i < k; i++) index[CategoryIds[i]] = i;
        var table = new int[k + 1, k + 1];
        var anns = _groundTruth.Annotations;
        for (int d = 0; d < _detections.Count; d++)
        {
            var r = _detections[d];
            if (r.Score < scoreThreshold) continue;
            int row = index[r.CategoryId];
            switch ((DetectionErrorKind)_kinds[d * _t])
            {
                case DetectionErrorKind.TruePositive: table[row, row]++; break;
                case DetectionErrorKind.WrongClass: table[row, index[anns[_confused[d]].CategoryId]]++; break;
                case DetectionErrorKind.Duplicate or DetectionErrorKind.PoorLocalisation or DetectionErrorKind.Background: table[row, k]++; break;
            }
        }
        for (int a = 0; a < anns.Count; a++)
            if (IsMissed(a, 0, scoreThreshold)) table[k, index[anns[a].CategoryId]]++;
        return table;
    }
}
