// Hand-checked behaviour of the RetinaNet parts: frozen BN, sizes, initialisation, freezing, bad input, options.
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

public sealed class RetinaNetPartsTests
{
    private static RetinaNetOptions Tiny(int k = 3) =>
        new(k) { Backbone = ResNetDepth.ResNet18, FpnChannels = 64, MinSize = 64, MaxSize = 96 };

    [Fact]
    public void FrozenBatchNormComputesTheAffineNormalisation()
    {
        using var scope = NewDisposeScope();
        using var bn = new FrozenBatchNorm2d(2, eps: 0);
        using (no_grad())
        {
            bn.get_buffer("weight")!.copy_(tensor(new[] { 2f, 1f }));
            bn.get_buffer("bias")!.copy_(tensor(new[] { 1f, -1f }));
            bn.get_buffer("running_mean")!.copy_(tensor(new[] { 3f, 0f }));
            bn.get_buffer("running_var")!.copy_(tensor(new[] { 4f, 0.25f }));
        }
        var x = tensor(new[] { 5f, 7f }).reshape(1, 2, 1, 1);
        var y = bn.forward(x).reshape(-1).data<float>().ToArray();
        Assert.Equal(2 * (5 - 3) / 2f + 1, y[0], 6);      // 3
        Assert.Equal(1 * (7 - 0) / 0.5f - 1, y[1], 6);    // 13
        Assert.Equal(["bias", "running_mean", "running_var", "weight"], bn.state_dict().Keys.Order());
        Assert.Empty(bn.parameters());
        // The bias must not drift between calls (the TorchSharp 0.107 ops.FrozenBatchNorm2d bug).
        Assert.Equal(y, bn.forward(x).reshape(-1).data<float>().ToArray());
    }

    [Theory]
    [InlineData(480, 640, 800, 1333, 800, 1066)]     // 800/480 = 1.667: 640 -> 1066.67 -> 1066
    [InlineData(500, 2000, 800, 1333, 333, 1333)]    // long side caps: scale 0.6665
    [InlineData(150, 200, 160, 256, 160, 213)]
    [InlineData(180, 130, 160, 256, 221, 160)]
    public void ResizedSizeFollowsMinAndMaxSize(long h, long w, int min, int max, long eh, long ew)
    {
        var t = new DetectionTransform(new RetinaNetOptions(1) { MinSize = min, MaxSize = max });
        Assert.Equal((eh, ew), t.ResizedSize(h, w));
    }

    [Fact]
    public void FeatureSizesHalveWithRoundingUp()
    {
        Assert.Equal([(100L, 100L), (50L, 50L), (25L, 25L), (13L, 13L), (7L, 7L)], RetinaNet.FeatureSizes((800, 800)));
        Assert.Equal([(28L, 28L), (14L, 14L), (7L, 7L), (4L, 4L), (2L, 2L)], RetinaNet.FeatureSizes((224, 224)));
    }

    [Fact]
    public void ForwardShapesMatchAnchorsAndFeatureSizes()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny());
        using var noGrad = no_grad();
        var batch = model.Transform.Preprocess([rand(3, 40, 70), rand(1, 64, 50)]);
        Assert.Equal([2L, 3, 96, 96], batch.Images.shape);   // 40x70 → 54x96 (max side caps), 64x50 → 81x64; padded to 96x96
        var (cls, box, sizes) = model.HeadOutputsPerLevel(batch.Images);
        Assert.Equal(RetinaNet.FeatureSizes(batch.PaddedSize), sizes);
        var anchors = model.AnchorsPerLevel(batch.PaddedSize, sizes);
        for (int l = 0; l < 5; l++)
        {
            Assert.Equal([2L, anchors[l].shape[0], 3], cls[l].shape);
            Assert.Equal([2L, anchors[l].shape[0], 4], box[l].shape);
        }
    }

    [Fact]
    public void ClassificationBiasStartsAtThePrior()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny() with { PriorProbability = 0.01 });
        var sd = model.state_dict();
        var b = sd["head.classification_head.cls_logits.bias"];
        Assert.Equal(27, b.shape[0]);   // A = 9, K = 3
        Assert.True(b.allclose(full(27, -Math.Log(99.0)), 0, 1e-6));
        Assert.Equal(0, sd["head.regression_head.bbox_reg.bias"].abs().max().item<float>());
        var w = sd["head.classification_head.conv.0.0.weight"];
        Assert.InRange(w.std().item<float>(), 0.009, 0.011);   // N(0, 0.01²), 36864 samples
    }

    [Fact]
    public void GroupNormHeadStartsAtTheIdentityWithTorchvisionV2Keys()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny() with { HeadGroupNorm = true, P6FromC5 = true });
        var sd = model.state_dict();
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(1f, sd[$"head.classification_head.conv.{i}.1.weight"].min().item<float>());
            Assert.Equal(1f, sd[$"head.regression_head.conv.{i}.1.weight"].max().item<float>());
            Assert.Equal(0f, sd[$"head.classification_head.conv.{i}.1.bias"].abs().max().item<float>());
            Assert.False(sd.ContainsKey($"head.classification_head.conv.{i}.0.bias"));
        }
        Assert.Equal([64L, 512, 3, 3], sd["backbone.fpn.extra_blocks.p6.weight"].shape);   // P6 from C5 (512 channels in ResNet-18)
    }

    [Theory]
    [InlineData(0, new string[0])]
    [InlineData(3, new[] { "layer2", "layer3", "layer4" })]
    [InlineData(5, new[] { "conv1", "layer1", "layer2", "layer3", "layer4" })]
    public void TrainableBackboneLayersFreezesFromTheStem(int trainable, string[] expectedStages)
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny() with { TrainableBackboneLayers = trainable });
        var stages = model.named_parameters().Where(p => p.name.StartsWith("backbone.body.", StringComparison.Ordinal) && p.parameter.requires_grad)
            .Select(p => p.name.Split('.')[2]).Distinct().Order().ToArray();
        Assert.Equal(expectedStages, stages);
        Assert.All(model.named_parameters().Where(p => !p.name.StartsWith("backbone.body.", StringComparison.Ordinal)), p => Assert.True(p.parameter.requires_grad));
    }

    [Fact]
    public void BadImagesAreNamed()
    {
        using var scope = NewDisposeScope();
        var t = new DetectionTransform(Tiny());
        var e1 = Assert.Throws<ArgumentException>(() => t.Preprocess([rand(3, 10, 10), rand(4, 10, 10)]));
        Assert.Contains("images[1]", e1.Message);
        Assert.Contains("4", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => t.Preprocess([rand(3, 0, 10)]));
        Assert.Contains("0 pixels", e2.Message);
        Assert.Throws<ArgumentException>(() => t.Preprocess([rand(10, 10)]));
        Assert.Throws<ArgumentException>(() => t.Preprocess([]));
    }

    [Fact]
    public void BadTargetsAreNamed()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny());
        var img = rand(3, 32, 32);
        var degenerate = new DetectionTarget(tensor(new[] { 1f, 1f, 5f, 5f, 8f, 2f, 4f, 9f }).reshape(2, 4), tensor(new[] { 0L, 1L }));
        var e = Assert.Throws<ArgumentException>(() => model.ComputeLosses([img], [degenerate]));
        Assert.Contains("targets[0].Boxes[1]", e.Message);
        var badLabel = new DetectionTarget(tensor(new[] { 1f, 1f, 5f, 5f }).reshape(1, 4), tensor(new[] { 3L }));
        Assert.Contains("value 3 outside 0..2", Assert.Throws<ArgumentException>(() => model.ComputeLosses([img], [badLabel])).Message);
        Assert.Throws<ArgumentException>(() => model.ComputeLosses([img, img], [badLabel]));
    }

    [Fact]
    public void ImagesWithoutBoxesGiveZeroBoxLossAndTrainableGradients()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny());
        var losses = model.ComputeLosses([rand(3, 48, 64)], [DetectionTarget.Empty()]);
        Assert.Equal(0f, losses.BoxRegression.item<float>());
        Assert.True(losses.Classification.item<float>() > 0);
        TorchRuntime.Backward(losses.Total);
        var g = model.named_parameters().First(p => p.name == "head.classification_head.cls_logits.weight").parameter.grad;
        Assert.NotNull(g);
        Assert.True(g!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void DetectMapsBoxesIntoEachInputImage()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny() with { ScoreThreshold = 0.0, TopkCandidates = 100 });
        var dets = model.Detect([rand(3, 30, 50), rand(3, 90, 40)]);
        Assert.Equal(2, dets.Count);
        Assert.InRange(dets[0].Count, 1, 100);
        foreach (var (d, (h, w)) in dets.Zip(new[] { (30f, 50f), (90f, 40f) }))
        {
            Assert.True(d.Boxes.min().item<float>() >= 0);
            Assert.True(d.Boxes[.., 2].max().item<float>() <= w + 1e-3);
            Assert.True(d.Boxes[.., 3].max().item<float>() <= h + 1e-3);
            var s = d.Scores.data<float>().ToArray();
            Assert.Equal(s.OrderByDescending(v => v), s);
        }
    }

    [Fact]
    public void BFloat16InferenceStaysCloseToFloat32AndReturnsFloat32()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var fp32 = new RetinaNet(Tiny());
        using var bf16 = new RetinaNet(Tiny());
        foreach (var (k, t) in bf16.state_dict()) t.copy_(fp32.state_dict()[k]);
        fp32.PrepareForInference();
        bf16.PrepareForInference(bfloat16: true);
        Assert.Equal(ScalarType.BFloat16, bf16.InferenceDtype);
        var batch = fp32.Transform.Preprocess([rand(3, 64, 64)]).Images;
        var (c32, b32) = fp32.forward(batch);
        var (c16, b16) = bf16.forward(batch);
        Assert.Equal(ScalarType.Float32, c16.dtype);
        Assert.InRange((c32 - c16).abs().max().item<float>(), 0, 0.05);
        Assert.InRange((b32 - b16).abs().max().item<float>(), 0, 0.05);
        Assert.Equal(ScalarType.Float32, bf16.Detect([rand(3, 50, 60)])[0].Boxes.dtype);
    }

    [Fact]
    public void CrowdBoxesAreNotMatchedAndIgnoreTheAnchorsOnThem()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny());
        var anchors = tensor(new[] { 0f, 0, 10, 10, 0, 0, 10, 9, 20, 20, 30, 30, 50, 50, 60, 60 }).reshape(4, 4);
        var target = new DetectionTarget(tensor(new[] { 20f, 20, 30, 30, 0, 0, 10, 10 }).reshape(2, 4), tensor(new[] { 1L, 2L }),
            tensor(new[] { false, true }));
        // Anchor 2 matches box 0 (IoU 1); anchors 0 and 1 overlap the crowd box 1 (IoU 1, 0.9): ignored; anchor 3: background.
        Assert.Equal([-2L, -2, 0, -1], model.MatchAnchors(target, anchors).data<long>().ToArray());
        Assert.Equal([1L, 1, 0, -1], model.MatchAnchors(target with { IsCrowd = null }, anchors).data<long>().ToArray());
    }

    [Fact]
    public void OptionsRoundTripThroughJsonAndValidate()
    {
        var o = new RetinaNetOptions(7) { Backbone = ResNetDepth.ResNet101, BoxLoss = BoxLossKind.GIoU, AnchorSizes = [[16], [32], [64], [128], [256]], Alpha = null };
        var back = RetinaNetOptions.FromJson(o.ToJson());
        Assert.Equal(o.ToJson(), back.ToJson());
        Assert.Contains("\"ResNet101\"", o.ToJson());
        Assert.Equal(3, back.AnchorsPerLocation);
        var e = Assert.Throws<ArgumentException>(() => (new RetinaNetOptions(3) with { BgIouThreshold = 0.6 }).Validate());
        Assert.Contains("BgIouThreshold", e.Message);
        Assert.Throws<ArgumentException>(() => new RetinaNetOptions(0).Validate());
        Assert.Equal([32, 40, 50], new RetinaNetOptions(1).EffectiveAnchorSizes()[0]);
        Assert.Equal([512, 645, 812], new RetinaNetOptions(1).EffectiveAnchorSizes()[4]);
    }
}
