using RetinaSharp.Geometry;
using static RetinaSharp.Tests.Geometry.GeometryFixture;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

public class MatcherTests
{
    [Fact]
    public void Thresholds_and_low_quality_matches_hand_computed()
    {
        using var scope = NewDisposeScope();
        // 2 ground truths x 5 anchors
        var iou = tensor(new float[]
        {
            0.6f, 0.45f, 0.1f, 0.3f, 0.0f,
            0.2f, 0.5f,  0.3f, 0.3f, 0.0f,
        }).view(2, 5);
        Assert.Equal(new long[] { 0, 1, -1, -1, -1 }, ToLongs(new Matcher(allowLowQualityMatches: false).Match(iou)));
        // gt 0's best anchor is 0 (already matched); gt 1's best is anchor 1 (already matched)
        Assert.Equal(new long[] { 0, 1, -1, -1, -1 }, ToLongs(new Matcher().Match(iou)));
        var weak = tensor(new float[] { 0.3f, 0.45f, 0.2f, 0.1f }).view(1, 4);
        Assert.Equal(new long[] { -1, -2, -1, -1 }, ToLongs(new Matcher(allowLowQualityMatches: false).Match(weak)));
        Assert.Equal(new long[] { -1, 0, -1, -1 }, ToLongs(new Matcher().Match(weak)));
        // two anchors tie for the best IoU of the ground truth: both are claimed
        var tie = tensor(new float[] { 0.3f, 0.3f, 0.2f }).view(1, 3);
        Assert.Equal(new long[] { 0, 0, -1 }, ToLongs(new Matcher().Match(tie)));
    }

    [Fact]
    public void No_ground_truth_gives_all_background()
    {
        using var scope = NewDisposeScope();
        var m = new Matcher().Match(zeros(0, 7));
        Assert.Equal(Enumerable.Repeat(Matcher.BelowLowThreshold, 7), ToLongs(m));
        Assert.Equal(ScalarType.Int64, m.dtype);
        Assert.Equal(new long[] { 0 }, new Matcher().Match(zeros(3, 0)).shape);
    }

    [Fact]
    public void Labels_match_torchvision_with_and_without_low_quality_matches()
    {
        using var scope = NewDisposeScope();
        var f = Load("matcher.json");
        var img = f.GetProperty("image_size");
        var feats = f.GetProperty("feature_sizes").EnumerateArray().Select(p => (p[0].GetInt64(), p[1].GetInt64())).ToArray();
        var anchors = cat(AnchorGenerator.RetinaNetDefault().AnchorsPerLevel((img[0].GetInt64(), img[1].GetInt64()), feats), 0);
        Assert.Equal(f.GetProperty("num_anchors").GetInt64(), anchors.shape[0]);
        foreach (var c in f.GetProperty("cases").EnumerateArray())
        {
            var iou = BoxOps.Iou(Matrix(c.GetProperty("gt"), 4), anchors);
            Assert.Equal(c.GetProperty("iou_sum").GetDouble(), iou.to_type(ScalarType.Float64).sum().item<double>(), 3);
            Assert.Equal(Longs(c.GetProperty("matches")), ToLongs(new Matcher(0.5, 0.4, false).Match(iou)));
            Assert.Equal(Longs(c.GetProperty("matches_low_quality")), ToLongs(new Matcher(0.5, 0.4, true).Match(iou)));
        }
    }

    [Fact]
    public void Low_threshold_above_high_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => new Matcher(0.4, 0.5));
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => new Matcher().Match(zeros(3)));
    }
}
