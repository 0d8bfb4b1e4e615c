using RetinaSharp.Visualization;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Tests.Visualization;

public class PrCurvePlotTests
{
    /// <summary>Eight 40 x 40 objects, one per image, found with IoU 1, 0.818 or 0.6 or missed, so that groups of IoU thresholds give identical curves.</summary>
    private static CocoEvaluation Evaluation()
    {
        var images = Enumerable.Range(1, 8).Select(i => new CocoImage(i, $"{i}.png", 100, 100)).ToList();
        var gt = images.Select(im => new CocoAnnotation(im.Id, im.Id, 1, 10, 10, 40, 40, 1600, false)).ToList();
        var dets = new List<CocoResult>();
        // Images 1-4: exact boxes (match at every IoU threshold); 5-6: shifted by 4 px in x (IoU 36*40/(2*1600-1440) = 0.818);
        // 7: shifted by 10 px (IoU 30*40/(3200-1200) = 0.6); 8: missed; plus two false positives with mid scores.
        for (int i = 1; i <= 4; i++) dets.Add(new CocoResult(i, 1, 10, 10, 40, 40, 0.9 - 0.01 * i));
        for (int i = 5; i <= 6; i++) dets.Add(new CocoResult(i, 1, 14, 10, 40, 40, 0.8 - 0.01 * i));
        dets.Add(new CocoResult(7, 1, 20, 10, 40, 40, 0.7));
        dets.Add(new CocoResult(1, 1, 60, 60, 30, 30, 0.75));
        dets.Add(new CocoResult(2, 1, 60, 60, 30, 30, 0.5));
        return CocoEvaluator.Evaluate(new CocoInstances(images, gt, [new CocoCategory(1, "thing")]), dets);
    }

    [Fact]
    public void Coinciding_curves_are_drawn_and_their_ap_is_listed()
    {
        var e = Evaluation();
        // IoU 0.50 and 0.55 (and 0.60: IoU exactly 0.6 matches) coincide; 0.65..0.80 coincide; 0.85..0.95 coincide.
        Assert.Equal(e.PrecisionCurve(0, null), e.PrecisionCurve(1, null));
        Assert.Equal(e.PrecisionCurve(3, null), e.PrecisionCurve(6, null));
        Assert.NotEqual(e.PrecisionCurve(0, null), e.PrecisionCurve(9, null));
        byte[] png = PrCurvePlot.RenderPng(e);
        Assert.Equal(0x89, png[0]);
        if (Environment.GetEnvironmentVariable("RETINA_KEEP_PLOTS") is string keep) File.WriteAllBytes(Path.Combine(keep, "pr_curves.png"), png);
    }
}
