// Properties of the COCO evaluator on random sets: exact copies of the ground truth score 1, and the order of
// detections with distinct scores does not matter.
using FsCheck.Xunit;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Tests.Evaluation;

public class CocoEvaluatorPropertyTests
{
    private static (CocoInstances Gt, List<CocoResult> Copies) RandomSet(int seed)
    {
        var rng = new Random(seed);
        int images = rng.Next(1, 8), categories = rng.Next(1, 5);
        var imgs = Enumerable.Range(0, images).Select(i => new CocoImage(1000 - 13 * i, $"{i}.jpg", 640, 480)).ToList();
        var cats = Enumerable.Range(0, categories).Select(c => new CocoCategory(3 * c + 1, $"c{c}")).ToList();
        var anns = new List<CocoAnnotation>();
        var dets = new List<CocoResult>();
        long id = rng.Next(-5, 5);
        foreach (var im in imgs)
            for (int j = rng.Next(0, 12); j > 0; j--)
            {
                double w = 1 + rng.NextDouble() * 300, h = 1 + rng.NextDouble() * 300;
                double x = rng.NextDouble() * 300, y = rng.NextDouble() * 200;
                long cat = cats[rng.Next(categories)].Id;
                anns.Add(new CocoAnnotation(id++, im.Id, cat, x, y, w, h, w * h * rng.NextDouble(), false));
                dets.Add(new CocoResult(im.Id, cat, x, y, w, h, rng.NextDouble()));
            }
        return (new CocoInstances(imgs, anns, cats), dets);
    }

    [Property(MaxTest = 40)]
    public bool ExactCopiesOfTheGroundTruthScoreOne(int seed)
    {
        var (gt, copies) = RandomSet(seed);
        var e = CocoEvaluator.Evaluate(gt, copies);
        if (gt.Annotations.Count == 0) return e.Stats.Ap == -1;
        return Math.Abs(e.Stats.Ap - 1) < 1e-12 && Math.Abs(e.Stats.Ar100 - 1) < 1e-12
            && e.PerCategory.All(c => c.GroundTruthCount == 0 ? c.Ap == -1 : Math.Abs(c.Ap - 1) < 1e-12);
    }

    [Property(MaxTest = 40)]
    public bool OrderOfDetectionsWithDistinctScoresDoesNotMatter(int seed)
    {
        var (gt, copies) = RandomSet(seed);
        var rng = new Random(seed ^ 0x5bd1e995);
        // jitter boxes so that some miss, then shuffle
        var dets = copies.Select(d => d with { X = d.X + rng.NextDouble() * 20 - 10, Width = d.Width * (0.7 + 0.6 * rng.NextDouble()) }).ToList();
        var shuffled = dets.OrderBy(_ => rng.Next()).ToList();
        var a = CocoEvaluator.Evaluate(gt, dets).Stats.ToArray();
        var b = CocoEvaluator.Evaluate(gt, shuffled).Stats.ToArray();
        return a.Zip(b).All(p => p.First == p.Second);
    }
}
