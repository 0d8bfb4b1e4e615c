using RetinaSharp.Geometry;
using static RetinaSharp.Tests.Geometry.GeometryFixture;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

public class BoxOpsTests
{
    private static Tensor B(params float[] v) => tensor(v).view(-1, 4);

    [Fact]
    public void Conversions_match_hand_computed_values_and_round_trip()
    {
        using var scope = NewDisposeScope();
        var xyxy = B(10, 20, 40, 80, 0, 0, 0, 0);
        AssertExact(new float[] { 10, 20, 30, 60, 0, 0, 0, 0 }, BoxOps.XyxyToXywh(xyxy));
        AssertExact(new float[] { 25, 50, 30, 60, 0, 0, 0, 0 }, BoxOps.XyxyToCxcywh(xyxy));
        AssertExact(new float[] { 10, 20, 40, 80, 0, 0, 0, 0 }, BoxOps.XywhToXyxy(BoxOps.XyxyToXywh(xyxy)));
        AssertExact(new float[] { 10, 20, 40, 80, 0, 0, 0, 0 }, BoxOps.CxcywhToXyxy(BoxOps.XyxyToCxcywh(xyxy)));
    }

    [Fact]
    public void Area_iou_and_giou_of_two_offset_squares()
    {
        using var scope = NewDisposeScope();
        var a = B(0, 0, 10, 10);
        var b = B(5, 5, 15, 15, 20, 20, 30, 30);
        AssertExact(new float[] { 100 }, BoxOps.Area(a));
        // intersection 25, union 175; enclosing boxes 225 and 900
        AssertClose(new[] { 25f / 175, 0f }, BoxOps.Iou(a, b));
        AssertClose(new[] { 25f / 175 - 50f / 225, 0f - (900f - 200) / 900 }, BoxOps.GeneralizedIou(a, b));
        AssertClose(new[] { 1 - (25f / 175 - 50f / 225) }, BoxOps.GeneralizedIouLoss(a, b[0].unsqueeze(0)));
    }

    [Fact]
    public void Iou_and_giou_match_torchvision()
    {
        using var scope = NewDisposeScope();
        var f = Load("matcher.json").GetProperty("pair");
        var b1 = Matrix(f.GetProperty("boxes1"), 4);
        var b2 = Matrix(f.GetProperty("boxes2"), 4);
        AssertClose(Floats(f.GetProperty("area1")), BoxOps.Area(b1));
        AssertClose(Floats(f.GetProperty("iou")), BoxOps.Iou(b1, b2), 1e-6, 1e-7);
        AssertClose(Floats(f.GetProperty("giou")), BoxOps.GeneralizedIou(b1, b2), 1e-6, 1e-7);
    }

    [Fact]
    public void Giou_loss_matches_torchvision()
    {
        using var scope = NewDisposeScope();
        var f = Load("giou_loss.json");
        var loss = BoxOps.GeneralizedIouLoss(Matrix(f.GetProperty("boxes1"), 4), Matrix(f.GetProperty("boxes2"), 4));
        AssertClose(Floats(f.GetProperty("loss")), loss, 1e-6, 1e-7);
        Assert.Equal(0f, ToFloats(loss)[0], 6); // identical boxes
    }

    [Fact]
    public void Clip_cuts_boxes_at_the_image_border()
    {
        using var scope = NewDisposeScope();
        var clipped = BoxOps.ClipToImage(B(-5, -3, 50, 70, 120, 10, 130, 20), height: 60, width: 100);
        AssertExact(new float[] { 0, 0, 50, 60, 100, 10, 100, 20 }, clipped);
    }

    [Fact]
    public void Remove_small_boxes_keeps_width_and_height_at_least_min_size()
    {
        using var scope = NewDisposeScope();
        var keep = BoxOps.RemoveSmallBoxes(B(0, 0, 1, 5, 0, 0, 5, 5, 0, 0, 5, 0.5f, 2, 2, 3, 3), 1.0);
        Assert.Equal(new long[] { 0, 1, 3 }, ToLongs(keep));
        Assert.Equal(ScalarType.Int64, keep.dtype);
    }

    [Fact]
    public void Empty_boxes_are_valid_everywhere()
    {
        using var scope = NewDisposeScope();
        var e = zeros(0, 4);
        var b = B(0, 0, 1, 1);
        Assert.Equal(new long[] { 0, 4 }, BoxOps.XyxyToXywh(e).shape);
        Assert.Equal(new long[] { 0, 4 }, BoxOps.CxcywhToXyxy(e).shape);
        Assert.Equal(new long[] { 0 }, BoxOps.Area(e).shape);
        Assert.Equal(new long[] { 0, 1 }, BoxOps.Iou(e, b).shape);
        Assert.Equal(new long[] { 1, 0 }, BoxOps.GeneralizedIou(b, e).shape);
        Assert.Equal(new long[] { 0 }, BoxOps.GeneralizedIouLoss(e, e).shape);
        Assert.Equal(new long[] { 0, 4 }, BoxOps.ClipToImage(e, 10, 10).shape);
        Assert.Equal(new long[] { 0 }, BoxOps.RemoveSmallBoxes(e, 1).shape);
        BoxOps.Validate(e, "boxes");
    }

    [Theory]
    [InlineData(5f, 0f, 4f, 1f, "x2 < x1")]
    [InlineData(0f, 5f, 1f, 4f, "y2 < y1")]
    [InlineData(float.NaN, 0f, 1f, 1f, "NaN")]
    [InlineData(0f, 0f, float.PositiveInfinity, 1f, "infinite")]
    public void Validate_names_the_box_index_and_its_values(float x1, float y1, float x2, float y2, string problem)
    {
        using var scope = NewDisposeScope();
        var boxes = B(0, 0, 2, 2, 1, 1, 1, 1, x1, y1, x2, y2);
        var ex = Assert.Throws<ArgumentException>(() => BoxOps.Validate(boxes, "targetBoxes"));
        Assert.Equal("targetBoxes", ex.ParamName);
        Assert.Contains("box 2", ex.Message);
        Assert.Contains(problem, ex.Message);
        Assert.Contains(x2.ToString("R", System.Globalization.CultureInfo.InvariantCulture), ex.Message);
    }

    [Fact]
    public void Wrong_shapes_are_rejected_with_the_argument_name()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => BoxOps.Iou(zeros(3, 4), zeros(3, 5)));
        Assert.Equal("boxes2", ex.ParamName);
        Assert.Throws<ArgumentException>(() => BoxOps.GeneralizedIouLoss(zeros(3, 4), zeros(2, 4)));
    }
}
