using RetinaSharp.Geometry;
using static RetinaSharp.Tests.Geometry.GeometryFixture;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

public class BoxCoderTests
{
    [Fact]
    public void Encode_and_decode_hand_computed()
    {
        using var scope = NewDisposeScope();
        var coder = new BoxCoder();
        var anchor = tensor(new float[] { 0, 0, 10, 10 }).view(1, 4);
        var target = tensor(new float[] { 5, 5, 15, 25 }).view(1, 4);
        // centres (5, 5) -> (10, 15); sizes (10, 10) -> (10, 20)
        AssertClose(new[] { 0.5f, 1.0f, 0f, MathF.Log(2) }, coder.Encode(target, anchor));
        AssertClose(new float[] { 5, 5, 15, 25 }, coder.Decode(coder.Encode(target, anchor), anchor));
        var weighted = new BoxCoder(10, 10, 5, 5);
        AssertClose(new[] { 5f, 10f, 0f, 5 * MathF.Log(2) }, weighted.Encode(target, anchor));
    }

    [Fact]
    public void Decode_clamps_the_scale_at_ln_1000_over_16()
    {
        using var scope = NewDisposeScope();
        var anchor = tensor(new float[] { 0, 0, 10, 10 }).view(1, 4);
        var boxes = new BoxCoder().Decode(tensor(new float[] { 0, 0, 100, 1e30f }).view(1, 4), anchor);
        // width and height at most 10 * 1000 / 16 = 625 around the centre (5, 5)
        AssertClose(new float[] { 5 - 312.5f, 5 - 312.5f, 5 + 312.5f, 5 + 312.5f }, boxes, 1e-5);
        Assert.Equal(Math.Log(1000.0 / 16), new BoxCoder().ScaleClamp);
    }

    [Fact]
    public void Encode_and_decode_match_torchvision()
    {
        using var scope = NewDisposeScope();
        var f = Load("box_coder.json");
        var anchors = Matrix(f.GetProperty("anchors"), 4);
        var targets = Matrix(f.GetProperty("targets"), 4);
        var deltas = Matrix(f.GetProperty("deltas"), 4);
        foreach (var c in f.GetProperty("cases").EnumerateArray())
        {
            var w = c.GetProperty("weights").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var coder = new BoxCoder(w[0], w[1], w[2], w[3]);
            AssertClose(Floats(c.GetProperty("encoded")), coder.Encode(targets, anchors), 1e-5, 1e-5);
            AssertClose(Floats(c.GetProperty("decoded")), coder.Decode(deltas, anchors), 1e-5, 1e-3);
        }
    }

    [FsCheck.Xunit.Property(MaxTest = 50)]
    public bool Decode_of_encode_gives_the_boxes_back(int seed)
    {
        // sizes in [10, 300]: size ratios stay below the decode clamp of 62.5
        using var scope = NewDisposeScope();
        var g = new TorchSharp.torch.Generator((ulong)(uint)seed);
        Tensor Boxes() { var xy = rand(20, 2, generator: g) * 500; return cat(new[] { xy, xy + rand(20, 2, generator: g) * 290 + 10 }, 1); }
        var anchors = Boxes();
        var targets = Boxes();
        var coder = new BoxCoder(10, 10, 5, 5);
        var back = coder.Decode(coder.Encode(targets, anchors), anchors);
        return allclose(back, targets, rtol: 1e-4, atol: 1e-2);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentOutOfRangeException>(() => new BoxCoder(wx: 0));
        var ex = Assert.Throws<ArgumentException>(() => new BoxCoder().Decode(zeros(3, 4), zeros(2, 4)));
        Assert.Equal("anchors", ex.ParamName);
        Assert.Equal(new long[] { 0, 4 }, new BoxCoder().Decode(zeros(0, 4), zeros(0, 4)).shape);
    }
}
