// Hand-computed Pascal VOC AP: all-point (VOC2010+) and 11-point (VOC2007) on the same data, difficult objects.
using RetinaSharp.Evaluation;

namespace RetinaSharp.Tests.Evaluation;

public class VocEvaluatorTests
{
    // Class 1: objects A, B and a difficult D. Detections: A (0.9), a false positive (0.8), one on D (0.7, ignored),
    // B (0.6). tp = [1,1,1,2], fp = [0,1,1,1] -> recall [.5,.5,.5,1], precision [1,.5,.5,2/3].
    private static readonly VocImageAnnotations[] Gt =
    [
        new("img1", [new VocObject(1, 0, 0, 50, 50), new VocObject(1, 100, 100, 150, 150), new VocObject(1, 300, 300, 340, 340, Difficult: true)]),
        new("img2", []),
    ];

    private static readonly VocDetection[] Dets =
    [
        new("img1", 1, 0, 0, 50, 50, 0.9),
        new("img2", 1, 10, 10, 60, 60, 0.8),
        new("img1", 1, 300, 300, 340, 340, 0.7),
        new("img1", 1, 100, 100, 150, 150, 0.6),
    ];

    [Fact]
    public void AllPointIsTheAreaUnderTheEnvelope()
    {
        // steps: recall 0 -> .5 at envelope 1, .5 -> 1 at 2/3: 0.5 + 0.5 * 2/3.
        var e = VocEvaluator.Evaluate(Gt, Dets, VocApMethod.AllPoint);
        Assert.Equal(0.5 + 0.5 * 2.0 / 3, e.MeanAp, 12);
        Assert.Equal(2, e.PerClass[0].Positives);
        Assert.Equal(4, e.PerClass[0].Detections);
    }

    [Fact]
    public void ElevenPointAveragesMaxPrecisionAtTenthsOfRecall()
    {
        // t = 0 .. 0.5 (6 points): 1; t = 0.6 .. 1.0 (5 points): 2/3.
        var e = VocEvaluator.Evaluate(Gt, Dets, VocApMethod.ElevenPoint);
        Assert.Equal((6 + 5 * 2.0 / 3) / 11, e.MeanAp, 12);
    }

    [Fact]
    public void DifficultObjectsNeedNotBeFound()
    {
        var e = VocEvaluator.Evaluate(Gt, [Dets[0], Dets[3]]);
        Assert.Equal(1.0, e.MeanAp, 12);
        Assert.Equal(1.0, VocEvaluator.Evaluate(Gt, [Dets[0], Dets[3]], VocApMethod.ElevenPoint).MeanAp, 12);
    }

    [Fact]
    public void DuplicateIsAFalsePositiveAndIoUMustExceedHalf()
    {
        // 2 objects; A (0.9), A again (0.8) -> FP; a box with IoU exactly 0.5 on B (0.7) -> not > 0.5 -> FP.
        // recall [.5,.5,.5], precision [1,.5,1/3]: all-point 0.5; 11-point 6/11.
        VocImageAnnotations[] gt = [new("a", [new VocObject(7, 0, 0, 10, 10), new VocObject(7, 100, 0, 120, 10)])];
        VocDetection[] dets =
        [
            new("a", 7, 0, 0, 10, 10, 0.9), new("a", 7, 0, 0, 10, 10, 0.8), new("a", 7, 100, 0, 110, 10, 0.7),
        ];
        Assert.Equal(0.5, VocEvaluator.Evaluate(gt, dets).MeanAp, 12);
        Assert.Equal(6.0 / 11, VocEvaluator.Evaluate(gt, dets, VocApMethod.ElevenPoint).MeanAp, 12);
    }

    [Fact]
    public void MeanSkipsClassesWithoutObjects()
    {
        // class 2 only in the detections: NaN, left out of the mean.
        var e = VocEvaluator.Evaluate(Gt, [Dets[0], Dets[3], new VocDetection("img2", 2, 0, 0, 5, 5, 0.99)]);
        Assert.Equal(1.0, e.MeanAp, 12);
        Assert.True(double.IsNaN(e.PerClass.Single(c => c.ClassId == 2).Ap));
    }

    [Fact]
    public void BadInputNamesTheRecord()
    {
        var ex = Assert.Throws<ArgumentException>(() => VocEvaluator.Evaluate(Gt, [new VocDetection("nope", 1, 0, 0, 1, 1, 0.5)]));
        Assert.Contains("detection #0", ex.Message);
        Assert.Contains("nope", ex.Message);
        var ex2 = Assert.Throws<ArgumentException>(() => VocEvaluator.Evaluate(Gt, [new VocDetection("img1", 1, 10, 0, 5, 1, 0.5)]));
        Assert.Contains("x2 >= x1", ex2.Message);
    }
}
