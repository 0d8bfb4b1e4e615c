using System.Text.Json;
using RetinaSharp.Geometry;
using static RetinaSharp.Tests.Geometry.GeometryFixture;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Geometry;

public class AnchorGeneratorTests
{
    private static (long, long)[] Sizes(JsonElement e) =>
        e.EnumerateArray().Select(p => (p[0].GetInt64(), p[1].GetInt64())).ToArray();

    [Fact]
    public void Default_cell_anchors_hand_computed()
    {
        using var scope = NewDisposeScope();
        var gen = AnchorGenerator.RetinaNetDefault();
        Assert.Equal(9, gen.AnchorsPerLocation);
        Assert.Equal(5, gen.NumLevels);
        // P3, sizes 32, 40, 50 (int(32 * 2^(1/3)) = 40, int(32 * 2^(2/3)) = 50); ratio 0.5 first:
        // h = 32 sqrt(0.5) = 22.6, w = 45.3 -> [-23, -11, 23, 11]; ratio 1, size 32 -> [-16, -16, 16, 16]
        var p3 = ToFloats(gen.CellAnchors(0));
        Assert.Equal(new float[] { -23, -11, 23, 11 }, p3[0..4]);
        Assert.Equal(new float[] { -16, -16, 16, 16 }, p3[12..16]);
        Assert.Equal(new float[] { -20, -20, 20, 20 }, p3[16..20]);
        Assert.Equal(new float[] { -25, -25, 25, 25 }, p3[20..24]);
    }

    [Fact]
    public void Default_cell_anchors_match_torchvision()
    {
        using var scope = NewDisposeScope();
        var f = Load("anchors.json");
        var gen = AnchorGenerator.RetinaNetDefault();
        int l = 0;
        foreach (var cell in f.GetProperty("default_cell_anchors").EnumerateArray())
            AssertExact(Floats(cell), gen.CellAnchors(l++));
    }

    [Fact]
    public void Anchors_match_torchvision_at_several_image_sizes()
    {
        using var scope = NewDisposeScope();
        var f = Load("anchors.json");
        var gen = AnchorGenerator.RetinaNetDefault();
        foreach (var c in f.GetProperty("cases").EnumerateArray())
        {
            var img = c.GetProperty("image_size");
            var levels = gen.AnchorsPerLevel((img[0].GetInt64(), img[1].GetInt64()), Sizes(c.GetProperty("feature_sizes")));
            int l = 0;
            foreach (var expected in c.GetProperty("levels").EnumerateArray())
            {
                var a = levels[l++];
                Assert.Equal(expected.GetProperty("count").GetInt64(), a.shape[0]);
                Assert.Equal(expected.GetProperty("sum").GetDouble(), a.to_type(ScalarType.Float64).sum().item<double>(), 6);
                var rows = tensor(Longs(expected.GetProperty("sample_rows")));
                AssertExact(Floats(expected.GetProperty("sample")), a.index_select(0, rows));
                if (expected.TryGetProperty("anchors", out var whole)) AssertExact(Floats(whole), a);
            }
        }
    }

    [Fact]
    public void Custom_sizes_and_ratios_match_torchvision()
    {
        using var scope = NewDisposeScope();
        var c = Load("anchors.json").GetProperty("custom");
        var sizes = c.GetProperty("sizes").EnumerateArray().Select(s => s.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToList();
        var ratios = c.GetProperty("ratios").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var gen = new AnchorGenerator(sizes, ratios);
        Assert.Equal(6, gen.AnchorsPerLocation);
        var img = c.GetProperty("image_size");
        var levels = gen.AnchorsPerLevel((img[0].GetInt64(), img[1].GetInt64()), Sizes(c.GetProperty("feature_sizes")));
        int l = 0;
        foreach (var expected in c.GetProperty("anchors").EnumerateArray()) AssertExact(Floats(expected), levels[l++]);
    }

    [Fact]
    public void Cached_anchors_survive_callers_disposing_their_copies()
    {
        var gen = AnchorGenerator.RetinaNetDefault();
        var feats = new (long, long)[] { (4, 4), (2, 2), (1, 1), (1, 1), (1, 1) };
        float first;
        using (var scope = NewDisposeScope())
        {
            var a = gen.AnchorsPerLevel((32, 32), feats);
            first = a[0][5, 2].item<float>();
            foreach (var t in a) t.Dispose();
        }
        using (var scope = NewDisposeScope())
        {
            var b = gen.AnchorsPerLevel((32, 32), feats);
            Assert.Equal(first, b[0][5, 2].item<float>());
            Assert.Equal(4 * 4 * 9, b[0].shape[0]);
        }
    }

    [Fact]
    public void Bad_configuration_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => new AnchorGenerator(new[] { new[] { 32.0 }, new[] { 64.0, 80.0 } }));
        Assert.Throws<ArgumentException>(() => new AnchorGenerator(aspectRatios: new[] { 0.0 }));
        var ex = Assert.Throws<ArgumentException>(() => AnchorGenerator.RetinaNetDefault().AnchorsPerLevel((64, 64), new (long, long)[] { (8, 8) }));
        Assert.Equal("featureSizes", ex.ParamName);
    }
}
