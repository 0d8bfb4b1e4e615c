using RetinaSharp.Modeling;
using RetinaSharp.Recipes;
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Recipes;

public class TrainingRecipeTests
{
    [Fact]
    public void Demo_recipe_is_the_demo_configuration()
    {
        var r = TrainingRecipe.Demo(128);
        var m = r.ModelOptions(10);
        // ML.NET's ImageNet ResNet-18 with frozen batch norm, every stage trained, its own normalisation (255·x - mean).
        Assert.Equal(RetinaSharp.Pretrained.BackboneWeightsKind.ImageNet, r.BackboneWeights.Kind);
        Assert.Equal(ResNetDepth.ResNet18Cntk, m.Backbone);
        Assert.Equal(BackboneNormKind.Frozen, m.BackboneNorm);
        Assert.All(m.ImageStd, s => Assert.Equal(1 / 255.0, s, 12));
        Assert.Equal((128, 128), (m.MinSize, m.MaxSize));
        Assert.Equal(64, m.FpnChannels);
        Assert.True(m.HeadGroupNorm);
        Assert.Equal(5, m.TrainableBackboneLayers);
        var scratch = TrainingRecipe.Demo(128, pretrained: false);
        Assert.Equal(RetinaSharp.Pretrained.BackboneWeightsKind.Random, scratch.BackboneWeights.Kind);
        Assert.Equal((ResNetDepth.ResNet18, BackboneNormKind.BatchNorm, 5), (scratch.Model.Backbone, scratch.Model.BackboneNorm, scratch.Model.TrainableBackboneLayers));
        // One octave below torchvision's anchors: 16, int(16·2^(1/3)) = 20, int(16·2^(2/3)) = 25 on P3 ... 256, 322, 406 on P7.
        Assert.Equal([16, 20, 25], m.EffectiveAnchorSizes()[0]);
        Assert.Equal([256, 322, 406], m.EffectiveAnchorSizes()[4]);
        Assert.Equal(8, r.BatchSize);
        Assert.Equal(OptimizerKind.AdamW, r.Training.Optimizer);
        Assert.Equal(5e-4, r.Training.BaseLearningRate);
        Assert.Equal(0.05, r.Training.WeightDecay);
        Assert.Equal(1.0, r.Training.GradientClipNorm);
        Assert.Equal(100, r.Training.WarmupIterations);
        Assert.Equal(LearningRateDecay.Cosine, r.Training.Decay);   // AP 0.611 against 0.593 with the paper's steps (TrainingRecipe.Demo)
        Assert.True(r.Augmentation.HorizontalFlip);

        var quick = TrainingRecipe.Demo(64, quick: true);
        Assert.Equal(32, quick.Model.FpnChannels);
        Assert.Equal(4, quick.BatchSize);
        Assert.Equal(4, quick.Training.WarmupIterations);
    }

    [Fact]
    public void TrainingFor_keeps_the_recipe_and_caps_the_warmup_at_a_fifth_of_the_run()
    {
        var paper = TrainingRecipe.Paper;
        var longRun = paper.TrainingFor(90000);
        Assert.Equal(500, longRun.WarmupIterations);
        Assert.Equal(90000, longRun.Iterations);
        var shortRun = paper.TrainingFor(1000);
        Assert.Equal(200, shortRun.WarmupIterations);
        Assert.Equal(1, paper.TrainingFor(3).WarmupIterations);
        var v2 = TrainingRecipe.TorchvisionV2.TrainingFor(100);
        Assert.Null(v2.Epochs);
        Assert.Equal(100, v2.Iterations);
        Assert.Equal(20, v2.WarmupIterations);
        Assert.Equal(OptimizerKind.AdamW, v2.Optimizer);
        Assert.Throws<ArgumentOutOfRangeException>(() => paper.TrainingFor(0));
    }

    [Fact]
    public void Paper_recipe_is_the_library_defaults()
    {
        var r = TrainingRecipe.Paper;
        Assert.Equal(new RetinaNetOptions(3).ToJson(), r.ModelOptions(3).ToJson());
        Assert.Equal(new TrainingOptions { Iterations = 90000 }, r.Training);
        Assert.Equal(16, r.BatchSize);
    }

    [Fact]
    public void V2_recipe_is_torchvisions_retinanet_resnet50_fpn_v2()
    {
        var r = TrainingRecipe.TorchvisionV2;
        var m = r.ModelOptions(91);
        Assert.True(m.HeadGroupNorm);
        Assert.Equal(BoxLossKind.GIoU, m.BoxLoss);
        Assert.True(m.P6FromC5);
        Assert.Equal(ResNetDepth.ResNet50, m.Backbone);
        Assert.Equal((800, 1333), (m.MinSize, m.MaxSize));
        Assert.Equal(OptimizerKind.AdamW, r.Training.Optimizer);
        Assert.Equal(1e-4, r.Training.BaseLearningRate);
        Assert.Equal(0.05, r.Training.WeightDecay);
        Assert.Equal(26, r.Training.Epochs);
        Assert.Equal(16, r.BatchSize);
    }

    [Fact]
    public void Named_finds_each_recipe_and_refuses_unknown_names_listing_the_known_ones()
    {
        Assert.Same(TrainingRecipe.Paper, TrainingRecipe.Named("paper"));
        Assert.Same(TrainingRecipe.TorchvisionV2, TrainingRecipe.Named("V2"));
        Assert.Equal("demo", TrainingRecipe.Named("demo").Name);
        var e = Assert.Throws<ArgumentException>(() => TrainingRecipe.Named("v3"));
        Assert.Contains("'v3'", e.Message);
        Assert.Contains("paper, v2, demo", e.Message);
        Assert.Throws<ArgumentException>(() => TrainingRecipe.Paper.ModelOptions(0));
    }
}
