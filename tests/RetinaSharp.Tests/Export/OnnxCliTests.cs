// `retina export` and `--engine onnxruntime` of `retina detect` / `retina eval`, in-process: the exported file's
// detections equal those of the TorchSharp engine on the same checkpoint and images, and so do the COCO AP numbers of `retina eval`; detect
// streams detections.jsonl and a re-run skips the images already in it; bad input is one message naming the option or file.
using System.Text.Json;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Serving;
using RetinaSharp.Tests.Data;

namespace RetinaSharp.Tests.Export;

[Collection(OnnxCollection.Name)]
public sealed class OnnxCliTests(OnnxFixture onnx, Xunit.Abstractions.ITestOutputHelper output)
{
    private static List<CocoResult> Results(string file) => [.. CocoJson.ReadResults(file)];

    private static void AssertSameResults(IReadOnlyList<CocoResult> expected, IReadOnlyList<CocoResult> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal((expected[i].ImageId, expected[i].CategoryId), (actual[i].ImageId, actual[i].CategoryId));
            Assert.Equal(expected[i].Score, actual[i].Score, 1e-4);
            Assert.Equal(expected[i].X, actual[i].X, 1e-3);
            Assert.Equal(expected[i].Y, actual[i].Y, 1e-3);
            Assert.Equal(expected[i].Width, actual[i].Width, 1e-3);
            Assert.Equal(expected[i].Height, actual[i].Height, 1e-3);
        }
    }

    private string ExportedOnnx()
    {
        var (code, error, path) = onnx.CliExport;
        Assert.True(code == CliApp.Ok, error);
        return path;
    }

    private string Detect(string outDir, params string[] extra)
    {
        var (code, log, error) = OnnxFixture.RunWithOutput(["detect", "--weights", ExportedOnnx(), "--engine", "onnxruntime", Path.Combine(onnx.CheckpointFolder, "images"),
            "--out", outDir, "--draw-threshold", "0.3", .. extra]);
        Assert.True(code == CliApp.Ok, error);
        return log;
    }

    [Fact]
    public void ExportThenDetectWithOnnxRuntimeEqualsTorchSharp()
    {
        using var temp = new TempDir();
        using (var d = new OnnxRuntimeDetector(ExportedOnnx()))
            Assert.Equal("Trouser", d.Categories[1].Name);
        Detect(temp["ort"]);
        var actual = Results(temp["ort/detections.json"]);
        // The references: `retina detect` with the TorchSharp engine on the checkpoint, and RetinaNet.Detect on the same
        // files in this process (NCHW): image ids 1..N in file order, category id = label + 1, XYWH.
        var (code, _, error) = OnnxFixture.RunWithOutput("detect", "--weights", onnx.Checkpoint, Path.Combine(onnx.CheckpointFolder, "images"),
            "--out", temp["torchsharp"], "--draw-threshold", "0.3");
        Assert.True(code == CliApp.Ok, error);
        var cli = Results(temp["torchsharp/detections.json"]);
        var expected = onnx.TorchSharpResults();
        Assert.NotEmpty(expected);
        output.WriteLine($"{expected.Count} detections in {onnx.SceneFiles.Length} scenes; scores {expected.Min(r => r.Score):0.000}..{expected.Max(r => r.Score):0.000}");
        AssertSameResults(expected, actual);
        // The TorchSharp engine of the CLI (batch norm folded, channels-last where this machine's oneDNN allows it, 4 files
        // read per step) gives the same detections: images of other sizes never share its forward passes
        // (RetinaNet.DetectIndependently). Before that, the GroupNorm heads of this model took their statistics over the
        // padding of the 256-wide scene: scores moved by 0.017 and `retina eval` gave AP 0.490 against 0.846.
        AssertSameResults(expected, cli);
    }

    [Fact]
    public void DetectStreamsJsonLinesAndARerunSkipsFinishedImages()
    {
        using var temp = new TempDir();
        string outDir = temp["run"], jsonl = Path.Combine(outDir, DetectCommand.JsonLinesFileName), coco = Path.Combine(outDir, "detections.json");
        Detect(outDir);
        var files = onnx.SceneFiles;
        var lines = DetectionsJsonLines.Read(jsonl).ToList();
        // One line per image in file order, with its id, file, size, drawing and the same detections as detections.json.
        Assert.Equal(files, lines.Select(l => l.FileName));
        Assert.Equal([1L, 2, 3, 4, 5], lines.Select(l => l.ImageId));
        Assert.Equal(onnx.Images.Select(i => (i.Width, i.Height)), lines.Select(l => (l.Width, l.Height)));
        Assert.Equal("scene1.detections.png", lines[1].Drawn);
        Assert.True(File.Exists(Path.Combine(outDir, "scene1.detections.png")));
        var first = Results(coco);
        Assert.NotEmpty(first);
        AssertSameResults(first, [.. lines.SelectMany(l => l.Detections)]);
        Assert.All(lines, l => Assert.All(l.Detections, r => Assert.Equal(l.ImageId, r.ImageId)));
        using (var doc = JsonDocument.Parse(File.ReadAllText(coco)))
            Assert.Equal(files[0], doc.RootElement[0].GetProperty("file_name").GetString());

        // A run killed during the fourth image: three complete lines and half of the fourth. The re-run keeps the three,
        // drops the half line, detects the last two images and writes the same detections.json as the full run.
        var raw = File.ReadAllLines(jsonl);
        Assert.Equal(5, raw.Length);
        File.WriteAllText(jsonl, string.Join('\n', raw.Take(3)) + "\n" + raw[3][..(raw[3].Length / 2)]);
        File.Delete(coco);
        string log = Detect(outDir);
        Assert.Contains("Skipping 3 images already in", log);
        Assert.Contains("2 to go", log);
        Assert.Equal(raw, File.ReadAllLines(jsonl));
        AssertSameResults(first, Results(coco));

        // Everything done: nothing to detect, the same files again.
        Assert.Contains("Skipping 5 images already in", Detect(outDir));
        Assert.Equal(raw, File.ReadAllLines(jsonl));

        // Other options than the run being continued: refused, naming the option and both values.
        var (code, error) = OnnxFixture.Run("detect", "--weights", ExportedOnnx(), "--engine", "onnxruntime", Path.Combine(onnx.CheckpointFolder, "images"),
            "--out", outDir, "--draw-threshold", "0.5");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--draw-threshold 0.5: the detections in", error);
        Assert.Contains("were made with 0.3", error);
    }

    [Fact]
    public void EvalWithOnnxRuntimeGivesTheApOfTorchSharp()
    {
        // Ground truth that makes AP informative for a model with deterministic (untrained) weights: on each scene, its ten
        // best TorchSharp detections, moved 2 px right and 1 px down, are the objects. Then the IoU of a match is below 1, so
        // AP over the IoU thresholds 0.5:0.95 moves with every box, and with every score through the ranking across scenes.
        var torchSharp = onnx.TorchSharpResults();
        var files = onnx.SceneFiles;
        var images = files.Select((f, i) => new CocoImage(i + 1, Path.GetFileName(f), onnx.Images[i].Width, onnx.Images[i].Height)).ToList();
        var objects = torchSharp.GroupBy(r => r.ImageId).SelectMany(g => g.OrderByDescending(r => r.Score).Take(10)).Select((r, i) => new CocoAnnotation(i + 1, r.ImageId, r.CategoryId, r.X + 2, r.Y + 1, r.Width, r.Height, r.Width * r.Height, false)).ToList();
        Assert.Equal(50, objects.Count);
        var truth = new CocoInstances(images, objects, OnnxFixture.Categories);
        string gt = Path.Combine(onnx.CheckpointFolder, "images", "instances_self.json");
        CocoJson.WriteInstances(gt, truth);
        var expected = CocoEvaluator.Evaluate(truth, torchSharp).Stats.ToArray();
        output.WriteLine($"{objects.Count} objects; TorchSharp AP {expected[0]:0.0000}, AP50 {expected[1]:0.0000}");
        Assert.InRange(expected[0], 0.1, 0.9);

        using var temp = new TempDir();
        double[] Eval(string engine)
        {
            // ONNX Runtime: the checkpoint exported in memory (the .onnx file path is what the detect tests run).
            string outDir = temp[engine];
            var (code, _, error) = OnnxFixture.RunWithOutput("eval", "--data", gt, "--weights", onnx.Checkpoint, "--engine", engine, "--out", outDir);
            Assert.True(code == CliApp.Ok, error);
            if (engine == "onnxruntime") Assert.Contains("ONNX Runtime on CPU", error);
            using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, EvalCommand.MetricsFileName)));
            var stats = metrics.RootElement.GetProperty("stats");
            return [.. CocoStats.Names.Select(n => stats.GetProperty(n).GetDouble())];
        }
        var ort = Eval("onnxruntime");
        for (int i = 0; i < CocoStats.Names.Count; i++)
            Assert.Equal(expected[i], ort[i], 1e-6);
        // `retina eval --engine torchsharp` on the same files: the same AP (its folded batch norm rounds differently, 1e-6).
        var cli = Eval("torchsharp");
        for (int i = 0; i < CocoStats.Names.Count; i++)
            Assert.Equal(expected[i], cli[i], 1e-4);
    }

    [Fact]
    public void OnnxFileOptionsThatCannotChangeAreRefusedByName()
    {
        using var temp = new TempDir();
        string images = Path.Combine(onnx.CheckpointFolder, "images"), onnxFile = ExportedOnnx();
        var r = OnnxFixture.Run("detect", "--weights", onnxFile, "--engine", "onnxruntime", "--min-size", "64", images, "--out", temp["o"]);
        Assert.Equal(CliApp.BadInput, r.Code);
        Assert.Contains("--min-size 64: the ONNX file", r.Error);
        Assert.Contains("has 128 built in", r.Error);
        var noEngine = OnnxFixture.Run("detect", "--weights", onnxFile, images, "--out", temp["o"]);
        Assert.Contains("add --engine onnxruntime", noEngine.Error);
        var both = OnnxFixture.Run("export", "--weights", onnx.Checkpoint, "--onnx", temp["m.onnx"], "--size", "128x128", "--dynamic");
        Assert.Contains("--size 128x128 and --dynamic", both.Error);
        var opset = OnnxFixture.Run("export", "--weights", onnx.Checkpoint, "--onnx", temp["m.onnx"], "--opset", "9");
        Assert.Contains("--opset 9: the exporter writes opsets 11 to 17", opset.Error);
    }
}
