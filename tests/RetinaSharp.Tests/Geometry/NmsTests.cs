using RetinaSharp.Geometry;
using static RetinaSharp.Tests.Geometry.GeometryFixture;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

public class NmsTests
{
    [Fact]
    public void Greedy_hand_computed()
    {
        using var scope = NewDisposeScope();
        var boxes = tensor(new float[]
        {
            0, 0, 10, 10,     // 0: score 0.9, kept
            1, 0, 11, 10,     // 1: IoU 90/110 = 0.82 with box 0 -> dropped
            20, 20, 30, 30,   // 2: far away -> kept
            0, 5, 10, 15,     // 3: IoU 50/150 = 0.33 with box 0 -> kept at 0.5, dropped at 0.3
        }).view(4, 4);
        var scores = tensor(new float[] { 0.9f, 0.8f, 0.3f, 0.7f });
        Assert.Equal(new long[] { 0, 3, 2 }, ToLongs(NonMaxSuppression.Greedy(boxes, scores, 0.5)));
        Assert.Equal(new long[] { 0, 2 }, ToLongs(NonMaxSuppression.Greedy(boxes, scores, 0.3)));
        // IoU exactly at the threshold is kept (strictly greater suppresses); the float32 IoU 50f / 150f is
        // slightly above 1/3, so a threshold of exactly 1/3 drops box 3, as torchvision's float kernel does
        Assert.Equal(new long[] { 0, 3, 2 }, ToLongs(NonMaxSuppression.Greedy(boxes, scores, 50f / 150f)));
        Assert.Equal(new long[] { 0, 2 }, ToLongs(NonMaxSuppression.Greedy(boxes, scores, 1.0 / 3)));
        // labels separate boxes 0 and 1
        var labels = tensor(new long[] { 0, 1, 0, 0 });
        Assert.Equal(new long[] { 0, 1, 3, 2 }, ToLongs(NonMaxSuppression.Batched(boxes, scores, labels, 0.5)));
    }

    [Fact]
    public void Tied_scores_keep_the_lower_index()
    {
        using var scope = NewDisposeScope();
        var boxes = tensor(new float[] { 0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10 }).view(3, 4);
        var scores = tensor(new float[] { 0.5f, 0.7f, 0.7f });
        Assert.Equal(new long[] { 1 }, ToLongs(NonMaxSuppression.Greedy(boxes, scores, 0.5)));
    }

    [Fact]
    public void Keeps_match_torchvision_on_random_boxes_with_ties()
    {
        using var scope = NewDisposeScope();
        foreach (var c in Load("nms.json").GetProperty("cases").EnumerateArray())
        {
            var boxes = Matrix(c.GetProperty("boxes"), 4);
            var scores = tensor(Floats(c.GetProperty("scores")));
            var labels = tensor(Longs(c.GetProperty("labels")));
            foreach (var k in c.GetProperty("keeps").EnumerateArray())
            {
                double thr = k.GetProperty("threshold").GetDouble();
                Assert.Equal(Longs(k.GetProperty("keep")), ToLongs(NonMaxSuppression.Greedy(boxes, scores, thr)));
                var batched = k.GetProperty("batched_keep");
                if (batched.ValueKind != System.Text.Json.JsonValueKind.Null)
                    Assert.Equal(Longs(batched), ToLongs(NonMaxSuppression.Batched(boxes, scores, labels, thr)));
            }
        }
    }

    [Fact]
    public void Double_precision_boxes_give_the_same_keeps()
    {
        using var scope = NewDisposeScope();
        var c = Load("nms.json").GetProperty("cases")[1];
        var boxes = Matrix(c.GetProperty("boxes"), 4).to_type(ScalarType.Float64);
        var scores = tensor(Floats(c.GetProperty("scores")));
        var k = c.GetProperty("keeps")[1];
        Assert.Equal(Longs(k.GetProperty("keep")), ToLongs(NonMaxSuppression.Greedy(boxes, scores, 0.5)));
    }

    [FsCheck.Xunit.Property(MaxTest = 30)]
    public bool Kept_boxes_never_overlap_above_the_threshold_and_every_dropped_box_has_a_cause(int seed, byte thrByte)
    {
        using var scope = NewDisposeScope();
        double thr = 0.1 + 0.8 * thrByte / 255.0;
        var g = new TorchSharp.torch.Generator((ulong)(uint)seed);
        int n = 150;
        var xy = rand(n, 2, generator: g) * 100;
        var boxes = cat(new[] { xy, xy + rand(n, 2, generator: g) * 40 + 1 }, 1);
        var scores = (rand(n, generator: g) * 8).floor();
        var labels = randint(0, 3, n, generator: g);
        var keep = NonMaxSuppression.Batched(boxes, scores, labels, thr);
        var keepSet = ToLongs(keep).ToHashSet();
        var iou = BoxOps.Iou(boxes, boxes);
        var sameLabel = labels.unsqueeze(1).eq(labels.unsqueeze(0));
        var conflict = iou.gt(thr).logical_and(sameLabel);
        var k = conflict.index_select(0, keep).index_select(1, keep);
        if (k.logical_and(eye(keep.shape[0], dtype: ScalarType.Bool).logical_not()).any().item<bool>()) return false;
        var keptScores = ToFloats(scores.index_select(0, keep));
        for (int i = 1; i < keptScores.Length; i++) if (keptScores[i] > keptScores[i - 1]) return false;
        // each dropped box conflicts with a kept box of at least its score
        var s = ToFloats(scores);
        for (long j = 0; j < n; j++)
        {
            if (keepSet.Contains(j)) continue;
            bool caused = keepSet.Any(i => conflict[i, j].item<bool>() && s[i] >= s[j]);
            if (!caused) return false;
        }
        return true;
    }

    [Fact]
    public void Empty_input_gives_empty_keep()
    {
        using var scope = NewDisposeScope();
        var keep = NonMaxSuppression.Greedy(zeros(0, 4), zeros(0), 0.5);
        Assert.Equal(new long[] { 0 }, keep.shape);
        Assert.Equal(ScalarType.Int64, keep.dtype);
        Assert.Equal(new long[] { 0 }, NonMaxSuppression.Batched(zeros(0, 4), zeros(0), zeros(0, dtype: ScalarType.Int64), 0.5).shape);
    }

    [Fact]
    public void Bad_shapes_are_rejected()
    {
        using var scope = NewDisposeScope();
        Assert.Equal("scores", Assert.Throws<ArgumentException>(() => NonMaxSuppression.Greedy(zeros(3, 4), zeros(2), 0.5)).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => NonMaxSuppression.Batched(zeros(3, 4), zeros(3), zeros(3), 0.5)).ParamName);
    }
}
