using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Modeling;
using RetinaSharp.Tests.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Cli;

[Collection(TorchRngCollection.Name)]
public class DetectCommandTests
{
    private static (string Checkpoint, string Image, string Dir) TinyModelAndImage(double headWeightScale = 1)
    {
        string dir = TempDir.Create();
        using var scope = NewDisposeScope();
        manual_seed(0);
        // A prior of 0.5 makes every anchor score about 0.5, so the untrained model detects something.
        using var model = new RetinaNet(new RetinaNetOptions(3)
        {
            Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64, FpnChannels = 16, PriorProbability = 0.5,
            AnchorSizes = [[16], [32], [64], [128], [256]], AspectRatios = [1.0],
        });
        using (no_grad())
            foreach (var p in model.Head.parameters()) p.mul_(headWeightScale);
        string ckpt = Path.Combine(dir, "model.rsnet");
        RetinaNetCheckpoint.Save(model, ckpt);
        var pixels = new byte[64 * 48 * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7 % 251);
        string image = Path.Combine(dir, "scene.png");
        ImageIO.SavePng(new RgbImage(pixels, 64, 48), image);
        return (ckpt, image, dir);
    }

    private static int Run(params string[] args)
    {
        var root = new RootCommand { DetectCommand.Create() };
        return CliApp.Invoke(root, args, new StringWriter(), new StringWriter());
    }

    [Fact]
    public void Detections_json_reloads_through_the_evaluator_and_unreadable_images_exit_1()
    {
        var (ckpt, image, dir) = TinyModelAndImage();
        string bad = Path.Combine(dir, "broken.png");
        File.WriteAllText(bad, "not a png");
        string outDir = Path.Combine(dir, "out");

        int code = Run("detect", "--weights", ckpt, image, bad, "--out", outDir, "--score-threshold", "0.05");

        Assert.Equal(CliApp.Failed, code);   // one image was skipped
        var results = CocoJson.ReadResults(Path.Combine(outDir, "detections.json"));
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.Equal(1, r.ImageId));
        // Without --classes the category id is the model's label, as torchvision's COCO models use it.
        Assert.All(results, r => Assert.InRange(r.CategoryId, 0, 2));
        Assert.All(results, r => Assert.True(r.X >= 0 && r.Y >= 0 && r.X + r.Width <= 64.001 && r.Y + r.Height <= 48.001));
        Assert.True(File.Exists(Path.Combine(outDir, "scene.detections.png")));

        // The same file scores AP 1 against ground truth made from its own detections (one per category kept).
        // (boxes of anchors lying in the padding are clipped to zero height, as in torchvision: skip those)
        var best = results.Where(r => r.Width > 0 && r.Height > 0).GroupBy(r => r.CategoryId).Select(g => g.OrderByDescending(r => r.Score).First()).ToList();
        var gt = new CocoInstances(
            [new CocoImage(1, "scene.png", 64, 48)],
            best.Select((r, i) => new CocoAnnotation(i + 1, 1, r.CategoryId, r.X, r.Y, r.Width, r.Height, r.Width * r.Height, false)).ToList(),
            [new CocoCategory(0, "c0"), new CocoCategory(1, "c1"), new CocoCategory(2, "c2")]);
        var eval = CocoEvaluator.Evaluate(gt, best);
        Assert.Equal(1.0, eval.Stats.Ap50, 6);
    }

    [Fact]
    public void Num_classes_that_disagree_with_the_weights_is_bad_input()
    {
        var (ckpt, image, dir) = TinyModelAndImage();
        int code = Run("detect", "--weights", ckpt, image, "--out", Path.Combine(dir, "o"), "--num-classes", "5");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Equal(CliApp.Ok, Run("detect", "--weights", ckpt, image, "--out", Path.Combine(dir, "o2"), "--num-classes", "3"));
    }

    [Fact]
    public void Image_ids_come_from_the_classes_json_when_every_file_matches_by_name()
    {
        var (ckpt, image, dir) = TinyModelAndImage();
        string other = Path.Combine(dir, "other.png");
        File.Copy(image, other);
        // The json lists scene.png as image 7 (relative to its folder) and other.png as 3 under a subfolder name: matched by bare name.
        string json = Path.Combine(dir, "instances.json");
        CocoJson.WriteInstances(json, new CocoInstances([new CocoImage(7, "scene.png", 64, 48), new CocoImage(3, "val/other.png", 64, 48)], [],
            [new CocoCategory(1, "a"), new CocoCategory(2, "b"), new CocoCategory(3, "c")]));
        var gt = CocoJson.ReadInstances(json);
        var (ids, note) = DetectCommand.ImageIds([other, image], gt, json);
        Assert.Equal([3L, 7L], ids);
        Assert.Contains("are those of", note);

        (ids, note) = DetectCommand.ImageIds([image, Path.Combine(dir, "unknown.png")], gt, json);
        Assert.Equal([1L, 2L], ids);
        Assert.Contains("1 of 2 input files are not among its images", note);
        Assert.Contains("1..1 in input order (give --classes", DetectCommand.ImageIds([image], null, null).Note);

        string outDir = Path.Combine(dir, "ids");
        Assert.Equal(CliApp.Ok, Run("detect", "--weights", ckpt, image, "--classes", json, "--out", outDir));
        var results = CocoJson.ReadResults(Path.Combine(outDir, "detections.json"));
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.Equal(7, r.ImageId));
    }

    [Fact]
    public void Class_names_stored_in_the_model_give_the_category_ids_without_classes()
    {
        var (ckpt, image, dir) = TinyModelAndImage();
        using (var model = RetinaNetCheckpoint.Load(ckpt))
            RetinaNetCheckpoint.Save(model, ckpt, [new CocoCategory(11, "a"), new CocoCategory(12, "b"), new CocoCategory(13, "c")]);
        string outDir = Path.Combine(dir, "named");
        Assert.Equal(CliApp.Ok, Run("detect", "--weights", ckpt, image, "--out", outDir));
        var results = CocoJson.ReadResults(Path.Combine(outDir, "detections.json"));
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.InRange(r.CategoryId, 11, 13));
    }

    [Fact]
    public void All_inputs_unreadable_is_bad_input_and_writes_no_detections_json()
    {
        var (ckpt, _, dir) = TinyModelAndImage();
        string bad = Path.Combine(dir, "zero.png");
        File.WriteAllBytes(bad, []);
        string outDir = Path.Combine(dir, "none");
        var err = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { DetectCommand.Create() }, ["detect", "--weights", ckpt, bad, "--out", outDir], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("images: the input file could not be read (see the warning above)", err.ToString());
        Assert.False(File.Exists(Path.Combine(outDir, "detections.json")));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void A_folder_input_skips_earlier_drawn_outputs()
    {
        var (_, image, dir) = TinyModelAndImage();
        File.Copy(image, Path.Combine(dir, "scene.detections.png"));
        Assert.Equal([image], DetectCommand.ExpandInputs([dir]));
    }

    [Fact]
    public void Bf16_option_runs_the_network_in_bfloat16_with_scores_close_to_float32()
    {
        // Larger head weights spread the scores (the initial head gives every anchor the prior's 0.5); much larger ones
        // saturate many scores at 1, and the 20 best are then an arbitrary pick among ties.
        var (ckpt, image, dir) = TinyModelAndImage(headWeightScale: 3);
        string fp32 = Path.Combine(dir, "fp32"), bf16 = Path.Combine(dir, "bf16");
        Assert.Equal(CliApp.Ok, Run("detect", "--weights", ckpt, image, "--out", fp32));
        Assert.Equal(CliApp.Ok, Run("detect", "--weights", ckpt, image, "--out", bf16, "--bf16"));
        var a = CocoJson.ReadResults(Path.Combine(fp32, "detections.json")).OrderByDescending(r => r.Score).Take(20).ToList();
        var b = CocoJson.ReadResults(Path.Combine(bf16, "detections.json")).ToList();
        Assert.Equal(20, a.Count);
        Assert.True(b.Count >= 20);
        // bfloat16 keeps 8 bits of mantissa: the scores move (so the option took effect) but by far less than 0.02. Each
        // float32 detection is compared with the bfloat16 detection of its class on the same box (IoU >= 0.9): comparing
        // ranks instead breaks when near-tied saturated scores swap places or NMS keeps the other of two overlapping boxes.
        static double Iou(CocoResult p, CocoResult q)
        {
            double iw = Math.Min(p.X + p.Width, q.X + q.Width) - Math.Max(p.X, q.X), ih = Math.Min(p.Y + p.Height, q.Y + q.Height) - Math.Max(p.Y, q.Y);
            double inter = Math.Max(0, iw) * Math.Max(0, ih);
            return inter / (p.Width * p.Height + q.Width * q.Height - inter);
        }
        var pairs = a.Select(p => (p, q: b.Where(q => q.CategoryId == p.CategoryId && Iou(p, q) >= 0.9).OrderBy(q => Math.Abs(q.Score - p.Score)).FirstOrDefault()))
                     .Where(t => t.q is not null).ToList();
        Assert.True(pairs.Count >= 15, $"only {pairs.Count} of the 20 best float32 detections have a bfloat16 twin");
        Assert.Contains(pairs, t => t.p.Score != t.q!.Score);
        Assert.All(pairs, t => Assert.InRange(Math.Abs(t.p.Score - t.q!.Score), 0, 0.02));
    }
}

/// <summary>Drawn images never overwrite each other; each detection record names its image file.</summary>
[Collection(TorchRngCollection.Name)]
public class DetectOutputNamesTests
{
    [Fact]
    public void Drawn_names_stay_flat_when_unique_and_keep_folders_or_extensions_when_not()
    {
        Assert.Equal(["a.detections.png", "b.detections.png"], DetectCommand.DrawnNames(["/d/x/a.png", "/d/y/b.jpg"]));
        Assert.Equal(["x/scene.detections.png", "y/scene.detections.png", "y/other.detections.png"],
            DetectCommand.DrawnNames(["/d/x/scene.png", "/d/y/scene.png", "/d/y/other.png"]));
        Assert.Equal(["scene.png.detections.png", "scene.jpg.detections.png"], DetectCommand.DrawnNames(["/d/scene.png", "/d/scene.jpg"]));
        Assert.Equal(["a/s.detections.png", "b/s.detections.png"], DetectCommand.DrawnNames(["/a/s.png", "/b/s.png"]));
    }

    [Fact]
    public void Two_folders_with_the_same_file_names_give_two_drawings_and_records_with_file_names()
    {
        string dir = TempDir.Create();
        using var scope = NewDisposeScope();
        manual_seed(0);
        using var model = new RetinaNet(new RetinaNetOptions(2)
        {
            Backbone = ResNetDepth.ResNet18, MinSize = 32, MaxSize = 32, FpnChannels = 8, PriorProbability = 0.5,
            AnchorSizes = [[16], [32], [64], [128], [256]], AspectRatios = [1.0],
        });
        string ckpt = Path.Combine(dir, "model.rsnet");
        RetinaNetCheckpoint.Save(model, ckpt);
        foreach (var sub in new[] { "a", "b" })
        {
            Directory.CreateDirectory(Path.Combine(dir, sub));
            var px = new byte[32 * 32 * 3];
            for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * (sub == "a" ? 7 : 13) % 251);
            ImageIO.SavePng(new RgbImage(px, 32, 32), Path.Combine(dir, sub, "scene.png"));
        }
        string outDir = Path.Combine(dir, "out");
        var root = new RootCommand { DetectCommand.Create() };
        int code = CliApp.Invoke(root, ["detect", "--weights", ckpt, Path.Combine(dir, "a"), Path.Combine(dir, "b"), "--out", outDir], new StringWriter(), new StringWriter());

        Assert.Equal(CliApp.Ok, code);
        Assert.True(File.Exists(Path.Combine(outDir, "a", "scene.detections.png")));
        Assert.True(File.Exists(Path.Combine(outDir, "b", "scene.detections.png")));
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "detections.json")));
        var records = doc.RootElement.EnumerateArray().ToList();
        Assert.NotEmpty(records);
        Assert.All(records, r => Assert.Equal(Path.Combine(dir, r.GetProperty("image_id").GetInt64() == 1 ? "a" : "b", "scene.png"), r.GetProperty("file_name").GetString()));
        Assert.Contains(records, r => r.GetProperty("image_id").GetInt64() == 2);
        // Still a COCO results file for our reader (and pycocotools, which ignores extra keys).
        Assert.Equal(records.Count, CocoJson.ReadResults(Path.Combine(outDir, "detections.json")).Count);
    }
}
