// torchvision 0.14 retinanet_resnet50_fpn_v2: its keys, and its detections on a real scene with deterministic weights that
// both sides compute (scripts/make_v2_fixtures.py); and our torchvision export round-trips. Files written by torch.save
// itself: TorchSavedRetinaNetTests.
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.Export;
using RetinaSharp.Modeling;
using RetinaSharp.Tests.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Export;

public sealed class TorchvisionV2Tests
{
    private static string Fixtures => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    private static JsonElement Meta() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "torchvision_v2", "retinanet_v2_detections.json"))).RootElement;

    private static RetinaNetOptions V2Options(JsonElement meta) => new(meta.GetProperty("num_classes").GetInt32())
    {
        // torchvision's v2: GroupNorm(32) heads, P6 from C5, 300 detections per image.
        MinSize = meta.GetProperty("min_size").GetInt32(), MaxSize = meta.GetProperty("max_size").GetInt32(),
        HeadGroupNorm = true, P6FromC5 = true, DetectionsPerImage = 300,
    };

    private static void AssertDetections(JsonElement expected, Detections det)
    {
        var labels = expected.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        var scores = expected.GetProperty("scores").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var boxes = expected.GetProperty("boxes").EnumerateArray().SelectMany(b => b.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        Assert.True(labels.Length > 10, "the fixture should hold a real list of detections");
        Assert.Equal(labels.Length, (int)det.Count);
        Assert.Equal(labels, det.Labels.data<long>().ToArray());
        var ds = (tensor(scores) - det.Scores).abs().max().item<float>();
        var db = (tensor(boxes).reshape(-1, 4) - det.Boxes).abs().max().item<float>();
        Assert.True(ds <= 1e-4, $"scores differ from torchvision's by up to {ds}");
        Assert.True(db <= 1e-3, $"boxes differ from torchvision's by up to {db} px");
    }

    private static Tensor Scene(JsonElement meta) =>
        ImageIO.ToTensor(ImageIO.Load(Path.Combine(Fixtures, meta.GetProperty("image").GetString()!)));

    [Fact]
    public void V2ModelHasTorchvisionKeysAndGivesItsDetectionsOnARealScene()
    {
        using var scope = NewDisposeScope();
        var meta = Meta();
        using var model = new RetinaNet(V2Options(meta));
        var expectedKeys = meta.GetProperty("state_dict").EnumerateArray()
            .Select(e => (e[0].GetString()!, string.Join(",", e[1].EnumerateArray().Select(v => v.GetInt64())))).ToList();
        var ours = model.state_dict().Select(kv => (kv.Key, string.Join(",", kv.Value.shape))).ToList();
        Assert.Equal(expectedKeys.Order(), ours.Order()); // TorchSharp lists parameters before buffers
        DeterministicWeights.Fill(model);
        model.eval();
        AssertDetections(meta.GetProperty("detections"), model.Detect([Scene(meta)])[0]);
    }

    [Fact]
    public void ExportWritesTorchvisionKeysAndReloadsToTheSameWeights()
    {
        using var scope = NewDisposeScope();
        string dir = Directory.CreateTempSubdirectory("retinasharp-tvexport-").FullName;
        try
        {
            using var model = new RetinaNet(new RetinaNetOptions(3) { Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64, FpnChannels = 32, HeadGroupNorm = true, P6FromC5 = true });
            DeterministicWeights.Fill(model);
            string pth = Path.Combine(dir, "m.pth"), json = Path.Combine(dir, "m.json");
            var args = TorchvisionExport.Export(model, pth, json, [new CocoCategory(1, "cat"), new CocoCategory(2, "dog"), new CocoCategory(7, "bird")]);
            Assert.Equal("resnet18", args["backbone_name"]!.GetValue<string>());
            Assert.Equal(512, args["extra_blocks"]!["in_channels"]!.GetValue<int>());
            Assert.Equal("GroupNorm32", args["head_norm"]!.GetValue<string>());
            Assert.Null(args["torchvision_builder"]);
            Assert.Equal(["cat", "dog", "bird"], args["class_names"]!.AsArray().Select(n => n!.GetValue<string>()));
            var sd = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(File.OpenRead(pth));
            // Frozen batch norm gains num_batches_tracked so that torchvision's nn.BatchNorm2d backbones load it strictly.
            Assert.True(sd.ContainsKey("backbone.body.bn1.num_batches_tracked"));
            Assert.Equal(model.state_dict().Count + 20, sd.Count); // ResNet-18: bn1 + 8 blocks x 2 + 3 downsample norms
            using var back = RetinaNetCheckpoint.Load(pth, model.Options);
            foreach (var (k, t) in model.state_dict())
                Assert.True(t.allclose(back.state_dict()[k], 0, 0), k);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ExportRefusesTheCntkResNet18NamingTheOption()
    {
        var why = TorchvisionExport.Unsupported(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18Cntk });
        Assert.Single(why);
        Assert.StartsWith("Backbone = ResNet18Cntk", why[0]);
        Assert.Empty(TorchvisionExport.Unsupported(new RetinaNetOptions(2)));
        Assert.NotEmpty(TorchvisionExport.Unsupported(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, FpnChannels = 512, P6FromC5 = true }));
    }
}
