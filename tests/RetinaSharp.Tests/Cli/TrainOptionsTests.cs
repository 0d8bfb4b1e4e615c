using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Modeling;
using RetinaSharp.Recipes;
using RetinaSharp.Training;

namespace RetinaSharp.Tests.Cli;

/// <summary>`retina train`'s paper knobs and --recipe reach RetinaNetOptions / TrainingOptions; bad values are refused by option.</summary>
public class TrainOptionsTests
{
    private static readonly string[] Required = ["--data", "/nonexistent/instances.json", "--out", "/tmp/unused-run"];

    private static (TrainSettings S, RetinaNetOptions M, TrainingOptions O) Resolve(params string[] args) =>
        TrainCommand.Resolve(3, [.. Required, .. args]);

    [Fact]
    public void Without_options_the_paper_recipe_is_trained()
    {
        var (s, m, o) = Resolve();
        Assert.Equal("paper", s.Recipe);
        // From random weights (no --backbone-weights): trainable batch norm and all 5 stages, the rest the paper's.
        Assert.Equal(new RetinaNetOptions(3) { BackboneNorm = BackboneNormKind.BatchNorm, TrainableBackboneLayers = 5 }.ToJson(), m.ToJson());
        Assert.Equal(90000, o.Iterations);
        Assert.Null(o.Epochs);
        Assert.Equal(OptimizerKind.Sgd, o.Optimizer);
        Assert.Null(o.BaseLearningRate); // 0.01 x batch / 16
        Assert.Equal(1e-4, o.WeightDecay);
        Assert.Null(o.NormWeightDecay);
        Assert.Null(o.StepMilestones!);
        Assert.Equal(500, o.WarmupIterations);
        Assert.Equal(16, s.BatchSize);
    }

    [Fact]
    public void Every_paper_knob_reaches_the_model_options()
    {
        var (_, m, o) = Resolve("--alpha", "0.5", "--gamma", "1.5", "--prior", "0.02", "--box-loss", "smooth-l1", "--smooth-l1-beta", "0.1",
            "--p6-from", "c5", "--anchor-sizes", "16,32,64,128,256", "--aspect-ratios", "0.5,1", "--fg-iou", "0.6", "--bg-iou", "0.3",
            "--scales", "480,800", "--norm-weight-decay", "0", "--lr-steps", "0.5,0.75", "--iterations", "100", "--head-groupnorm");
        Assert.Equal(0.5, m.Alpha);
        Assert.Equal(1.5, m.Gamma);
        Assert.Equal(0.02, m.PriorProbability);
        Assert.Equal(BoxLossKind.SmoothL1, m.BoxLoss);
        Assert.Equal(0.1, m.SmoothL1Beta);
        Assert.True(m.P6FromC5);
        Assert.Equal([[16, 20, 25], [32, 40, 50], [64, 80, 101], [128, 161, 203], [256, 322, 406]], m.EffectiveAnchorSizes());
        Assert.Equal([0.5, 1.0], m.AspectRatios);
        Assert.Equal(6, m.AnchorsPerLocation);
        Assert.Equal(0.6, m.FgIouThreshold);
        Assert.Equal(0.3, m.BgIouThreshold);
        Assert.Equal([480, 800], m.TrainMinSizes!);
        Assert.True(m.HeadGroupNorm);
        Assert.Equal(0.0, o.NormWeightDecay);
        Assert.Equal([0.5, 0.75], o.StepMilestones!);
        Assert.Equal(20, o.WarmupIterations); // the paper's 500 shortened to a fifth of 100
        Assert.Equal([50L, 75L], o.Schedule(100, 16).Milestones);
    }

    [Fact]
    public void Alpha_none_anchor_levels_and_giou_are_understood()
    {
        var (_, m, _) = Resolve("--alpha", "none", "--anchor-sizes", "32,40/64,80/128,160/256,320/512,640", "--box-loss", "giou", "--p6-from", "p5");
        Assert.Null(m.Alpha);
        Assert.Equal([[32, 40], [64, 80], [128, 160], [256, 320], [512, 640]], m.EffectiveAnchorSizes());
        Assert.Equal(6, m.AnchorsPerLocation);
        Assert.Equal(BoxLossKind.GIoU, m.BoxLoss);
        Assert.False(m.P6FromC5);
    }

    [Fact]
    public void Recipe_v2_is_torchvisions_retinanet_resnet50_fpn_v2_recipe()
    {
        var (s, m, o) = Resolve("--recipe", "v2");
        Assert.Equal("v2", s.Recipe);
        Assert.True(m.HeadGroupNorm);
        Assert.Equal(BoxLossKind.GIoU, m.BoxLoss);
        Assert.True(m.P6FromC5);
        Assert.Equal(BackboneNormKind.BatchNorm, m.BackboneNorm);
        Assert.Equal([480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800], m.TrainMinSizes!);
        Assert.Equal((800, 1333), (m.MinSize, m.MaxSize));
        Assert.Equal(OptimizerKind.AdamW, o.Optimizer);
        Assert.Equal(1e-4, o.BaseLearningRate);
        Assert.Equal(0.05, o.WeightDecay);
        Assert.Equal(0.0, o.NormWeightDecay);
        Assert.Equal(26, o.Epochs);
        Assert.Null(o.Iterations);
        Assert.Equal([16.0 / 26, 22.0 / 26], o.StepMilestones!);
        Assert.Equal(1000, o.WarmupIterations);
        Assert.Equal(5, m.TrainableBackboneLayers); // from random weights every stage trains
        Assert.Equal((TrainingRecipe.TorchvisionV2.Model with { NumClasses = 3, TrainableBackboneLayers = 5 }).ToJson(), m.ToJson());
    }

    [Fact]
    public void A_recipes_norm_and_stages_describe_a_pretrained_start()
    {
        // torchvision: the paper/v1 with weights_backbone freezes batch norm; v2 keeps BatchNorm2d; both train 3 stages.
        var (_, paper, _) = Resolve("--backbone-weights", "imagenet");
        Assert.Equal((BackboneNormKind.Frozen, 3), (paper.BackboneNorm, paper.TrainableBackboneLayers));
        var (_, v2, _) = Resolve("--recipe", "v2", "--backbone-weights", "imagenet");
        Assert.Equal((BackboneNormKind.BatchNorm, 3), (v2.BackboneNorm, v2.TrainableBackboneLayers));
        Assert.Equal(ResNetDepth.ResNet18Cntk, v2.Backbone);
        Assert.True(v2.HeadGroupNorm);
        var (_, given, _) = Resolve("--recipe", "v2", "--backbone-weights", "imagenet", "--backbone-norm", "frozen", "--trainable-layers", "5");
        Assert.Equal((BackboneNormKind.Frozen, 5), (given.BackboneNorm, given.TrainableBackboneLayers));
    }

    [Fact]
    public void Options_given_override_the_recipe()
    {
        var (_, m, o) = Resolve("--recipe", "v2", "--box-loss", "l1", "--p6-from", "p5", "--scales", "800", "--lr", "0.0002", "--optimizer", "sgd",
            "--norm-weight-decay", "0.05", "--iterations", "10000");
        Assert.Equal(BoxLossKind.L1, m.BoxLoss);
        Assert.False(m.P6FromC5);
        Assert.True(m.HeadGroupNorm);
        Assert.Equal([800], m.TrainMinSizes!);
        Assert.Equal(2e-4, o.BaseLearningRate);
        Assert.Equal(OptimizerKind.Sgd, o.Optimizer);
        Assert.Equal(0.05, o.NormWeightDecay);
        Assert.Equal(10000, o.Iterations);
        Assert.Null(o.Epochs);
    }

    [Theory]
    [InlineData("--alpha", "1.5", "--alpha 1.5: must be in [0, 1], or none")]
    [InlineData("--alpha", "half", "--alpha: 'half' is not a number in [0, 1] or none")]
    [InlineData("--gamma", "-1", "--gamma -1: must be a number >= 0")]
    [InlineData("--prior", "0", "--prior 0: must be in (0, 1)")]
    [InlineData("--prior", "1", "--prior 1: must be in (0, 1)")]
    [InlineData("--box-loss", "huber", "--box-loss: unknown box loss 'huber' (l1, smooth-l1 or giou)")]
    [InlineData("--smooth-l1-beta", "-0.5", "--smooth-l1-beta -0.5: must be a number >= 0")]
    [InlineData("--p6-from", "p4", "--p6-from: 'p4' is not c5 or p5")]
    [InlineData("--anchor-sizes", "32,64", "--anchor-sizes: '32,64' gives 2 base sizes; give 5")]
    [InlineData("--anchor-sizes", "32,40/64", "--anchor-sizes: '32,40/64' must give 5 '/'-separated levels")]
    [InlineData("--anchor-sizes", "32,64,0,256,512", "--anchor-sizes: '0' is not a positive number of pixels")]
    [InlineData("--aspect-ratios", "0,1", "--aspect-ratios 0,1: must be positive")]
    [InlineData("--fg-iou", "0", "--fg-iou 0: must be in (0, 1]")]
    [InlineData("--bg-iou", "0.6", "--bg-iou 0.6: must be in [0, --fg-iou (0.5)]")]
    [InlineData("--recipe", "v3", "--recipe: unknown recipe 'v3' (known: paper, v2, demo)")]
    [InlineData("--scales", "2000", "--scales 2000: a shorter side must be at most --max-size (1333)")]
    [InlineData("--lr-steps", "0.8,0.5", "--lr-steps 0.8,0.5: must be increasing fractions of the run, each in (0, 1)")]
    [InlineData("--norm-weight-decay", "-1", "--norm-weight-decay -1: must be 0 or more")]
    public void Bad_values_are_refused_with_the_option_and_why(string option, string value, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Resolve(option, value));
        Assert.Contains(expected, e.Message);
        // The command itself: exit code 2 and the same message, before any data is read.
        var err = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { TrainCommand.Create() }, ["train", .. Required, option, value], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains(expected, err.ToString());
    }

    [Fact]
    public void Help_names_the_recipes_and_each_default()
    {
        var output = new StringWriter();
        CliApp.Invoke(new RootCommand { TrainCommand.Create() }, ["train", "--help"], output, new StringWriter());
        string help = output.ToString();
        foreach (var s in new[] { "--recipe", "paper", "v2", "--alpha", "--gamma", "--prior", "--box-loss", "--p6-from", "--anchor-sizes", "--aspect-ratios",
                     "--fg-iou", "--bg-iou", "--norm-weight-decay", "--lr-steps", "[default: 0.25]", "[default: 0.5]", "[default: 0.4]", "480,512,...,800" })
            Assert.Contains(s, help);
    }
}

/// <summary>`retina train --recipe v2` trains end to end (GIoU loss, GroupNorm heads, P6 from C5, multi-scale, no decay on norm layers).</summary>
[Collection(RetinaSharp.Tests.Training.TorchRngCollection.Name)]
public class TrainRecipeRunTests
{
    [Fact]
    public void Recipe_v2_trains_and_saves_its_configuration()
    {
        using var dir = new RetinaSharp.Tests.Data.TempDir();
        string data = RetinaSharp.Tests.Data.TinyDatasets.WriteCoco(dir.Path);
        string run = dir["run"];
        var err = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { TrainCommand.Create() },
            ["train", "--data", data, "--out", run, "--recipe", "v2", "--backbone", "resnet18", "--min-size", "32", "--max-size", "64", "--scales", "32,64",
             "--fpn-channels", "32", "--batch-size", "2", "--iterations", "2", "--trainable-layers", "5"], new StringWriter(), err);
        Assert.True(code == CliApp.Ok, err.ToString());
        using var model = RetinaNetCheckpoint.Load(Path.Combine(run, "model.rsnet"));
        var o = model.Options;
        Assert.Equal(BoxLossKind.GIoU, o.BoxLoss);
        Assert.True(o.HeadGroupNorm);
        Assert.True(o.P6FromC5);
        Assert.Equal([32, 64], o.TrainMinSizes!);
        Assert.Equal(32, o.MinSize);
    }
}
