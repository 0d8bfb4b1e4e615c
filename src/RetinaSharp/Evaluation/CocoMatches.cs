// The greedy matching behind a COCO evaluation (pycocotools evaluateImg: dtMatches / gtMatches for area "all" and
// maxDets 100), kept per detection and per annotation so that analyses of the errors use the evaluator's matching.
namespace RetinaSharp.Evaluation;

/// <summary>What the COCO matching made of one detection at one IoU threshold (area range "all", 100 detections per image).</summary>
public enum CocoMatchOutcome : byte
{
    /// <summary>Not evaluated: beyond the 100 highest-scored detections of its image and category.</summary>
    NotEvaluated = 0,
    /// <summary>Matched to no ground truth: a false positive.</summary>
    FalsePositive = 1,
    /// <summary>Matched to a non-ignored ground-truth box: a true positive.</summary>
    TruePositive = 2,
    /// <summary>Matched to an ignored (crowd) region, or its area is outside the range: counted neither way.</summary>
    Ignored = 3,
}

/// <summary>
/// The matching that <see cref="CocoEvaluator.EvaluateWithMatches"/> computed the numbers from, for area range "all" and
/// 100 detections per image, at each IoU threshold t of <see cref="IouThresholds"/>. Detection indices are positions in
/// the detections list given to the evaluator; annotation indices are positions in its ground truth's
/// <c>Annotations</c>.
/// </summary>
public sealed class CocoMatches
{
    private readonly byte[] _outcome;
    private readonly int[] _detectionMatch, _annotationMatch;
    private readonly bool[] _annotationCounted;
    private readonly int _t;

    internal CocoMatches(double[] iouThresholds, byte[] outcome, int[] detectionMatch, int[] annotationMatch, bool[] annotationCounted)
    {
        IouThresholds = iouThresholds;
        _t = iouThresholds.Length;
        _outcome = outcome;
        _detectionMatch = detectionMatch;
        _annotationMatch = annotationMatch;
        _annotationCounted = annotationCounted;
    }

    /// <summary>The IoU thresholds, index t (0.50, 0.55, ..., 0.95).</summary>
    public IReadOnlyList<double> IouThresholds { get; }

    /// <summary>The number of detections given to the evaluator.</summary>
    public int DetectionCount => _t == 0 ? 0 : _outcome.Length / _t;

    /// <summary>The number of ground-truth annotations.</summary>
    public int AnnotationCount => _annotationCounted.Length;

    /// <summary>The outcome of detection <paramref name="detection"/> at IoU threshold index <paramref name="t"/>.</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public CocoMatchOutcome Outcome(int detection, int t) => (CocoMatchOutcome)_outcome[Index(detection, t)];

    /// <summary>The annotation that detection <paramref name="detection"/> matched at threshold index <paramref name="t"/>
    /// (a crowd region for <see cref="CocoMatchOutcome.Ignored"/>), or -1.</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public int MatchedAnnotation(int detection, int t) => _detectionMatch[Index(detection, t)];

    /// <summary>The detection that found annotation <paramref name="annotation"/> at threshold index <paramref name="t"/>,
    /// or -1 (missed, or not counted: see <see cref="IsCounted"/>).</summary>
    /// <exception cref="IndexOutOfRangeException">An index is out of range.</exception>
    public int MatchedDetection(int annotation, int t) => _annotationMatch[Index(annotation, t)];

    /// <summary>Whether annotation <paramref name="annotation"/> is a ground-truth object that counts for recall (not crowd,
    /// area in range, of a listed image and category): a false negative when <see cref="MatchedDetection"/> is -1.</summary>
    /// <exception cref="IndexOutOfRangeException">The index is out of range.</exception>
    public bool IsCounted(int annotation) => _annotationCounted[annotation];

    private int Index(int i, int t)
    {
        if ((uint)t >= (uint)_t) throw new IndexOutOfRangeException($"IoU threshold index {t} is outside 0..{_t - 1}");
        return i * _t + t;
    }
}
