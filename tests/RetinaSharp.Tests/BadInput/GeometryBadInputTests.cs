// Library misuse in Geometry: a NaN IoU used to become a foreground match of box 0 (torchvision's Matcher lets NaN
// through both threshold tests), a NaN minSize silently dropped every box, and a NaN threshold was reported as
// "lowThreshold <= highThreshold". Each is now an ArgumentException naming the argument and the value.
using RetinaSharp.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.BadInput;

public sealed class GeometryBadInputTests
{
    [Fact]
    public void Nan_iou_is_refused_with_its_position()
    {
        using var scope = torch.NewDisposeScope();
        var iou = tensor(new float[] { 0.9f, 0.1f, 0.2f, 0.3f, float.NaN, 0.1f }).reshape(2, 3);
        var e = Assert.Throws<ArgumentException>(() => new Matcher().Match(iou));
        Assert.Equal("iou", e.ParamName);
        Assert.Contains("iou[1, 1] is NaN", e.Message);
    }

    [Fact]
    public void Nan_threshold_names_the_threshold()
    {
        var e = Assert.Throws<ArgumentException>(() => new Matcher(double.NaN, 0.4));
        Assert.Equal("highThreshold", e.ParamName);
        Assert.Contains("NaN", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Matcher(0.5, double.NaN));
        Assert.Equal("lowThreshold", e.ParamName);
    }

    [Fact]
    public void Nan_min_size_is_refused_instead_of_dropping_every_box()
    {
        using var scope = torch.NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => BoxOps.RemoveSmallBoxes(tensor(new float[] { 0, 0, 5, 5 }).reshape(1, 4), double.NaN));
        Assert.Equal("minSize", e.ParamName);
        Assert.Contains("NaN", e.Message);
    }

    [Fact]
    public void Empty_boxes_stay_valid()
    {
        using var scope = torch.NewDisposeScope();
        Assert.Equal(new long[] { 0, 3 }, BoxOps.Iou(zeros(0, 4), zeros(3, 4)).shape);
        Assert.Equal(new long[] { 3 }, new Matcher().Match(zeros(0, 3)).shape);
        Assert.Equal(new long[] { 0 }, BoxOps.RemoveSmallBoxes(zeros(0, 4), 1).shape);
    }
}
