// Error classification on hand-made cases: each kind once, the threshold dependence of duplicate and wrong class, and
// the counts against the COCO evaluator's own TP/FP/FN.
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Reporting;

namespace RetinaSharp.Tests.Reporting;

public class DetectionErrorsTests
{
    // One 100x100 image, cat (1) and dog (2). Boxes XYWH.
    internal static CocoInstances GroundTruth() => new(
        [new CocoImage(1, "scene.png", 100, 100)],
        [
            new CocoAnnotation(100, 1, 1, 10, 10, 20, 20, 400, false), // a0 cat: found by d0
            new CocoAnnotation(101, 1, 2, 50, 50, 20, 20, 400, false), // a1 dog: only a cat detection on it -> missed
            new CocoAnnotation(102, 1, 1, 70, 10, 20, 20, 400, false), // a2 cat: only a poorly placed detection -> missed
            new CocoAnnotation(103, 1, 1, 0, 70, 30, 30, 900, true),   // a3 crowd of cats
        ],
        [new CocoCategory(1, "cat"), new CocoCategory(2, "dog")]);

    internal static List<CocoResult> Detections() =>
    [
        new(1, 1, 10, 10, 20, 20, 0.9), // d0 cat on a0, IoU 1: true positive
        new(1, 1, 11, 10, 20, 20, 0.8), // d1 cat on a0 again, IoU 380/420 = 0.905: duplicate up to 0.90, poor localisation at 0.95
        new(1, 1, 50, 50, 20, 20, 0.7), // d2 cat on the dog a1, IoU 1: wrong class at every threshold
        new(1, 1, 80, 10, 20, 20, 0.6), // d3 cat beside a2, IoU 200/600 = 0.333: poor localisation
        new(1, 2, 85, 85, 10, 10, 0.5), // d4 dog on nothing: background
        new(1, 1, 5, 75, 10, 10, 0.4),  // d5 cat inside the crowd: ignored
        new(1, 2, 12, 10, 20, 20, 0.3), // d6 dog on the cat a0, IoU 360/440 = 0.818: wrong class up to 0.80, background above
    ];

    private static (CocoEvaluation Evaluation, DetectionErrors Errors) Classify()
    {
        var gt = GroundTruth();
        var dt = Detections();
        var (evaluation, matches) = CocoEvaluator.EvaluateWithMatches(gt, dt);
        return (evaluation, DetectionErrors.Classify(gt, dt, matches));
    }

    [Fact]
    public void Each_kind_at_IoU_050()
    {
        var (_, errors) = Classify();
        DetectionErrorKind[] expected =
        [
            DetectionErrorKind.TruePositive, DetectionErrorKind.Duplicate, DetectionErrorKind.WrongClass, DetectionErrorKind.PoorLocalisation,
            DetectionErrorKind.Background, DetectionErrorKind.Ignored, DetectionErrorKind.WrongClass,
        ];
        Assert.Equal(expected, Enumerable.Range(0, 7).Select(d => errors.Kind(d, 0)));
        Assert.Equal([false, true, true, false], Enumerable.Range(0, 4).Select(a => errors.IsMissed(a, 0)));
        // The wrong-class detections name the object they sit on.
        Assert.Equal(1, errors.ConfusedAnnotation(2));
        Assert.Equal(0, errors.ConfusedAnnotation(6));
        Assert.Equal(360.0 / 440, errors.ConfusedIou(6), 12);
    }

    [Fact]
    public void Kinds_follow_the_IoU_threshold()
    {
        var (evaluation, errors) = Classify();
        Assert.Equal(0.9, evaluation.IouThresholds[8], 12);
        Assert.Equal(DetectionErrorKind.Duplicate, errors.Kind(1, 8));          // 0.905 >= 0.90
        Assert.Equal(DetectionErrorKind.PoorLocalisation, errors.Kind(1, 9));   // 0.905 < 0.95, >= 0.1
        Assert.Equal(DetectionErrorKind.WrongClass, errors.Kind(6, 6));         // 0.818 >= 0.80
        Assert.Equal(DetectionErrorKind.Background, errors.Kind(6, 7));         // 0.818 < 0.85 and no dog near
        for (int t = 0; t < 10; t++)
        {
            Assert.Equal(DetectionErrorKind.TruePositive, errors.Kind(0, t));
            Assert.Equal(DetectionErrorKind.WrongClass, errors.Kind(2, t));
            Assert.Equal(DetectionErrorKind.PoorLocalisation, errors.Kind(3, t));
            Assert.Equal(DetectionErrorKind.Background, errors.Kind(4, t));
            Assert.Equal(DetectionErrorKind.Ignored, errors.Kind(5, t));
        }
    }

    [Fact]
    public void Counts_add_up_to_the_evaluators_true_and_false_positives_and_negatives()
    {
        var (evaluation, errors) = Classify();
        Assert.Equal(new ErrorCounts(TruePositives: 1, Duplicates: 1, WrongClass: 2, PoorLocalisation: 1, Background: 1, Missed: 2, Ignored: 1), errors.Counts(0));
        Assert.Equal(new ErrorCounts(1, 0, 1, 2, 2, 2, 1), errors.Counts(9));
        Assert.Equal(new CocoCounts(1, 5, 2), evaluation.Counts(0));
        for (int t = 0; t < 10; t++)
        {
            var c = errors.Counts(t);
            var e = evaluation.Counts(t);
            Assert.Equal(e, new CocoCounts(c.TruePositives, c.FalsePositives, c.Missed));
            for (int k = 0; k < 2; k++)
            {
                var ck = errors.Counts(t, categoryId: evaluation.CategoryIds[k]);
                Assert.Equal(evaluation.Counts(t, k), new CocoCounts(ck.TruePositives, ck.FalsePositives, ck.Missed));
            }
        }
        Assert.Equal(new CocoCounts(1, 3, 1), evaluation.Counts(0, 0)); // cats: d0 TP; d1, d2, d3 FP; a2 missed
        Assert.Equal(new CocoCounts(0, 2, 1), evaluation.Counts(0, 1)); // dogs: d4, d6 FP; a1 missed
    }

    [Fact]
    public void A_score_threshold_drops_detections_and_misses_what_only_they_found()
    {
        var (_, errors) = Classify();
        Assert.Equal(new ErrorCounts(1, 0, 0, 0, 0, 2, 0), errors.Counts(0, scoreThreshold: 0.85));
        Assert.Equal(new ErrorCounts(0, 0, 0, 0, 0, 3, 0), errors.Counts(0, scoreThreshold: 0.95));
        Assert.True(errors.IsMissed(0, 0, scoreThreshold: 0.95));
        Assert.False(errors.IsMissed(3, 0, scoreThreshold: 0.95)); // a crowd region is never missed
    }

    [Fact]
    public void Confusion_table_rows_are_detected_classes_and_columns_object_classes()
    {
        var (_, errors) = Classify();
        // rows cat, dog, missed; columns cat, dog, no object
        Assert.Equal(new[,] { { 1, 1, 2 }, { 1, 0, 1 }, { 1, 1, 0 } }, errors.Confusion());
        Assert.Equal(new[,] { { 1, 1, 2 }, { 0, 0, 0 }, { 1, 1, 0 } }, errors.Confusion(scoreThreshold: 0.55));
    }

    [Fact]
    public void The_matching_is_the_evaluators()
    {
        var (evaluation, matches) = CocoEvaluator.EvaluateWithMatches(GroundTruth(), Detections());
        Assert.Equal(CocoEvaluator.Evaluate(GroundTruth(), Detections()).Stats, evaluation.Stats);
        Assert.Equal(0, matches.MatchedAnnotation(0, 0));
        Assert.Equal(0, matches.MatchedDetection(0, 0));
        Assert.Equal(-1, matches.MatchedDetection(1, 0));
        Assert.Equal(CocoMatchOutcome.Ignored, matches.Outcome(5, 0));
        Assert.Equal(3, matches.MatchedAnnotation(5, 0)); // the crowd region
        Assert.False(matches.IsCounted(3));
        Assert.True(matches.IsCounted(2));
    }

    [Fact]
    public void Detections_beyond_100_per_image_and_class_are_not_evaluated()
    {
        var gt = GroundTruth();
        var dt = Enumerable.Range(0, 101).Select(i => new CocoResult(1, 2, 0, 0, 5, 5, 1.0 - i / 1000.0)).ToList();
        var (evaluation, matches) = CocoEvaluator.EvaluateWithMatches(gt, dt);
        var errors = DetectionErrors.Classify(gt, dt, matches);
        Assert.Equal(DetectionErrorKind.Background, errors.Kind(99, 0));
        Assert.Equal(DetectionErrorKind.NotEvaluated, errors.Kind(100, 0));
        Assert.Equal(100, errors.Counts(0).Background);
        Assert.Equal(100, evaluation.Counts(0).FalsePositives);
    }
}
