// Fixture: scripts/make_backbone_fixtures.py (Debian's torchvision 0.14): a torch.save'd resnet18 classification state
// dict with random (sparse) weights, and torchvision's IntermediateLayerGetter C3-C5 on a fixed input.
using System.IO.Compression;
using System.Text.Json;
using RetinaSharp.Modeling;
using RetinaSharp.Pretrained;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Pretrained;

public sealed class TorchvisionBackboneTests : IDisposable
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "backbone");
    private readonly string _pth = Path.Combine(Path.GetTempPath(), $"retinasharp-resnet18-{Guid.NewGuid():N}.pth");

    public TorchvisionBackboneTests()
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Dir, "resnet18_random.pth.gz")), CompressionMode.Decompress);
        using var f = File.Create(_pth);
        gz.CopyTo(f);
    }

    public void Dispose() => File.Delete(_pth);

    private static Tensor Read(string name, JsonElement shapes)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, name + ".bin"));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return tensor(values, [.. shapes.GetProperty(name).EnumerateArray().Select(e => e.GetInt64())]);
    }

    [Fact]
    public void C3ToC5EqualTorchvisionIntermediateLayerGetter()
    {
        using var scope = NewDisposeScope();
        var shapes = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "shapes.json"))).RootElement;
        var weights = BackboneWeights.FromFile(_pth);
        var options = weights.Configure(new RetinaNetOptions(3) { FpnChannels = 32 });
        Assert.Equal(ResNetDepth.ResNet18, options.Backbone);
        Assert.Equal(BackboneNormKind.Frozen, options.BackboneNorm);
        Assert.Equal(3, options.TrainableBackboneLayers);
        using var model = new RetinaNet(options);
        string line = weights.LoadInto(model);
        Assert.Contains("resnet18 from weights from", line);
        Assert.Contains("frozen batch norm with the checkpoint's statistics, 3 of 5 stages trainable (layer2, layer3, layer4)", line);
        model.eval();
        using var noGrad = no_grad();
        var c = model.Backbone.Body.forward(Read("input", shapes));
        string[] names = ["c3", "c4", "c5"];
        for (int i = 0; i < 3; i++)
        {
            var expected = Read(names[i], shapes);
            Assert.Equal(expected.shape, c[i].shape);
            double maxDiff = (c[i] - expected).abs().max().item<float>();
            Assert.True(maxDiff < 1e-4, $"{names[i]}: max |ours - torchvision| = {maxDiff}");
        }
        // Folded batch norm (inference) gives the same features.
        model.Backbone.Body.SetFoldedBatchNorm(true);
        var folded = model.Backbone.Body.forward(Read("input", shapes));
        Assert.True((folded[2] - Read("c5", shapes)).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void TrainableBatchNormStartsFromTheCheckpointStatistics()
    {
        using var scope = NewDisposeScope();
        var weights = BackboneWeights.FromFile(_pth);
        var options = weights.Configure(new RetinaNetOptions(3) { FpnChannels = 32 }, norm: BackboneNormKind.BatchNorm, trainableLayers: 5);
        using var model = new RetinaNet(options);
        weights.LoadInto(model);
        var sd = TorchvisionResNetCheckpoint.ReadStateDict(_pth);
        var own = model.Backbone.Body.state_dict();
        foreach (var key in new[] { "bn1.running_var", "layer3.1.bn2.running_mean", "layer4.0.downsample.1.weight", "layer2.0.conv1.weight" })
            Assert.True((own[key] == sd[key]).all().item<bool>(), key);
        Assert.DoesNotContain(own.Keys, k => k.StartsWith("fc.", StringComparison.Ordinal));
        Assert.True(sd.ContainsKey("fc.weight")); // present in the file and ignored
        foreach (var t in sd.Values) t.Dispose();
    }

    [Fact]
    public void AskedDepthThatDiffersFromTheFileIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => BackboneWeights.FromFile(_pth).Configure(new RetinaNetOptions(3), backbone: ResNetDepth.ResNet50));
        Assert.Contains("are a resnet18; drop --backbone or pass --backbone resnet18", e.Message);
    }
}
