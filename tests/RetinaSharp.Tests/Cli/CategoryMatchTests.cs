using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using RetinaSharp.Tests.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Cli;

/// <summary>Train/val categories must agree before training; model labels map to dataset categories by stored name.</summary>
[Collection(TorchRngCollection.Name)]
public class CategoryMatchTests
{
    /// <summary>Writes a COCO set of two 32x32 images, one box each, with the given categories (the box uses the first).</summary>
    internal static string CocoSet(string dir, string name, params CocoCategory[] categories)
    {
        Directory.CreateDirectory(dir);
        var px = new byte[32 * 32 * 3];
        var images = new List<CocoImage>();
        for (int i = 1; i <= 2; i++)
        {
            string f = $"{name}{i}.png";
            ImageIO.SavePng(new RgbImage(px, 32, 32), Path.Combine(dir, f));
            images.Add(new CocoImage(i, f, 32, 32));
        }
        var anns = images.Select(im => new CocoAnnotation(im.Id, im.Id, categories[0].Id, 4, 4, 10, 10, 100, false)).ToList();
        string path = Path.Combine(dir, name + ".json");
        CocoJson.WriteInstances(path, new CocoInstances(images, anns, categories));
        return path;
    }

    [Fact]
    public void Train_refuses_a_validation_set_with_other_categories_before_any_training()
    {
        string dir = TempDir.Create();
        string train = CocoSet(dir, "train", new CocoCategory(1, "cat"), new CocoCategory(2, "dog"));
        string val = CocoSet(dir, "val", new CocoCategory(1, "dog"), new CocoCategory(2, "cat"));
        string outDir = Path.Combine(dir, "run");
        var err = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { TrainCommand.Create() },
            ["train", "--data", train, "--val", val, "--out", outDir, "--backbone", "resnet18", "--min-size", "32", "--max-size", "32",
             "--fpn-channels", "8", "--batch-size", "1", "--iterations", "1"], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, code);
        string e = err.ToString();
        Assert.Contains("--val: its categories differ from those of --data", e);
        Assert.Contains("id 1: 'cat' in --data, 'dog' in --val", e);
        Assert.Contains("id 2: 'dog' in --data, 'cat' in --val", e);
        Assert.False(File.Exists(Path.Combine(outDir, "checkpoint.rstrain")));
    }

    [Fact]
    public void Same_categories_pass_and_missing_ones_are_named()
    {
        var a = new CategoryMap([new CocoCategory(1, "cat"), new CocoCategory(2, "dog")]);
        CategoryMatch.RequireSame(a, new CategoryMap([new CocoCategory(2, "dog"), new CocoCategory(1, "cat")]), "--data", "--val");
        var e = Assert.Throws<ArgumentException>(() => CategoryMatch.RequireSame(a, new CategoryMap([new CocoCategory(1, "cat")]), "--data", "--val"));
        Assert.Contains("id 2 'dog': only in --data", e.Message);
    }

    [Fact]
    public void Model_labels_map_to_dataset_categories_by_name_and_other_names_are_refused()
    {
        // Model trained on classes [Trouser, Bag] (labels 0, 1); a dataset that numbers them the other way round.
        var model = new[] { new CocoCategory(1, "Trouser"), new CocoCategory(2, "Bag") };
        var dataset = new CategoryMap([new CocoCategory(1, "Bag"), new CocoCategory(2, "Trouser")]);
        var map = EvalCommand.LabelMap(2, dataset, "m.rsnet", model);
        Assert.Equal(2L, map(0));
        Assert.Equal(1L, map(1));
        // Without stored names: the old contiguous mapping.
        Assert.Equal(1L, EvalCommand.LabelMap(2, dataset, "m.rsnet")(0));

        var other = new CategoryMap([new CocoCategory(1, "Bag"), new CocoCategory(2, "Coat")]);
        var e = Assert.Throws<ArgumentException>(() => EvalCommand.LabelMap(2, other, "m.rsnet", model));
        Assert.Contains("only in the model: 'Trouser'; only in the dataset: 'Coat'", e.Message);
    }

    [Fact]
    public void Eval_data_refuses_a_model_named_for_other_categories_and_leaves_no_out_folder()
    {
        string dir = TempDir.Create();
        string data = CocoSet(dir, "val", new CocoCategory(1, "cat"), new CocoCategory(2, "dog"));
        string weights = Path.Combine(dir, "model.rsnet");
        using (var scope = NewDisposeScope())
        using (var model = new RetinaNet(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, MinSize = 32, MaxSize = 32, FpnChannels = 8 }))
            RetinaNetCheckpoint.Save(model, weights, [new CocoCategory(1, "cat"), new CocoCategory(2, "bird")]);
        string outDir = Path.Combine(dir, "ev");
        var err = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { EvalCommand.Create() }, ["eval", "--data", data, "--weights", weights, "--out", outDir], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("only in the model: 'bird'; only in the dataset: 'dog'", err.ToString());
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Model_file_keeps_the_class_names_and_still_loads()
    {
        string dir = TempDir.Create();
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, MinSize = 32, MaxSize = 32, FpnChannels = 8 });
        string path = Path.Combine(dir, "model.rsnet");
        RetinaNetCheckpoint.Save(model, path, [new CocoCategory(7, "Trouser"), new CocoCategory(3, "Bag")]);
        var names = RetinaNetCheckpoint.ReadCategories(path);
        Assert.NotNull(names);
        Assert.Equal([new CocoCategory(7, "Trouser"), new CocoCategory(3, "Bag")], names);
        using var back = RetinaNetCheckpoint.Load(path);
        Assert.Equal(2, back.Options.NumClasses);

        string plain = Path.Combine(dir, "plain.rsnet");
        RetinaNetCheckpoint.Save(model, plain);
        Assert.Null(RetinaNetCheckpoint.ReadCategories(plain));
    }

    [Fact]
    public void A_training_checkpoint_given_as_weights_points_at_model_rsnet()
    {
        string dir = TempDir.Create();
        string ckpt = Path.Combine(dir, "checkpoint.rstrain");
        File.WriteAllBytes(ckpt, [.. "RSTRAIN\n"u8.ToArray(), 1, 0, 0, 0, 9, 9, 9, 9]);
        var e = Assert.Throws<RetinaSharp.IO.DataFormatException>(() => RetinaNetCheckpoint.Load(ckpt));
        Assert.Contains("this is a training checkpoint (for retina train --resume); use the model file " + Path.Combine(dir, "model.rsnet"), e.Message);
    }
}
