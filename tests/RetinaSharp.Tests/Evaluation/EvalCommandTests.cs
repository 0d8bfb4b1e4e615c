// `retina eval` in-process: exit codes, printed summary, written report and plot.
using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;

namespace RetinaSharp.Tests.Evaluation;

public sealed class EvalCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "retina-evalcmd-" + Guid.NewGuid().ToString("N"));
    private readonly string _gt, _dt;

    public EvalCommandTests()
    {
        Directory.CreateDirectory(_dir);
        _gt = Path.Combine(_dir, "instances.json");
        _dt = Path.Combine(_dir, "results.json");
        CocoJson.WriteInstances(_gt, new CocoInstances(
            [new CocoImage(1, "a.jpg", 640, 480), new CocoImage(2, "b.jpg", 640, 480)],
            [new CocoAnnotation(10, 1, 1, 100, 100, 50, 50, 2500, false), new CocoAnnotation(11, 2, 2, 0, 0, 200, 150, 30000, false)],
            [new CocoCategory(1, "cat"), new CocoCategory(2, "dog")]));
        CocoJson.WriteResults(_dt, [new CocoResult(1, 1, 300, 300, 50, 50, 0.9), new CocoResult(1, 1, 100, 100, 50, 50, 0.8), new CocoResult(2, 2, 0, 0, 200, 150, 0.7)]);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(EvalCommand.Create());
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Invoke(root, args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void PrintsSummaryAndWritesReportAndPlot()
    {
        string outDir = Path.Combine(_dir, "out");
        var (code, stdout, stderr) = Run("eval", "--gt", _gt, "--dt", _dt, "--out", outDir, "--per-category");
        Assert.True(code == CliApp.Ok, stderr);
        // cat: FP above TP -> 0.5; dog: 1 -> mean 0.75.
        Assert.Contains(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.750\n", stdout);
        Assert.Contains("dog", stdout);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, EvalCommand.MetricsFileName)));
        Assert.Equal(0.75, doc.RootElement.GetProperty("stats").GetProperty("AP").GetDouble(), 9);
        byte[] png = File.ReadAllBytes(Path.Combine(outDir, EvalCommand.CurvesFileName));
        Assert.True(png.Length > 1000);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        // The HTML report: a.jpg and b.jpg do not exist, so no thumbnails (drawn on grey), and no anchors without a model.
        string html = File.ReadAllText(Path.Combine(outDir, EvalCommand.ReportFileName));
        Assert.Contains($"wrote {Path.Combine(outDir, EvalCommand.ReportFileName)}", stdout);
        Assert.Contains("2 images without a picture in the report: 2 not found or unreadable", stdout);
        Assert.Contains("\"anchors\":null", html);
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
    }

    [Fact]
    public void UnknownImageIdInResultsIsBadInput()
    {
        string bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}, {"image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]""");
        var (code, _, stderr) = Run("eval", "--gt", _gt, "--dt", bad);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("result #1 (image_id 99)", stderr);
        Assert.Contains("image_id", stderr);
    }

    [Fact]
    public void MissingFileOrOptionIsBadInput()
    {
        var (code, _, stderr) = Run("eval", "--gt", _gt, "--dt", Path.Combine(_dir, "missing.json"));
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("file not found", stderr);
        var (code2, _, stderr2) = Run("eval", "--dt", _dt);
        Assert.Equal(CliApp.BadInput, code2);
        Assert.Contains("--gt", stderr2);
    }

}

/// <summary>Two 64x48 images, their COCO ground truth (and a variant with an unreadable third image), and a
/// random-weight ResNet-18 RetinaNet checkpoint, built once for the model-form tests.</summary>
public sealed class EvalModelFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "retina-evalmodel-" + Guid.NewGuid().ToString("N"));
    public string Data { get; }
    public string DataWithBadImage { get; }
    public string Weights { get; }

    public EvalModelFixture()
    {
        Directory.CreateDirectory(Dir);
        var rng = new Random(3);
        for (int i = 1; i <= 2; i++)
        {
            var pixels = new byte[64 * 48 * 3];
            rng.NextBytes(pixels);
            RetinaSharp.Data.ImageIO.SavePng(new RgbImage(pixels, 64, 48), Path.Combine(Dir, $"{i}.png"));
        }
        File.WriteAllText(Path.Combine(Dir, "bad.png"), "not a png");
        CocoImage[] images = [new CocoImage(1, "1.png", 64, 48), new CocoImage(2, "2.png", 64, 48)];
        CocoAnnotation[] anns = [new CocoAnnotation(1, 1, 3, 4, 4, 20, 20, 400, false), new CocoAnnotation(2, 2, 8, 10, 10, 30, 20, 600, false)];
        CocoCategory[] cats = [new CocoCategory(3, "a"), new CocoCategory(8, "b")];
        Data = Path.Combine(Dir, "instances.json");
        CocoJson.WriteInstances(Data, new CocoInstances(images, anns, cats));
        DataWithBadImage = Path.Combine(Dir, "instances_bad.json");
        CocoJson.WriteInstances(DataWithBadImage, new CocoInstances([.. images, new CocoImage(3, "bad.png", 64, 48)], anns, cats));
        Weights = Path.Combine(Dir, "model.ckpt");
        using var model = new RetinaSharp.Modeling.RetinaNet(new RetinaSharp.Modeling.RetinaNetOptions(2)
        {
            Backbone = RetinaSharp.Modeling.ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64,
        });
        RetinaSharp.Modeling.RetinaNetCheckpoint.Save(model, Weights);
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

/// <summary>`retina eval --data --weights` in-process.</summary>
public sealed class EvalCommandModelTests(EvalModelFixture fx) : IClassFixture<EvalModelFixture>
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(EvalCommand.Create());
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Invoke(root, args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void RunsTheModelThenEvaluates()
    {
        string outDir = Path.Combine(fx.Dir, "out");
        // score threshold 0: every kept detection is written; a random model finds little, but the run is complete.
        var (code, stdout, stderr) = Run("eval", "--data", fx.Data, "--weights", fx.Weights, "--score-threshold", "0", "--out", outDir);
        Assert.True(code == CliApp.Ok, stderr);
        Assert.Contains("2 images, 2 ground-truth boxes", stdout);
        Assert.Contains(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ", stdout);
        var written = CocoJson.ReadResults(Path.Combine(outDir, EvalCommand.DetectionsFileName));
        Assert.NotEmpty(written);
        Assert.All(written, r => Assert.Contains(r.CategoryId, new long[] { 3, 8 }));
        Assert.True(written.Count(r => r.ImageId == 1) <= 100);
        Assert.True(File.Exists(Path.Combine(outDir, EvalCommand.MetricsFileName)));
        // The HTML report knows the model's anchors: every box is counted for the coverage, and both images are embedded.
        string html = File.ReadAllText(Path.Combine(outDir, EvalCommand.ReportFileName));
        Assert.Contains("\"anchors\":{\"fgIou\":0.5,", html);
        Assert.Contains("\"total\":2,", html);
        Assert.Contains("<script type=\"text/plain\" id=\"thumb-1\">", html);
    }

    [Fact]
    public void UnreadableImageIsSkippedAndFailsTheRun()
    {
        var (code, stdout, stderr) = Run("eval", "--data", fx.DataWithBadImage, "--weights", fx.Weights);
        Assert.True(code == CliApp.Failed, stderr);
        Assert.Contains("skipped 1 unreadable image", stderr);
        Assert.Contains("bad.png", stderr);
        Assert.Contains("Average Precision", stdout);
    }

    [Fact]
    public void VocFolderAlsoGetsVocMeanAp()
    {
        using var dir = new RetinaSharp.Tests.Data.TempDir();
        var (root, classes) = RetinaSharp.Tests.Data.TinyDatasets.WriteVoc(dir["voc"]);
        string weights = dir["model3.ckpt"];
        using (var model = new RetinaSharp.Modeling.RetinaNet(new RetinaSharp.Modeling.RetinaNetOptions(3)
               { Backbone = RetinaSharp.Modeling.ResNetDepth.ResNet18, MinSize = 32, MaxSize = 48 }))
            RetinaSharp.Modeling.RetinaNetCheckpoint.Save(model, weights);
        var (code, stdout, stderr) = Run("eval", "--data", root, "--split", "trainval", "--classes", classes, "--weights", weights, "--score-threshold", "0");
        Assert.True(code == CliApp.Ok, stderr);
        Assert.Contains("3 images, 3 ground-truth boxes", stdout);
        Assert.Contains("Pascal VOC mAP@0.5: ", stdout);
        Assert.Contains("(11-point, VOC2007)", stdout);
    }

    [Fact]
    public void ModelWithOtherClassCountIsBadInput()
    {
        using var dir = new RetinaSharp.Tests.Data.TempDir();
        var (root, classes) = RetinaSharp.Tests.Data.TinyDatasets.WriteVoc(dir["voc"]);
        var (code, _, stderr) = Run("eval", "--data", root, "--classes", classes, "--weights", fx.Weights);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("has 2 classes but the dataset has 3 categories", stderr);
    }

    [Fact]
    public void MixingTheTwoFormsOrAMissingWeightsIsBadInput()
    {
        Assert.Equal(CliApp.BadInput, Run("eval", "--data", fx.Data, "--gt", fx.Data).Code);
        var (code, _, stderr) = Run("eval", "--data", fx.Data);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--weights", stderr);
    }
}
