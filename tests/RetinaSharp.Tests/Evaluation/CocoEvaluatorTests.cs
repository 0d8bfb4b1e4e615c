// Hand-computed COCO AP cases (pycocotools COCOeval bbox semantics).
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.IO;

namespace RetinaSharp.Tests.Evaluation;

public class CocoEvaluatorTests
{
    private const double Tol = 1e-9;

    /// <summary>Builds ground truth from (image, category, XYWH box, crowd) tuples; the area is w*h unless given.</summary>
    private sealed class Builder
    {
        private readonly List<CocoImage> _images = new();
        private readonly List<CocoAnnotation> _anns = new();
        private readonly List<CocoCategory> _cats = new();
        private readonly List<CocoResult> _dets = new();
        private long _nextId = 1;

        public Builder Image(long id) { _images.Add(new CocoImage(id, $"{id}.jpg", 640, 480)); return this; }
        public Builder Category(long id, string? name = null) { _cats.Add(new CocoCategory(id, name ?? $"c{id}")); return this; }
        public Builder Gt(long image, long cat, double x, double y, double w, double h, bool crowd = false, double? area = null, long? id = null)
        {
            _anns.Add(new CocoAnnotation(id ?? _nextId++, image, cat, x, y, w, h, area ?? w * h, crowd));
            return this;
        }
        public Builder Dt(long image, long cat, double x, double y, double w, double h, double score)
        {
            _dets.Add(new CocoResult(image, cat, x, y, w, h, score));
            return this;
        }
        public CocoInstances Instances => new(_images, _anns, _cats);
        public IReadOnlyList<CocoResult> Detections => _dets;
        public CocoEvaluation Evaluate() => CocoEvaluator.Evaluate(Instances, Detections);
    }

    [Fact]
    public void PerfectDetectionsGiveApOne()
    {
        var b = new Builder().Image(1).Image(2).Category(1).Category(2)
            .Gt(1, 1, 10, 10, 50, 50).Gt(1, 2, 100, 100, 40, 60).Gt(2, 1, 0, 0, 200, 150)
            .Dt(1, 1, 10, 10, 50, 50, 0.9).Dt(1, 2, 100, 100, 40, 60, 0.8).Dt(2, 1, 0, 0, 200, 150, 0.7);
        var s = b.Evaluate().Stats;
        // precision = tp / (tp + fp + 2^-52), so "1" is 1 - 2^-52: within 1e-15.
        Assert.Equal(1.0, s.Ap, 12);
        Assert.Equal(1.0, s.Ap50, 12);
        Assert.Equal(1.0, s.Ap75, 12);
        Assert.Equal(-1.0, s.ApSmall); // no small objects: -1, as pycocotools
        Assert.Equal(1.0, s.ApMedium, 12);
        Assert.Equal(1.0, s.ApLarge, 12);
        Assert.Equal(1.0, s.Ar100, 12);
        Assert.Equal(-1.0, s.ArSmall);
        // maxDets=1: image 1 has one detection per category, so all three are found.
        Assert.Equal(1.0, s.Ar1, 12);
    }

    [Fact]
    public void FalsePositiveRankedAboveTruePositiveHalvesPrecision()
    {
        // sorted: FP (0.9), TP (0.8): tp=[0,1], fp=[1,1], rc=[0,1], pr=[0,0.5] -> envelope 0.5 at every recall point.
        var b = new Builder().Image(1).Category(1)
            .Gt(1, 1, 100, 100, 50, 50)
            .Dt(1, 1, 300, 300, 50, 50, 0.9).Dt(1, 1, 100, 100, 50, 50, 0.8);
        var e = b.Evaluate();
        Assert.Equal(0.5, e.Stats.Ap, Tol);
        Assert.Equal(0.5, e.Stats.Ap50, Tol);
        Assert.Equal(0.0, e.Stats.Ar1, Tol);   // only the false positive is kept
        Assert.Equal(1.0, e.Stats.Ar10, Tol);
        Assert.Equal(1.0, e.Stats.Ar100, Tol);
        Assert.Equal(0.5, e.PerCategory[0].Ap, Tol);
    }

    [Fact]
    public void DuplicateOfOneObjectIsAFalsePositive()
    {
        // objects A, B; detections A (0.9), A again (0.8), B (0.7): tp=[1,1,2], fp=[0,1,1], rc=[.5,.5,1],
        // pr=[1,.5,2/3] -> envelope [1,2/3,2/3]: recall points 0..0.50 (51) read 1, 0.51..1 (50) read 2/3.
        var b = new Builder().Image(1).Category(1)
            .Gt(1, 1, 0, 0, 50, 50).Gt(1, 1, 200, 200, 50, 50)
            .Dt(1, 1, 0, 0, 50, 50, 0.9).Dt(1, 1, 0, 0, 50, 50, 0.8).Dt(1, 1, 200, 200, 50, 50, 0.7);
        var e = b.Evaluate();
        Assert.Equal((51 + 50 * 2.0 / 3) / 101, e.Stats.Ap, Tol);
        Assert.Equal(1.0, e.Stats.Ar100, Tol);
    }

    [Fact]
    public void ObjectNeverDetectedCapsRecallAtHalf()
    {
        // two objects, one found at precision 1: recall points 0..0.50 read 1, the 50 above read 0.
        var b = new Builder().Image(1).Category(1)
            .Gt(1, 1, 0, 0, 50, 50).Gt(1, 1, 200, 200, 50, 50)
            .Dt(1, 1, 0, 0, 50, 50, 0.9);
        var e = b.Evaluate();
        Assert.Equal(51.0 / 101, e.Stats.Ap, Tol);
        Assert.Equal(0.5, e.Stats.Ar100, Tol);
        Assert.Equal(2, e.PerCategory[0].GroundTruthCount);
    }

    [Fact]
    public void CrowdRegionsAreMatchedByIntersectionOverDetectionAreaAndIgnored()
    {
        // crowd [0,0,100,100]; two detections inside it (IoU with a crowd = inter / det area = 1, the ordinary IoU
        // would be 0.25) are ignored, however many; the crowd is not an object to find.
        var b = new Builder().Image(1).Category(1)
            .Gt(1, 1, 0, 0, 100, 100, crowd: true).Gt(1, 1, 300, 300, 50, 50)
            .Dt(1, 1, 0, 0, 50, 50, 0.95).Dt(1, 1, 50, 50, 50, 50, 0.9).Dt(1, 1, 300, 300, 50, 50, 0.8);
        var e = b.Evaluate();
        Assert.Equal(1.0, e.Stats.Ap, 12);
        Assert.Equal(1.0, e.Stats.Ar100, Tol);
        Assert.Equal(1, e.PerCategory[0].GroundTruthCount);

        // a detection half inside the crowd (inter / det area = 0.5) is ignored at IoU 0.50 only, a false positive above.
        var half = new Builder().Image(1).Category(1)
            .Gt(1, 1, 0, 0, 100, 100, crowd: true).Gt(1, 1, 300, 300, 50, 50)
            .Dt(1, 1, 50, 0, 100, 100, 0.95).Dt(1, 1, 300, 300, 50, 50, 0.8).Evaluate();
        Assert.Equal(1.0, half.Stats.Ap50, 12);
        // IoU 0.55..0.95: FP then TP -> precision 0.5 everywhere.
        Assert.Equal((1.0 + 9 * 0.5) / 10, half.Stats.Ap, Tol);
    }

    [Fact]
    public void AreaRangesUseTheGroundTruthAreaAndIgnoreOutsiders()
    {
        // small (16x16 = 256), medium (50x50), large (200x200) objects; small and large found, medium missed, and a
        // small false positive (10x10) ranked first.
        var b = new Builder().Image(1).Category(1)
            .Gt(1, 1, 0, 0, 16, 16).Gt(1, 1, 100, 0, 50, 50).Gt(1, 1, 300, 200, 200, 200)
            .Dt(1, 1, 600, 0, 10, 10, 0.95).Dt(1, 1, 0, 0, 16, 16, 0.9).Dt(1, 1, 300, 200, 200, 200, 0.8);
        var s = b.Evaluate().Stats;
        // all: tp=[0,1,2], fp=[1,1,1], rc=[0,1/3,2/3], pr=[0,.5,2/3] -> 2/3 up to recall 0.66 (67 points), then 0.
        Assert.Equal(67 * (2.0 / 3) / 101, s.Ap, Tol);
        // small: FP counts (it is small), the large match is ignored: pr [0, .5, .5] -> 0.5.
        Assert.Equal(0.5, s.ApSmall, Tol);
        // medium: every detection is ignored (matched to ignored ground truth, or unmatched and not medium): 0.
        Assert.Equal(0.0, s.ApMedium, Tol);
        // large: the unmatched small FP and the small match are ignored: precision 1.
        Assert.Equal(1.0, s.ApLarge, 12);
        Assert.Equal(1.0, s.ArSmall, Tol);
        Assert.Equal(0.0, s.ArMedium, Tol);
        Assert.Equal(1.0, s.ArLarge, Tol);
        Assert.Equal(2.0 / 3, s.Ar100, Tol);
    }

    [Fact]
    public void AreaComesFromTheAnnotationFieldNotTheBox()
    {
        // a 100x100 box whose segment area is 500: it is small, not large.
        var s = new Builder().Image(1).Category(1)
            .Gt(1, 1, 0, 0, 100, 100, area: 500)
            .Dt(1, 1, 0, 0, 100, 100, 0.9).Evaluate().Stats;
        Assert.Equal(1.0, s.ApSmall, 12);
        Assert.Equal(-1.0, s.ApLarge);
    }

    [Fact]
    public void CategoryWithoutGroundTruthIsMinusOneAndLeftOutOfTheMean()
    {
        // category 2 is listed but has no ground truth; its detections do not lower the mean.
        var e = new Builder().Image(1).Category(1, "cat").Category(2, "dog")
            .Gt(1, 1, 0, 0, 50, 50)
            .Dt(1, 1, 0, 0, 50, 50, 0.9).Dt(1, 2, 200, 200, 50, 50, 0.99).Evaluate();
        Assert.Equal(1.0, e.Stats.Ap, 12);
        Assert.Equal(-1.0, e.PerCategory[1].Ap);
        Assert.Equal("dog", e.PerCategory[1].Name);
        Assert.Equal(2L, e.PerCategory[1].CategoryId);
        Assert.Equal(-1.0, e.Precision(0, 0, 1, 0, 2));
        Assert.Equal(-1.0, e.Recall(0, 1, 0, 2));
    }

    [Fact]
    public void MaxDetsCutsEachImageAfterTheHighestScores()
    {
        // 12 objects found in decreasing score order: AR1 = 1/12, AR10 = 10/12, AR100 = 1.
        var b = new Builder().Image(1).Category(1);
        for (int j = 0; j < 12; j++) b.Gt(1, 1, j * 50, 0, 40, 40).Dt(1, 1, j * 50, 0, 40, 40, 0.9 - j * 0.01);
        var s = b.Evaluate().Stats;
        Assert.Equal(1.0 / 12, s.Ar1, Tol);
        Assert.Equal(10.0 / 12, s.Ar10, Tol);
        Assert.Equal(1.0, s.Ar100, Tol);

        // only the first 100 detections of an image count: a true positive ranked 101st is dropped.
        var flood = new Builder().Image(1).Category(1).Gt(1, 1, 0, 0, 40, 40);
        for (int j = 0; j < 100; j++) flood.Dt(1, 1, 500, 400, 10, 10, 0.9);
        flood.Dt(1, 1, 0, 0, 40, 40, 0.1);
        var f = flood.Evaluate().Stats;
        Assert.Equal(0.0, f.Ap, Tol);
        Assert.Equal(0.0, f.Ar100, Tol);
    }

    [Fact]
    public void ScoreTiesKeepFileOrder()
    {
        // equal scores: the FP listed first ranks first (stable sort), so precision is 0.5; listed second, 1.
        var fpFirst = new Builder().Image(1).Category(1).Gt(1, 1, 0, 0, 50, 50)
            .Dt(1, 1, 300, 300, 50, 50, 0.5).Dt(1, 1, 0, 0, 50, 50, 0.5).Evaluate();
        var tpFirst = new Builder().Image(1).Category(1).Gt(1, 1, 0, 0, 50, 50)
            .Dt(1, 1, 0, 0, 50, 50, 0.5).Dt(1, 1, 300, 300, 50, 50, 0.5).Evaluate();
        Assert.Equal(0.5, fpFirst.Stats.Ap, Tol);
        Assert.Equal(1.0, tpFirst.Stats.Ap, 12);
    }

    [Fact]
    public void AnnotationIdsOfAnyValueWork()
    {
        // pycocotools reads id 0 as "unmatched"; here ids are not sentinels.
        var e = new Builder().Image(0).Image(-5).Category(0)
            .Gt(0, 0, 0, 0, 50, 50, id: 0).Gt(-5, 0, 0, 0, 50, 50, id: -1)
            .Dt(0, 0, 0, 0, 50, 50, 0.9).Dt(-5, 0, 0, 0, 50, 50, 0.8).Evaluate();
        Assert.Equal(1.0, e.Stats.Ap, 12);
        Assert.Equal(new long[] { -5, 0 }, e.ImageIds);
    }

    [Fact]
    public void IouThresholdsSplitAPartialMatch()
    {
        // detection [0,0,50,60] on object [0,0,50,50]: IoU = 2500/3000 = 0.8333: a match at 0.50..0.80 (7 of 10
        // thresholds), a miss at 0.85..0.95.
        var s = new Builder().Image(1).Category(1).Gt(1, 1, 0, 0, 50, 50).Dt(1, 1, 0, 0, 50, 60, 0.9).Evaluate().Stats;
        Assert.Equal(0.7, s.Ap, Tol);
        Assert.Equal(1.0, s.Ap75, 12);
        Assert.Equal(0.7, s.Ar100, Tol);
    }

    [Fact]
    public void UnknownImageOrCategoryInResultsNamesRecordAndField()
    {
        var gt = new Builder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10).Instances;
        var badImage = new[] { new CocoResult(1, 1, 0, 0, 10, 10, 0.5), new CocoResult(7, 1, 0, 0, 10, 10, 0.5) };
        var ex = Assert.Throws<DataFormatException>(() => CocoEvaluator.Evaluate(gt, badImage, "results.json"));
        Assert.Equal("results.json", ex.File);
        Assert.Equal("result #1 (image_id 7)", ex.Record);
        Assert.Equal("image_id", ex.Field);
        Assert.Contains("7", ex.Problem);

        var badCategory = new[] { new CocoResult(1, 3, 0, 0, 10, 10, 0.5) };
        var ex2 = Assert.Throws<DataFormatException>(() => CocoEvaluator.Evaluate(gt, badCategory, "results.json"));
        Assert.Equal("category_id", ex2.Field);
        Assert.Equal("result #0 (image_id 1)", ex2.Record);

        var negative = new[] { new CocoResult(1, 1, 0, 0, -10, 10, 0.5) };
        Assert.Equal("bbox", Assert.Throws<DataFormatException>(() => CocoEvaluator.Evaluate(gt, negative)).Field);
        var nanScore = new[] { new CocoResult(1, 1, 0, 0, 10, 10, double.NaN) };
        Assert.Equal("score", Assert.Throws<DataFormatException>(() => CocoEvaluator.Evaluate(gt, nanScore)).Field);
    }

    [Fact]
    public void BadResultsFileRecordsNameRecordAndField()
    {
        string dir = Path.Combine(Path.GetTempPath(), "retina-eval-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string negative = Path.Combine(dir, "neg.json");
            File.WriteAllText(negative, """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}, {"image_id": 4, "category_id": 1, "bbox": [0, 0, -3, 10], "score": 0.5}]""");
            var ex = Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(negative));
            Assert.Equal("result #1 (image_id 4)", ex.Record);
            Assert.Equal("bbox", ex.Field);
            Assert.Contains("-3", ex.Message);

            string score = Path.Combine(dir, "score.json");
            File.WriteAllText(score, """[{"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": "high"}]""");
            var ex2 = Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(score));
            Assert.Equal("result #0 (image_id 2)", ex2.Record);
            Assert.Equal("score", ex2.Field);
            Assert.Contains("high", ex2.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void SummaryIsPrintedAsPycocotoolsPrintsIt()
    {
        var e = new Builder().Image(1).Category(1)
            .Gt(1, 1, 100, 100, 50, 50)
            .Dt(1, 1, 300, 300, 50, 50, 0.9).Dt(1, 1, 100, 100, 50, 50, 0.8).Evaluate();
        string expected =
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.500\n" +
            " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.500\n" +
            " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.500\n" +
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n" +
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.500\n" +
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n" +
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000\n" +
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 1.000\n" +
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000\n" +
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n" +
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 1.000\n" +
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n";
        Assert.Equal(expected, e.Summary());
    }

    [Theory]
    [InlineData(0.0625, "0.062")]   // exact half: Python rounds to even
    [InlineData(0.1875, "0.188")]
    [InlineData(0.6666666, "0.667")]
    [InlineData(-1.0, "-1.000")]
    [InlineData(0.0005, "0.001")]   // 0.0005 is slightly above the half in binary
    public void FixedFormatRoundsLikePython(double value, string expected) =>
        Assert.Equal(expected, CocoEvaluation.Fixed(value, 3));

    [Fact]
    public void JsonReportHoldsStatsAndPerCategoryAp()
    {
        var e = new Builder().Image(1).Category(3, "cat")
            .Gt(1, 3, 0, 0, 50, 50).Dt(1, 3, 0, 0, 50, 50, 0.9).Evaluate();
        using var doc = System.Text.Json.JsonDocument.Parse(e.ToJson());
        var root = doc.RootElement;
        Assert.Equal(1.0, root.GetProperty("stats").GetProperty("AP").GetDouble(), 12);
        Assert.Equal(-1.0, root.GetProperty("stats").GetProperty("APs").GetDouble());
        var cat = root.GetProperty("per_category")[0];
        Assert.Equal(3, cat.GetProperty("category_id").GetInt64());
        Assert.Equal("cat", cat.GetProperty("name").GetString());
        Assert.Equal(10, root.GetProperty("pr_curves").GetProperty("curves").GetArrayLength());
        Assert.Equal(101, root.GetProperty("pr_curves").GetProperty("recall").GetArrayLength());
        Assert.Equal(1, cat.GetProperty("num_ground_truth").GetInt32());
        Assert.Equal(["iou_type", "num_images", "stats", "per_category", "pr_curves"], root.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void JsonReportAppendsTheRunObjectWhenGiven()
    {
        var e = new Builder().Image(1).Image(2).Category(3, "cat")
            .Gt(1, 3, 0, 0, 50, 50).Gt(2, 3, 10, 10, 40, 40).Dt(1, 3, 0, 0, 50, 50, 0.9).Evaluate();
        using var doc = System.Text.Json.JsonDocument.Parse(e.ToJson(new System.Text.Json.Nodes.JsonObject { ["iterations"] = 7, ["quick"] = true }));
        var root = doc.RootElement;
        Assert.Equal(["iou_type", "num_images", "stats", "per_category", "pr_curves", "run"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(2, root.GetProperty("num_images").GetInt32());
        Assert.Equal(2, root.GetProperty("per_category")[0].GetProperty("num_ground_truth").GetInt32());
        Assert.Equal(7, root.GetProperty("run").GetProperty("iterations").GetInt32());
        Assert.True(root.GetProperty("run").GetProperty("quick").GetBoolean());
    }
}
