using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Tests.Data;

namespace RetinaSharp.Tests.Cli;

public class BackboneOptionsTests
{
    private static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var root = new RootCommand { TrainCommand.Create() };
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CliApp.Invoke(root, args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData(new[] { "--trainable-layers", "3" }, "--trainable-layers 3 with a randomly initialised backbone: conv1 and layer1 would stay frozen at random values; pass --trainable-layers 5, or start from pretrained weights with --backbone-weights imagenet|FILE.pth.")]
    [InlineData(new[] { "--backbone-norm", "frozen" }, "--backbone-norm frozen with a randomly initialised backbone: frozen batch norm would stay the identity and never learn; pass --backbone-norm batch or group, or start from pretrained weights with --backbone-weights imagenet|FILE.pth.")]
    [InlineData(new[] { "--backbone-weights", "imagenet", "--backbone-norm", "group" }, "--backbone-norm group with pretrained backbone weights: the checkpoint's batch-norm statistics have no place in GroupNorm; pass --backbone-norm frozen (the paper) or batch, or train from random weights (no --backbone-weights) with --backbone-norm group.")]
    [InlineData(new[] { "--backbone-norm", "layer" }, "--backbone-norm: unknown normalisation 'layer' (frozen, batch or group)")]
    public void Combinations_that_freeze_random_weights_are_refused_with_what_to_pass(string[] extra, string expected)
    {
        using var dir = new TempDir();
        string data = TinyDatasets.WriteCoco(dir.Path);
        var (code, _, err) = Invoke(["train", "--data", data, "--out", dir["run"], "--backbone", "resnet18", "--min-size", "32", "--max-size", "32",
            "--fpn-channels", "8", "--batch-size", "2", "--iterations", "1", .. extra]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Equal($"error: {expected}", err.Trim());
        Assert.False(Directory.Exists(dir["run"]));
    }

    [Fact]
    public void Train_from_imagenet_weights_stores_the_ml_net_backbone_and_its_normalisation()
    {
        using var dir = new TempDir();
        string data = TinyDatasets.WriteCoco(dir.Path);
        var (code, _, err) = Invoke("train", "--data", data, "--out", dir["run"], "--backbone-weights", "imagenet", "--min-size", "32", "--max-size", "32",
            "--fpn-channels", "8", "--batch-size", "2", "--iterations", "1");
        Assert.True(code == CliApp.Ok, err);
        using var model = RetinaSharp.Modeling.RetinaNetCheckpoint.Load(Path.Combine(dir["run"], "model.rsnet"));
        Assert.Equal(RetinaSharp.Modeling.ResNetDepth.ResNet18Cntk, model.Options.Backbone);
        Assert.Equal(RetinaSharp.Modeling.BackboneNormKind.Frozen, model.Options.BackboneNorm);
        Assert.Equal(3, model.Options.TrainableBackboneLayers);
        Assert.Equal(123.1516 / 255, model.Options.ImageMean[0], 4);
    }
}
