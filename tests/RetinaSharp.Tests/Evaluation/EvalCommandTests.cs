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

    [Fact]
    public void ModelFormIsNotAvailableYet()
    {
        var (code, _, stderr) = Run("eval", "--data", "coco", "--weights", "w.pth");
        Assert.Equal(CliApp.Failed, code);
        Assert.Contains("not available yet", stderr);
    }
}
