// RetinaNetCheckpoint: our format and torchvision .pth round trips, and the errors for weights that do not fit.
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "retinasharp-ckpt-" + Guid.NewGuid().ToString("N"));

    public CheckpointTests() => Directory.CreateDirectory(_dir);

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static RetinaNet SmallModel(int numClasses = 3) =>
        new(new RetinaNetOptions(numClasses) { Backbone = ResNetDepth.ResNet18, FpnChannels = 64, MinSize = 96, MaxSize = 128, ScoreThreshold = 0.2 });

    private static void AssertSameWeights(RetinaNet a, RetinaNet b)
    {
        var sa = a.state_dict();
        var sb = b.state_dict();
        Assert.Equal(sa.Keys.Order(), sb.Keys.Order());
        foreach (var (k, t) in sa)
            Assert.True(t.allclose(sb[k], 0, 0), $"{k} differs");
    }

    [Fact]
    public void OurFormatRoundTripsWeightsAndOptions()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        string path = Path.Combine(_dir, "m.ckpt");
        RetinaNetCheckpoint.Save(model, path);
        using var loaded = RetinaNetCheckpoint.Load(path);
        Assert.Equal(model.Options.ToJson(), loaded.Options.ToJson());
        Assert.Equal(0.2, loaded.Options.ScoreThreshold);
        AssertSameWeights(model, loaded);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    /// <summary>One .pth file (PyBridge pickling is slow): round trip with inferred architecture, then a plain num_classes error.</summary>
    [Fact]
    public void TorchvisionPthRoundTripsAndReportsOtherNumClasses()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel(numClasses: 4);
        string path = Path.Combine(_dir, "m.pth");
        RetinaNetCheckpoint.SaveTorchvisionPth(model, path);
        using var loaded = RetinaNetCheckpoint.Load(path, new RetinaNetOptions(4) { MinSize = 96, MaxSize = 128 });
        Assert.Equal(ResNetDepth.ResNet18, loaded.Options.Backbone);
        Assert.Equal(4, loaded.Options.NumClasses);
        Assert.Equal(64, loaded.Options.FpnChannels);
        Assert.Equal(96, loaded.Options.MinSize);
        Assert.False(loaded.Options.P6FromC5);
        AssertSameWeights(model, loaded);
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path, new RetinaNetOptions(91)));
        Assert.Contains("4 classes", e.Message);
        Assert.Contains("91", e.Message);
        Assert.Contains("m.pth", e.Message);
    }

    [Fact]
    public void OurFormatWithOtherNumClassesIsSaidPlainly()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel(numClasses: 3);
        string path = Path.Combine(_dir, "m.ckpt");
        RetinaNetCheckpoint.Save(model, path);
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path, new RetinaNetOptions(80)));
        Assert.Contains("3 classes", e.Message);
        Assert.Contains("80", e.Message);
    }

    [Fact]
    public void MissingKeyIsListed()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        sd.Remove("backbone.fpn.layer_blocks.1.0.weight");
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.CopyStateDict("partial.pth", model, sd));
        Assert.Contains("missing backbone.fpn.layer_blocks.1.0.weight (model [64, 64, 3, 3])", e.Message);
    }

    [Fact]
    public void ShapeMismatchListsBothShapes()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        sd["head.regression_head.conv.2.0.weight"] = zeros(128, 64, 3, 3);
        sd["backbone.body.layer9.0.conv1.weight"] = zeros(1);
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.CopyStateDict("x.pth", model, sd));
        Assert.Contains("head.regression_head.conv.2.0.weight: file [128, 64, 3, 3] vs model [64, 64, 3, 3]", e.Message);
        Assert.Contains("unexpected backbone.body.layer9.0.conv1.weight [1]", e.Message);
        Assert.StartsWith("x.pth", e.Message);
    }

    [Fact]
    public void NumBatchesTrackedEntriesAreIgnored()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        sd["backbone.body.bn1.num_batches_tracked"] = tensor(0L);
        using var other = SmallModel();
        RetinaNetCheckpoint.CopyStateDict("x.pth", other, sd);
        AssertSameWeights(model, other);
    }

    [Fact]
    public void NotACheckpointIsADataFormatError()
    {
        string path = Path.Combine(_dir, "junk.bin");
        File.WriteAllText(path, "hello, not a model");
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path));
        Assert.Contains("junk.bin", e.Message);
        Assert.Throws<FileNotFoundException>(() => RetinaNetCheckpoint.Load(Path.Combine(_dir, "absent.pth")));
    }
}
