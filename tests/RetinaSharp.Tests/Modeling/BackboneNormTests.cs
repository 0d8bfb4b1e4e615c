// RetinaNetOptions.BackboneNorm: torchvision's FrozenBatchNorm2d (default) versus trainable nn.BatchNorm2d as in
// torchvision resnet18(norm_layer=BatchNorm2d): state_dict gains num_batches_tracked, train mode uses batch statistics
// and updates running_mean with momentum 0.1, eval mode uses the running statistics (and may fold them).
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

public sealed class BackboneNormTests
{
    private static RetinaNetOptions Tiny(BackboneNormKind norm) =>
        new(3) { Backbone = ResNetDepth.ResNet18, FpnChannels = 64, MinSize = 64, MaxSize = 96, TrainableBackboneLayers = 5, BackboneNorm = norm };

    [Fact]
    public void BatchNormBackboneHasTrainableAffineAndNumBatchesTracked()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny(BackboneNormKind.BatchNorm));
        var keys = model.state_dict().Keys.ToList();
        var tracked = keys.Where(k => k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToList();
        // ResNet-18: bn1 + 8 basic blocks × 2 + 3 downsample batch norms = 20, all in the backbone body.
        Assert.Equal(20, tracked.Count);
        Assert.All(tracked, k => Assert.StartsWith("backbone.body.", k));
        Assert.Contains("backbone.body.bn1.num_batches_tracked", keys);
        Assert.Contains("backbone.body.layer2.0.downsample.1.num_batches_tracked", keys);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var name in new[] { "backbone.body.bn1.weight", "backbone.body.bn1.bias", "backbone.body.layer4.1.bn2.weight", "backbone.body.layer3.0.downsample.1.bias" })
        {
            Assert.True(parameters.ContainsKey(name), name);
            Assert.True(parameters[name].requires_grad, name);
        }
        // Same keys otherwise as the frozen backbone (which has the four buffers and no num_batches_tracked).
        using var frozen = new RetinaNet(Tiny(BackboneNormKind.Frozen));
        var frozenKeys = frozen.state_dict().Keys.ToList();
        Assert.DoesNotContain(frozenKeys, k => k.EndsWith(".num_batches_tracked", StringComparison.Ordinal));
        Assert.DoesNotContain(frozen.named_parameters(), p => p.name == "backbone.body.bn1.weight");
        Assert.Equal(frozenKeys.Order(StringComparer.Ordinal), keys.Except(tracked).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TrainModeUpdatesRunningStatisticsAndEvalModeUsesThem()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var body = new ResNetBody(ResNetDepth.ResNet18, BackboneNormKind.BatchNorm);
        var x = randn(2, 3, 64, 64) * 2 + 1;
        var sd = body.state_dict();
        Assert.Equal(0L, sd["bn1.num_batches_tracked"].item<long>());

        // Train mode: running_mean ← 0.9·0 + 0.1·(batch mean of conv1's output per channel).
        body.train();
        Tensor expectedMean;
        using (no_grad())
        {
            var conv1 = ((TorchSharp.Modules.Conv2d)body.named_children().First(c => c.name == "conv1").module).forward(x);
            expectedMean = conv1.mean([0, 2, 3]) * 0.1;
        }
        using (no_grad()) body.forward(x);
        sd = body.state_dict();
        Assert.Equal(1L, sd["bn1.num_batches_tracked"].item<long>());
        Assert.True(sd["bn1.running_mean"].allclose(expectedMean, rtol: 1e-4, atol: 1e-6), "bn1.running_mean = 0.1 × batch mean");
        Assert.True(sd["layer4.1.bn2.running_mean"].abs().max().item<float>() > 0, "deep running_mean moved");

        // Train mode normalises with batch statistics, so its output differs from eval mode's (running statistics);
        // eval mode leaves the statistics alone and matches the folded path.
        Tensor trainOut;
        using (no_grad()) trainOut = body.forward(x)[2];
        Assert.Equal(2L, body.state_dict()["bn1.num_batches_tracked"].item<long>());
        body.eval();
        var meanBefore = body.state_dict()["layer1.0.bn1.running_mean"].clone();
        Tensor evalOut, foldedOut;
        using (no_grad()) evalOut = body.forward(x)[2];
        Assert.True(body.state_dict()["layer1.0.bn1.running_mean"].allclose(meanBefore, rtol: 0, atol: 0), "eval keeps running_mean");
        Assert.Equal(2L, body.state_dict()["bn1.num_batches_tracked"].item<long>());
        Assert.False(trainOut.allclose(evalOut, rtol: 1e-3, atol: 1e-3), "train (batch stats) and eval (running stats) differ");
        body.SetFoldedBatchNorm(true);
        using (no_grad()) foldedOut = body.forward(x)[2];
        body.SetFoldedBatchNorm(false);
        double scale = evalOut.abs().max().item<float>();
        Assert.True((foldedOut - evalOut).abs().max().item<float>() <= 1e-4 * scale + 1e-5, "folded running statistics = eval-mode BatchNorm");
    }

    [Fact]
    public void OptionsJsonRoundTripsBackboneNorm()
    {
        var o = Tiny(BackboneNormKind.BatchNorm);
        string json = o.ToJson();
        Assert.Contains("\"BackboneNorm\": \"BatchNorm\"", json);
        Assert.Equal(BackboneNormKind.BatchNorm, RetinaNetOptions.FromJson(json).BackboneNorm);
        Assert.Equal(BackboneNormKind.Frozen, RetinaNetOptions.FromJson(Tiny(BackboneNormKind.Frozen).ToJson()).BackboneNorm);
        // Older option files without the field load as Frozen (the previous behaviour).
        Assert.Equal(BackboneNormKind.Frozen, RetinaNetOptions.FromJson("{\"NumClasses\": 3}").BackboneNorm);
        var bad = Assert.Throws<ArgumentException>(() => RetinaNetOptions.FromJson(json.Replace("\"BatchNorm\"", "7")));
        Assert.Equal("BackboneNorm", bad.ParamName);
    }

    [Fact]
    public void OurCheckpointRestoresBatchNormOptionAndRunningStatistics()
    {
        using var scope = NewDisposeScope();
        string dir = Path.Combine(Path.GetTempPath(), "retinasharp-bn-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            manual_seed(5);
            using var model = new RetinaNet(Tiny(BackboneNormKind.BatchNorm));
            model.train();
            using (no_grad()) model.Backbone.forward(randn(2, 3, 64, 64));
            string path = Path.Combine(dir, "m.ckpt");
            RetinaSharp.Modeling.RetinaNetCheckpoint.Save(model, path);
            using var loaded = RetinaSharp.Modeling.RetinaNetCheckpoint.Load(path);
            Assert.Equal(BackboneNormKind.BatchNorm, loaded.Options.BackboneNorm);
            var a = model.state_dict();
            var b = loaded.state_dict();
            Assert.Equal(1L, b["backbone.body.bn1.num_batches_tracked"].item<long>());
            foreach (var k in new[] { "backbone.body.bn1.running_mean", "backbone.body.layer4.1.bn2.running_var", "backbone.body.layer2.0.downsample.1.weight" })
                Assert.True(a[k].allclose(b[k], 0, 0), $"{k} differs");
            Assert.True(a["backbone.body.bn1.running_mean"].abs().max().item<float>() > 0);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
