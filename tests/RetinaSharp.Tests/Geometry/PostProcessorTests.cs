using RetinaSharp.Geometry;
using RetinaSharp.Modeling;
using static RetinaSharp.Tests.Geometry.GeometryFixture;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

public class PostProcessorTests
{
    private static (Tensor[] Logits, Tensor[] Deltas, Tensor[] Anchors, (long, long) Resized, RetinaNetPostProcessor P, System.Text.Json.JsonElement F) Case()
    {
        var f = Load("postprocess.json");
        int k = f.GetProperty("num_classes").GetInt32();
        var img = f.GetProperty("image_size");
        var feats = f.GetProperty("feature_sizes").EnumerateArray().Select(p => (p[0].GetInt64(), p[1].GetInt64())).ToArray();
        var anchors = AnchorGenerator.RetinaNetDefault().AnchorsPerLevel((img[0].GetInt64(), img[1].GetInt64()), feats);
        var logits = f.GetProperty("logits").EnumerateArray().Select(e => Matrix(e, k)).ToArray();
        var deltas = f.GetProperty("deltas").EnumerateArray().Select(e => Matrix(e, 4)).ToArray();
        var s = f.GetProperty("settings");
        var p = new RetinaNetPostProcessor(null, s.GetProperty("score_thresh").GetDouble(), s.GetProperty("topk_candidates").GetInt32(),
            s.GetProperty("nms_thresh").GetDouble(), s.GetProperty("detections_per_img").GetInt32());
        var r = f.GetProperty("resized_size");
        return (logits, deltas, anchors, (r[0].GetInt64(), r[1].GetInt64()), p, f);
    }

    [Fact]
    public void Detections_match_torchvision_postprocess_detections()
    {
        using var scope = NewDisposeScope();
        var (logits, deltas, anchors, resized, p, f) = Case();
        var d = p.Process(logits, deltas, anchors, resized);
        Assert.Equal(Longs(f.GetProperty("labels")), ToLongs(d.Labels));
        AssertClose(Floats(f.GetProperty("scores")), d.Scores, 1e-6, 1e-7);
        AssertClose(Floats(f.GetProperty("boxes")), d.Boxes, 1e-5, 1e-4);
    }

    [Fact]
    public void Tensor_path_gives_the_same_detections_as_the_cpu_path()
    {
        using var scope = NewDisposeScope();
        var (logits, deltas, anchors, resized, p, _) = Case();
        var fast = p.Process(logits, deltas, anchors, resized);
        // float64 logits take the tensor path (the CPU fast path is float32 only)
        var slow = p.Process(logits.Select(l => l.to_type(ScalarType.Float64)).ToArray(), deltas, anchors, resized);
        Assert.Equal(ToLongs(fast.Labels), ToLongs(slow.Labels));
        AssertClose(ToFloats(fast.Scores), slow.Scores, 1e-6, 1e-7);
        AssertClose(ToFloats(fast.Boxes), slow.Boxes, 1e-5, 1e-4);
    }

    [Fact]
    public void Nothing_above_the_threshold_gives_no_detections()
    {
        using var scope = NewDisposeScope();
        var anchors = new[] { tensor(new float[] { 0, 0, 10, 10, 5, 5, 20, 20 }).view(2, 4) };
        var d = new RetinaNetPostProcessor().Process(new[] { full(2, 4, -10f) }, new[] { zeros(2, 4) }, anchors, (32, 32));
        Assert.Equal(0, d.Count);
        Assert.Equal(new long[] { 0, 4 }, d.Boxes.shape);
    }

    [Fact]
    public void Top_k_selection_keeps_the_largest_values_ties_by_lower_index()
    {
        var x = new float[] { 0.5f, 3f, 2f, 3f, -1f, 2f, 7f };
        var candidates = new[] { 0, 1, 2, 3, 5, 6 };
        Assert.Equal(new[] { 6, 1, 3, 2 }, RetinaNetPostProcessor.TopByValue(x, candidates, 4));
        Assert.Equal(new[] { 6, 1, 3, 2, 5, 0 }, RetinaNetPostProcessor.TopByValue(x, candidates, 10));
        var y = Enumerable.Range(0, 37).Select(i => (float)(i % 5)).ToArray();
        Assert.Equal(new[] { 4, 9, 14, 19, 24 }, RetinaNetPostProcessor.TopKAbove(y, 2.5f, 5));
    }

    [Theory]
    [InlineData(1, 10, false)]
    [InlineData(2, 1000, false)]
    [InlineData(3, 25, true)]
    [InlineData(4, 0, true)]
    public void One_pass_top_k_equals_sorting_everything(int seed, int k, bool ties)
    {
        var rng = new Random(seed);
        var x = new float[50_003];
        for (int i = 0; i < x.Length; i++) x[i] = ties ? rng.Next(40) : (float)rng.NextDouble() * 10 - 5;
        x[17] = float.NaN;
        // oracle: all indices above the bound, sorted by value (descending) then index
        var expected = Enumerable.Range(0, x.Length).Where(i => x[i] > -1f)
            .OrderByDescending(i => x[i]).ThenBy(i => i).Take(k).ToArray();
        Assert.Equal(expected, RetinaNetPostProcessor.TopKAbove(x, -1f, k));
        Assert.Equal(expected, RetinaNetPostProcessor.TopByValue(x, Enumerable.Range(0, x.Length).Where(i => x[i] > -1f).ToArray(), k));
    }

    [Fact]
    public void Mismatched_levels_are_rejected()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => new RetinaNetPostProcessor().Process(
            new[] { zeros(4, 3) }, new[] { zeros(5, 4) }, new[] { zeros(4, 4) }, (10, 10)));
        Assert.Equal("boxDeltasPerLevel", ex.ParamName);
    }
}
