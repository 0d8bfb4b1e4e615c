using RetinaSharp.Modeling;
using RetinaSharp.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Training;

/// <summary>torchvision's --norm-weight-decay (the v2 recipe's 0 on norm layers) and step milestones at chosen fractions.</summary>
[Collection(TorchRngCollection.Name)]
public class NormWeightDecayTests
{
    [Fact]
    public void Norm_parameters_are_the_batch_norm_and_group_norm_weights_and_biases()
    {
        using var model = new RetinaNet(new RetinaNetOptions(2)
        {
            Backbone = ResNetDepth.ResNet18, FpnChannels = 32, HeadGroupNorm = true, BackboneNorm = BackboneNormKind.BatchNorm, TrainableBackboneLayers = 5,
        });
        var names = TrainingOptimizer.NormParameterNames(model);
        Assert.Contains("backbone.body.bn1.weight", names);
        Assert.Contains("backbone.body.layer1.0.bn2.bias", names);
        Assert.Contains("head.classification_head.conv.0.1.weight", names);
        Assert.Contains("head.regression_head.conv.3.1.bias", names);
        Assert.DoesNotContain("backbone.body.conv1.weight", names);
        Assert.DoesNotContain("head.classification_head.conv.0.0.weight", names);
        // ResNet-18: 20 batch norms (bn1, 16 in the blocks, 3 downsample) and 2 heads x 4 GroupNorms, each a weight and a bias.
        Assert.Equal((20 + 8) * 2, names.Count);
        using var frozen = new RetinaNet(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, FpnChannels = 32 });
        Assert.Empty(TrainingOptimizer.NormParameterNames(frozen)); // frozen batch norm has buffers only
    }

    [Theory]
    [InlineData(OptimizerKind.AdamW)]
    [InlineData(OptimizerKind.Sgd)]
    public void Norm_weight_decay_replaces_the_weight_decay_of_norm_parameters_only(OptimizerKind kind)
    {
        using var scope = NewDisposeScope();
        var conv = ones(2).requires_grad_(true);
        var norm = ones(2).requires_grad_(true);
        conv.grad = zeros(2);
        norm.grad = zeros(2);
        var optimizer = TrainingOptimizer.Create(kind, [("conv.weight", conv), ("bn.weight", norm)], weightDecay: 0.5, momentum: 0,
            normParameters: new HashSet<string> { "bn.weight" }, normWeightDecay: 0);
        Assert.Equal([0.5, 0.0], optimizer.ParameterWeightDecay);
        optimizer.Step(0.1);
        // With a zero gradient only the decay moves a weight: AdamW p *= 1 - lr·wd = 0.95; SGD p -= lr·wd·p = 0.95.
        Assert.Equal([0.95f, 0.95f], conv.data<float>().ToArray());
        Assert.Equal([1f, 1f], norm.data<float>().ToArray());
    }

    [Fact]
    public void Step_milestones_at_chosen_fractions_divide_the_rate_there()
    {
        var s = new LearningRateSchedule(1.0, 100, warmupIterations: 0, milestoneFractions: [0.5, 0.75]);
        Assert.Equal([50L, 75L], s.Milestones);
        Assert.Equal(1.0, s.At(49));
        Assert.Equal(0.1, s.At(50), 12);
        Assert.Equal(0.01, s.At(75), 12);
        Assert.Equal([67L, 89L], new LearningRateSchedule(1.0, 100, warmupIterations: 0).Milestones); // the paper: round(200/3), round(800/9)
        var e = Assert.Throws<ArgumentException>(() => new LearningRateSchedule(1.0, 100, milestoneFractions: [0.7, 0.3]));
        Assert.Equal("milestoneFractions", e.ParamName);
    }
}
