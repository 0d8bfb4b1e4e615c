// `retina export` and `--engine onnxruntime` of `retina detect` / `retina eval`, in-process: the exported file's
// detections equal TorchSharp's on the same checkpoint and images; bad input is one message naming the option or file.
using System.CommandLine;
using System.Text.Json;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Modeling;
using RetinaSharp.Serving;
using RetinaSharp.Tests.Data;

namespace RetinaSharp.Tests.Export;

public sealed class OnnxCliTests(OnnxSceneFixture scenes) : IClassFixture<OnnxSceneFixture>
{
    private static (int Code, string Error) Run(params string[] args)
    {
        var root = new RootCommand { ExportCommand.Create(), DetectCommand.Create(), EvalCommand.Create() };
        var err = new StringWriter();
        int code = CliApp.Invoke(root, args, new StringWriter(), err);
        return (code, err.ToString());
    }

    private string Checkpoint(string dir)
    {
        using var model = OnnxExportTests.SmallModel();
        var names = Enumerable.Range(0, 10).Select(i => new CocoCategory(i + 1, FashionMnistSet.ClassNames[i])).ToList();
        string path = Path.Combine(dir, "model.rsnet");
        RetinaNetCheckpoint.Save(model, path, names);
        for (int i = 0; i < scenes.Images.Length; i++) ImageIO.SavePng(scenes.Images[i], Path.Combine(dir, "images", $"scene{i}.png"));
        return path;
    }

    private static List<(long Image, long Category, double[] Box, double Score)> Results(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        return [.. doc.RootElement.EnumerateArray().Select(r => (r.GetProperty("image_id").GetInt64(), r.GetProperty("category_id").GetInt64(),
            r.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray(), r.GetProperty("score").GetDouble()))];
    }

    [Fact]
    public void ExportThenDetectWithOnnxRuntimeEqualsTorchSharp()
    {
        using var temp = new TempDir();
        string dir = temp.Path;
        Directory.CreateDirectory(Path.Combine(dir, "images"));
        string ckpt = Checkpoint(dir), onnx = Path.Combine(dir, "out", "model.onnx");
        var export = Run("export", "--weights", ckpt, "--onnx", onnx, "--opset", "13");
        Assert.True(export.Code == CliApp.Ok, export.Error);
        using (var d = new OnnxRuntimeDetector(onnx))
            Assert.Equal("Trouser", d.Categories[1].Name);

        var ort = Run("detect", "--weights", onnx, "--engine", "onnxruntime", Path.Combine(dir, "images"), "--out", Path.Combine(dir, "ort"), "--draw-threshold", "0.3");
        Assert.True(ort.Code == CliApp.Ok, ort.Error);
        var actual = Results(Path.Combine(dir, "ort", "detections.json"));
        // The reference: RetinaNet.Detect on the same files, NCHW (channels-last convolutions are unreliable on CPUs whose
        // oneDNN lacks cache sizes, issue 18), as COCO results: image ids 1..N in file order, category id = label + 1, XYWH.
        using var model = RetinaNetCheckpoint.Load(ckpt);
        model.PrepareForInference(channelsLast: false);
        var expected = new List<(long Image, long Category, double[] Box, double Score)>();
        for (int i = 0; i < scenes.Images.Length; i++)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var d = model.Detect([ImageIO.ToTensor(ImageIO.Load(Path.Combine(dir, "images", $"scene{i}.png")))])[0];
            var b = d.Boxes.data<float>().ToArray();
            var sc = d.Scores.data<float>().ToArray();
            var l = d.Labels.data<long>().ToArray();
            for (int j = 0; j < sc.Length; j++)
                if (sc[j] >= 0.05)
                    expected.Add((i + 1, l[j] + 1, [b[4 * j], b[4 * j + 1], b[4 * j + 2] - b[4 * j], b[4 * j + 3] - b[4 * j + 1]], sc[j]));
        }
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal((expected[i].Image, expected[i].Category), (actual[i].Image, actual[i].Category));
            Assert.Equal(expected[i].Score, actual[i].Score, 1e-4);
            for (int j = 0; j < 4; j++) Assert.Equal(expected[i].Box[j], actual[i].Box[j], 1e-3);
        }
    }

    [Fact]
    public void OnnxFileOptionsThatCannotChangeAreRefusedByName()
    {
        using var temp = new TempDir();
        string dir = temp.Path;
        Directory.CreateDirectory(Path.Combine(dir, "images"));
        string ckpt = Checkpoint(dir), onnx = Path.Combine(dir, "model.onnx");
        Assert.Equal(CliApp.Ok, Run("export", "--weights", ckpt, "--onnx", onnx, "--size", "128x128").Code);
        var r = Run("detect", "--weights", onnx, "--engine", "onnxruntime", "--min-size", "64", Path.Combine(dir, "images"), "--out", Path.Combine(dir, "o"));
        Assert.Equal(CliApp.BadInput, r.Code);
        Assert.Contains("--min-size 64: the ONNX file", r.Error);
        var noEngine = Run("detect", "--weights", onnx, Path.Combine(dir, "images"), "--out", Path.Combine(dir, "o"));
        Assert.Contains("add --engine onnxruntime", noEngine.Error);
        var both = Run("export", "--weights", ckpt, "--onnx", onnx, "--size", "128x128", "--dynamic");
        Assert.Contains("--size 128x128 and --dynamic", both.Error);
        var opset = Run("export", "--weights", ckpt, "--onnx", onnx, "--opset", "9");
        Assert.Contains("--opset 9: the exporter writes opsets 11 to 17", opset.Error);
    }
}
