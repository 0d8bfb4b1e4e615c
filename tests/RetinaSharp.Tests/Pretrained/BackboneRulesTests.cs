using RetinaSharp.Modeling;
using RetinaSharp.Pretrained;

namespace RetinaSharp.Tests.Pretrained;

public class BackboneRulesTests
{
    [Fact]
    public void RandomDefaultsToTrainableBatchNormAndEveryStage()
    {
        var o = BackboneWeights.Random.Configure(new RetinaNetOptions(2));
        Assert.Equal((ResNetDepth.ResNet50, BackboneNormKind.BatchNorm, 5), (o.Backbone, o.BackboneNorm, o.TrainableBackboneLayers));
        Assert.Equal(BackboneNormKind.GroupNorm, BackboneWeights.Random.Configure(new RetinaNetOptions(2), norm: BackboneNormKind.GroupNorm).BackboneNorm);
        Assert.Equal("Backbone: resnet50 from random weights (Kaiming normal), trainable batch norm, 5 of 5 stages trainable (conv1, layer1, layer2, layer3, layer4).",
            BackboneWeights.Random.Describe(o));
    }

    [Fact]
    public void RandomWithFrozenBatchNormIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => BackboneWeights.Random.Configure(new RetinaNetOptions(2), norm: BackboneNormKind.Frozen));
        Assert.Contains("pass --backbone-norm batch or group, or start from pretrained weights with --backbone-weights imagenet|FILE.pth", e.Message);
    }

    [Theory]
    [InlineData(3, "conv1 and layer1")]
    [InlineData(0, "conv1 and layer1 and layer2 and layer3 and layer4")]
    [InlineData(4, "conv1")]
    public void RandomWithFrozenStagesIsRefused(int layers, string frozen)
    {
        var e = Assert.Throws<ArgumentException>(() => BackboneWeights.Random.Configure(new RetinaNetOptions(2), trainableLayers: layers));
        Assert.Contains($"--trainable-layers {layers} with a randomly initialised backbone: {frozen} would stay frozen at random values; pass --trainable-layers 5", e.Message);
    }

    [Fact]
    public void PretrainedWithGroupNormIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => BackboneWeights.ImageNet.Configure(new RetinaNetOptions(2), norm: BackboneNormKind.GroupNorm));
        Assert.Contains("pass --backbone-norm frozen (the paper) or batch", e.Message);
    }

    [Fact]
    public void ImageNetIsAResNet18()
    {
        var e = Assert.Throws<ArgumentException>(() => BackboneWeights.ImageNet.Configure(new RetinaNetOptions(2), backbone: ResNetDepth.ResNet50));
        Assert.Contains("pass --backbone resnet18 (or no --backbone), or give a torchvision resnet50 checkpoint with --backbone-weights FILE.pth", e.Message);
        var o = BackboneWeights.ImageNet.Configure(new RetinaNetOptions(2), backbone: ResNetDepth.ResNet18);
        Assert.Equal((ResNetDepth.ResNet18Cntk, BackboneNormKind.Frozen, 3), (o.Backbone, o.BackboneNorm, o.TrainableBackboneLayers));
        Assert.All(o.ImageStd, s => Assert.Equal(1 / 255.0, s, 12));
    }

    [Fact]
    public void ParseReadsImageNetAndFiles()
    {
        Assert.Same(BackboneWeights.Random, BackboneWeights.Parse(null));
        Assert.Same(BackboneWeights.ImageNet, BackboneWeights.Parse("ImageNet"));
        var f = BackboneWeights.Parse("w/resnet50-0676ba61.pth");
        Assert.Equal(BackboneWeightsKind.TorchvisionFile, f.Kind);
        Assert.Equal(Path.GetFullPath("w/resnet50-0676ba61.pth"), f.Path);
    }
}

public class GroupNormBackboneTests
{
    [Fact]
    public void GroupNormStartsAsIdentityAffineAndKeepsItsOutputWhenPreparedForInference()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var body = new ResNetBody(ResNetDepth.ResNet18, BackboneNormKind.GroupNorm);
        var sd = body.state_dict();
        Assert.True((sd["layer3.1.bn2.weight"] == 1).all().item<bool>());
        Assert.True((sd["layer3.1.bn2.bias"] == 0).all().item<bool>());
        Assert.DoesNotContain("bn1.running_mean", sd.Keys); // GroupNorm has no statistics
        body.eval();
        using var noGrad = TorchSharp.torch.no_grad();
        var x = TorchSharp.torch.randn(2, 3, 64, 64);
        var before = body.forward(x)[2];
        body.SetFoldedBatchNorm(true); // nothing to fold: the same computation
        Assert.True(before.allclose(body.forward(x)[2], 1e-5, 1e-5));
    }
}
