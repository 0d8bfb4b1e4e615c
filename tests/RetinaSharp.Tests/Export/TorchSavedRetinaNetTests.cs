// Fixtures: scripts/make_pth_fixtures.py (Debian's torch 1.13 / torchvision 0.14): two whole torchvision RetinaNets
// (ResNet-18 FPN-64; v1 heads with P6 from P5, v2 GroupNorm heads with P6 from C5) saved by torch.save(model.state_dict()),
// and torchvision's detections with them on a real scene.
using System.IO.Compression;
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.Export;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Export;

public sealed class TorchSavedRetinaNetTests(ITestOutputHelper output) : IDisposable
{
    private static string Fixtures => Path.Combine(AppContext.BaseDirectory, "Fixtures");
    private readonly string _dir = Directory.CreateTempSubdirectory("retinasharp-torchsaved-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static JsonElement Meta() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "pth", "detections.json"))).RootElement;

    /// <summary>The fixture's .pth, gunzipped into the test's folder.</summary>
    private string Pth(JsonElement model)
    {
        string gz = Path.Combine(Fixtures, model.GetProperty("file").GetString()!);
        string pth = Path.Combine(_dir, Path.GetFileNameWithoutExtension(gz));
        using var src = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress);
        using var dst = File.Create(pth);
        src.CopyTo(dst);
        return pth;
    }

    private static RetinaNetOptions Options(JsonElement meta, JsonElement model) => new(meta.GetProperty("num_classes").GetInt32())
    {
        Backbone = ResNetDepth.ResNet18,
        HeadGroupNorm = model.GetProperty("head_group_norm").GetBoolean(),
        P6FromC5 = model.GetProperty("p6_from_c5").GetBoolean(),
        MinSize = meta.GetProperty("min_size").GetInt32(), MaxSize = meta.GetProperty("max_size").GetInt32(),
        DetectionsPerImage = meta.GetProperty("detections_per_img").GetInt32(),
    };

    private sealed record Expected(long Label, float Score, float[] Box);

    private static List<Expected> ExpectedDetections(JsonElement model)
    {
        var d = model.GetProperty("detections");
        var labels = d.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        var scores = d.GetProperty("scores").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var boxes = d.GetProperty("boxes").EnumerateArray().Select(b => b.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        return [.. labels.Select((l, i) => new Expected(l, scores[i], boxes[i]))];
    }

    /// <summary>
    /// One-to-one: each of torchvision's detections has its own of ours with the same label, the score within
    /// <paramref name="scoreTol"/> and every coordinate within <paramref name="boxTol"/> px (pairs are searched because two
    /// detections whose scores differ by less than float rounding may come in either order). Returns the largest gaps.
    /// </summary>
    private static (double Score, double Box) AssertOneToOne(List<Expected> expected, List<Expected> ours, double scoreTol, double boxTol)
    {
        Assert.True(expected.Count > 50, $"the fixture should hold a real list of detections, not {expected.Count}");
        Assert.Equal(expected.Count, ours.Count);
        Assert.True(expected.Select(e => e.Label).Distinct().Count() >= 5, "detections of several classes");
        var free = new List<Expected>(ours);
        double worstScore = 0, worstBox = 0;
        foreach (var e in expected)
        {
            int best = -1;
            double bestBox = double.MaxValue;
            for (int i = 0; i < free.Count; i++)
            {
                var o = free[i];
                if (o.Label != e.Label || Math.Abs(o.Score - e.Score) > scoreTol) continue;
                double box = e.Box.Zip(o.Box, (a, b) => (double)Math.Abs(a - b)).Max();
                if (box < bestBox) (best, bestBox) = (i, box);
            }
            Assert.True(best >= 0 && bestBox <= boxTol,
                $"torchvision's detection label {e.Label} score {e.Score} box [{string.Join(", ", e.Box)}] has no match within {scoreTol} / {boxTol} px (closest box gap {bestBox})");
            worstScore = Math.Max(worstScore, Math.Abs(free[best].Score - e.Score));
            worstBox = Math.Max(worstBox, bestBox);
            free.RemoveAt(best);
        }
        return (worstScore, worstBox);
    }

    private static List<Expected> Ours(Detections det)
    {
        var labels = det.Labels.data<long>().ToArray();
        var scores = det.Scores.data<float>().ToArray();
        var boxes = det.Boxes.data<float>().ToArray();
        return [.. labels.Select((l, i) => new Expected(l, scores[i], boxes[(4 * i)..(4 * i + 4)]))];
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v2")]
    public void TorchSavedStateDictLoadsAndGivesTorchvisionsDetections(string version)
    {
        using var scope = NewDisposeScope();
        var meta = Meta();
        var fixture = meta.GetProperty("models").GetProperty(version);
        string pth = Pth(fixture);
        using var model = RetinaNetCheckpoint.Load(pth, Options(meta, fixture));
        Assert.Equal(meta.GetProperty("fpn_channels").GetInt32(), model.Options.FpnChannels); // read from the weights
        model.eval();
        var scene = ImageIO.ToTensor(ImageIO.Load(Path.Combine(Fixtures, meta.GetProperty("image").GetString()!)));
        var det = model.Detect([scene])[0];
        var expected = ExpectedDetections(fixture);
        var (score, box) = AssertOneToOne(expected, Ours(det), 1e-4, 1e-3);
        output.WriteLine($"{version}: {expected.Count} detections as torchvision's; largest gaps: score {score:g3}, box {box:g3} px");
    }

    [Fact]
    public void RetinaDetectOnTheTorchSavedFileWritesTorchvisionsDetections()
    {
        var meta = Meta();
        var fixture = meta.GetProperty("models").GetProperty("v1");
        string pth = Pth(fixture), outDir = Path.Combine(_dir, "out");
        string image = Path.Combine(Fixtures, meta.GetProperty("image").GetString()!);
        var (code, _, error) = OnnxFixture.RunWithOutput("detect", "--weights", pth, image, "--out", outDir,
            "--min-size", meta.GetProperty("min_size").ToString(), "--max-size", meta.GetProperty("max_size").ToString(),
            "--max-detections", meta.GetProperty("detections_per_img").ToString());
        Assert.True(code == 0, error);
        // detections.json: COCO results, bbox [x, y, w, h] rounded to 3 decimals and scores to 5; compare in that form.
        var ours = CocoJson.ReadResults(Path.Combine(outDir, "detections.json"))
            .Select(r => new Expected(r.CategoryId, (float)r.Score, [(float)r.X, (float)r.Y, (float)r.Width, (float)r.Height])).ToList();
        var expected = ExpectedDetections(fixture).Select(e => e with { Box = [e.Box[0], e.Box[1], e.Box[2] - e.Box[0], e.Box[3] - e.Box[1]] }).ToList();
        var (score, box) = AssertOneToOne(expected, ours, 1e-4, 1e-3);
        output.WriteLine($"retina detect: {expected.Count} detections as torchvision's; largest gaps (after rounding): score {score:g3}, box {box:g3} px");
    }

    [Fact]
    public void ExportOfTheLoadedModelHoldsTheTorchSavedTensorsBitForBit()
    {
        using var scope = NewDisposeScope();
        var meta = Meta();
        var fixture = meta.GetProperty("models").GetProperty("v2");
        string pth = Pth(fixture);
        using var model = RetinaNetCheckpoint.Load(pth, Options(meta, fixture));
        string exported = Path.Combine(_dir, "exported.pth");
        TorchvisionExport.Export(model, exported, Path.Combine(_dir, "exported.json"));

        var original = TorchSaveReader.ReadStateDict(pth).Tensors;
        var back = TorchSaveReader.ReadStateDict(exported).Tensors;
        Assert.Equal(fixture.GetProperty("tensors").GetInt32(), original.Count);
        Assert.Equal(original.Keys.Order(), back.Keys.Order()); // num_batches_tracked included, so strict=True loads
        foreach (var (key, t) in original)
        {
            if (key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)) continue; // 1 in the file (one train pass), 0 written
            Assert.Equal(t.dtype, back[key].dtype);
            Assert.True(t.allclose(back[key], 0, 0), $"{key} differs after export");
        }
        using var reloaded = RetinaNetCheckpoint.Load(exported, model.Options);
        foreach (var (key, t) in model.state_dict())
            Assert.True(t.allclose(reloaded.state_dict()[key], 0, 0), $"{key} differs after reloading the export");
    }
}
