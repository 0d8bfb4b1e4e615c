// Error classification on a larger generated set (jittered, relabelled, duplicated and random detections, crowd regions,
// score ties, an image with more than 100 detections of one class): the counts equal the COCO evaluator's TP/FP/FN at
// every IoU threshold and class, also at score thresholds (against the evaluator run on the kept detections only), the
// matching equals a plain re-implementation of pycocotools' greedy rule, and every kind meets its definition.
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Reporting;

namespace RetinaSharp.Tests.Reporting;

public class DetectionErrorsGeneratedSetTests
{
    private const int Classes = 5;

    internal static (CocoInstances GroundTruth, List<CocoResult> Detections) Generate(int seed, int images)
    {
        var rng = new Random(seed);
        var imgs = new List<CocoImage>();
        var anns = new List<CocoAnnotation>();
        var dets = new List<CocoResult>();
        long annId = 1;
        double Score() => Math.Round(0.05 + 0.95 * rng.NextDouble(), 2); // two decimals: many ties
        for (int i = 1; i <= images; i++)
        {
            int w = rng.Next(200, 641), h = rng.Next(150, 481);
            imgs.Add(new CocoImage(i, $"img{i}.jpg", w, h));
            int objects = rng.Next(0, 9);
            for (int o = 0; o < objects; o++)
            {
                double bw = rng.Next(8, w / 2), bh = rng.Next(8, h / 2), x = rng.NextDouble() * (w - bw), y = rng.NextDouble() * (h - bh);
                int cat = rng.Next(1, Classes + 1);
                bool crowd = rng.NextDouble() < 0.05;
                anns.Add(new CocoAnnotation(annId++, i, cat, x, y, bw, bh, bw * bh, crowd));
                int copies = rng.NextDouble() < 0.8 ? 1 : 0;
                if (rng.NextDouble() < 0.25) copies++;
                for (int c = 0; c < copies; c++)
                {
                    double j = rng.NextDouble() < 0.3 ? 0.35 : 0.08; // sometimes far off
                    int dc = rng.NextDouble() < 0.85 ? cat : rng.Next(1, Classes + 1);
                    dets.Add(new CocoResult(i, dc, x + (rng.NextDouble() - 0.5) * j * bw, y + (rng.NextDouble() - 0.5) * j * bh,
                        bw * (1 + (rng.NextDouble() - 0.5) * j), bh * (1 + (rng.NextDouble() - 0.5) * j), Score()));
                }
            }
            for (int b = rng.Next(0, 5); b > 0; b--)
            {
                double bw = rng.Next(5, w / 3), bh = rng.Next(5, h / 3);
                dets.Add(new CocoResult(i, rng.Next(1, Classes + 1), rng.NextDouble() * (w - bw), rng.NextDouble() * (h - bh), bw, bh, Score()));
            }
            if (i == 7) // more than 100 detections of one class on one image
                for (int b = 0; b < 130; b++)
                    dets.Add(new CocoResult(i, 3, rng.NextDouble() * (w - 20), rng.NextDouble() * (h - 20), 20, 20, Score()));
        }
        return (new CocoInstances(imgs, anns, Enumerable.Range(1, Classes).Select(c => new CocoCategory(c, $"class{c}")).ToList()), dets);
    }

    private static readonly (CocoInstances Gt, List<CocoResult> Dt) Set = Generate(seed: 16, images: 300);

    [Fact]
    public void Counts_equal_the_evaluators_at_every_threshold_and_class()
    {
        var (evaluation, matches) = CocoEvaluator.EvaluateWithMatches(Set.Gt, Set.Dt);
        var errors = DetectionErrors.Classify(Set.Gt, Set.Dt, matches);
        var all = errors.Counts(0);
        Assert.True(all.TruePositives > 300 && all.Duplicates > 20 && all.WrongClass > 20 && all.PoorLocalisation > 20 && all.Background > 100 && all.Ignored > 0,
            $"the generated set should hold every kind: {all}");
        for (int t = 0; t < 10; t++)
        {
            var c = errors.Counts(t);
            Assert.Equal(evaluation.Counts(t), new CocoCounts(c.TruePositives, c.FalsePositives, c.Missed));
            for (int k = 0; k < Classes; k++)
            {
                var ck = errors.Counts(t, categoryId: evaluation.CategoryIds[k]);
                var ek = evaluation.Counts(t, k);
                Assert.Equal(ek, new CocoCounts(ck.TruePositives, ck.FalsePositives, ck.Missed));
                // Independent of the counts: accumulate()'s recall is TP / objects.
                int objects = evaluation.PerCategory[k].GroundTruthCount;
                Assert.Equal(evaluation.Recall(t, k, 0, 2), (double)ek.TruePositives / objects, 12);
            }
        }
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.62)]
    public void At_a_score_threshold_the_counts_equal_the_evaluator_on_the_kept_detections(double score)
    {
        var (_, matches) = CocoEvaluator.EvaluateWithMatches(Set.Gt, Set.Dt);
        var errors = DetectionErrors.Classify(Set.Gt, Set.Dt, matches);
        var kept = Set.Dt.Where(d => d.Score >= score).ToList();
        var evaluation = CocoEvaluator.Evaluate(Set.Gt, kept);
        for (int t = 0; t < 10; t++)
        {
            var c = errors.Counts(t, score);
            Assert.Equal(evaluation.Counts(t), new CocoCounts(c.TruePositives, c.FalsePositives, c.Missed));
        }
    }

    [Fact]
    public void The_matching_equals_a_plain_greedy_matcher()
    {
        var (_, matches) = CocoEvaluator.EvaluateWithMatches(Set.Gt, Set.Dt);
        var thresholds = CocoEvaluator.IouThresholds;
        var groups = Enumerable.Range(0, Set.Dt.Count).GroupBy(d => (Set.Dt[d].ImageId, Set.Dt[d].CategoryId));
        int checkedCount = 0;
        foreach (var group in groups)
        {
            // Decreasing score, ties in file order, at most 100.
            var order = group.OrderByDescending(d => Set.Dt[d].Score).ThenBy(d => d).ToList();
            var objects = Enumerable.Range(0, Set.Gt.Annotations.Count)
                .Where(a => Set.Gt.Annotations[a].ImageId == group.Key.ImageId && Set.Gt.Annotations[a].CategoryId == group.Key.CategoryId).ToList();
            for (int t = 0; t < thresholds.Count; t++)
            {
                var taken = new HashSet<int>();
                for (int rank = 0; rank < order.Count; rank++)
                {
                    int d = order[rank];
                    if (rank >= 100) { Assert.Equal(CocoMatchOutcome.NotEvaluated, matches.Outcome(d, t)); continue; }
                    // Best free non-crowd object (last one wins a tie), else any crowd region above the threshold.
                    int best = -1;
                    double bestIou = Math.Min(thresholds[t], 1 - 1e-10);
                    foreach (int a in objects.Where(a => !Set.Gt.Annotations[a].IsCrowd && !taken.Contains(a)))
                    {
                        double v = Iou(Set.Dt[d], Set.Gt.Annotations[a], crowd: false);
                        if (v >= bestIou) { bestIou = v; best = a; }
                    }
                    var expected = CocoMatchOutcome.FalsePositive;
                    if (best >= 0) { taken.Add(best); expected = CocoMatchOutcome.TruePositive; }
                    else
                    {
                        bestIou = Math.Min(thresholds[t], 1 - 1e-10);
                        foreach (int a in objects.Where(a => Set.Gt.Annotations[a].IsCrowd))
                        {
                            double v = Iou(Set.Dt[d], Set.Gt.Annotations[a], crowd: true);
                            if (v >= bestIou) { bestIou = v; best = a; }
                        }
                        if (best >= 0) expected = CocoMatchOutcome.Ignored;
                    }
                    Assert.Equal(expected, matches.Outcome(d, t));
                    Assert.Equal(best, matches.MatchedAnnotation(d, t));
                    checkedCount++;
                }
            }
        }
        Assert.True(checkedCount > 10 * 2000, $"only {checkedCount} outcomes checked");
    }

    [Fact]
    public void Every_kind_meets_its_definition()
    {
        var (_, matches) = CocoEvaluator.EvaluateWithMatches(Set.Gt, Set.Dt);
        var errors = DetectionErrors.Classify(Set.Gt, Set.Dt, matches);
        var anns = Set.Gt.Annotations;
        for (int d = 0; d < Set.Dt.Count; d++)
        {
            var r = Set.Dt[d];
            var same = Enumerable.Range(0, anns.Count).Where(a => anns[a].ImageId == r.ImageId && anns[a].CategoryId == r.CategoryId && !anns[a].IsCrowd).ToList();
            var other = Enumerable.Range(0, anns.Count).Where(a => anns[a].ImageId == r.ImageId && anns[a].CategoryId != r.CategoryId && !anns[a].IsCrowd).ToList();
            double maxSame = same.Select(a => Iou(r, anns[a], false)).DefaultIfEmpty(0).Max();
            double maxOther = other.Select(a => Iou(r, anns[a], false)).DefaultIfEmpty(0).Max();
            for (int t = 0; t < 10; t++)
            {
                double thr = Math.Min(CocoEvaluator.IouThresholds[t], 1 - 1e-10);
                switch (errors.Kind(d, t))
                {
                    case DetectionErrorKind.Duplicate:
                        // an object of its class above the threshold, taken by a detection scored at least as high
                        Assert.Contains(same, a => Iou(r, anns[a], false) >= thr && matches.MatchedDetection(a, t) is int m && m >= 0 && m != d && Set.Dt[m].Score >= r.Score);
                        break;
                    case DetectionErrorKind.WrongClass:
                        Assert.True(maxSame < thr && maxOther >= thr);
                        Assert.Equal(maxOther, errors.ConfusedIou(d), 12);
                        break;
                    case DetectionErrorKind.PoorLocalisation:
                        Assert.True(maxSame >= DetectionErrors.BackgroundIou && maxSame < thr && maxOther < thr);
                        break;
                    case DetectionErrorKind.Background:
                        Assert.True(maxSame < DetectionErrors.BackgroundIou && maxOther < thr);
                        break;
                    case DetectionErrorKind.TruePositive:
                        Assert.Equal(CocoMatchOutcome.TruePositive, matches.Outcome(d, t));
                        break;
                }
            }
        }
    }

    // pycocotools bbIou, written out again for the reference matcher.
    private static double Iou(CocoResult d, CocoAnnotation g, bool crowd)
    {
        double iw = Math.Min(d.X + d.Width, g.X + g.Width) - Math.Max(d.X, g.X);
        double ih = Math.Min(d.Y + d.Height, g.Y + g.Height) - Math.Max(d.Y, g.Y);
        if (iw <= 0 || ih <= 0) return 0;
        double inter = iw * ih;
        return inter / (crowd ? d.Width * d.Height : d.Width * d.Height + g.Width * g.Height - inter);
    }
}
