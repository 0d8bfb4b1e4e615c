using System.Text.Json;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Tests.Training;

namespace RetinaSharp.Tests.Demo;

[Collection(RetinaSharp.Tests.Training.TorchRngCollection.Name)]
public class QuickDemoTests
{
    [Fact]
    public void Quick_demo_runs_end_to_end_and_writes_every_report_file()
    {
        string outDir = TempDir.Create();
        int code = DemoCommand.Run(DemoSettings.Defaults(quick: true, outDir));
        Assert.Equal(0, code);
        string report = Path.Combine(outDir, "report");
        foreach (var f in DemoCommand.ReportFiles)
        {
            var info = new FileInfo(Path.Combine(report, f));
            Assert.True(info.Exists, $"missing {f}");
            Assert.True(info.Length > 0, $"empty {f}");
        }
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "metrics.json")));
        var stats = metrics.RootElement.GetProperty("stats");
        Assert.Equal(["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"], stats.EnumerateObject().Select(p => p.Name));
        foreach (var p in stats.EnumerateObject())
            Assert.InRange(p.Value.GetDouble(), -1.0, 1.0);
        // One metrics schema with `retina eval --out` (CocoEvaluation.WriteJson), plus the demo's run.
        var perCategory = metrics.RootElement.GetProperty("per_category");
        Assert.Equal(10, perCategory.GetArrayLength());
        Assert.Equal(16, metrics.RootElement.GetProperty("num_images").GetInt32());
        var val = RetinaSharp.Data.DetectionDataset.Load(Path.Combine(outDir, "scenes", "instances_val.json"));
        Assert.Equal(val.BoxCount, perCategory.EnumerateArray().Sum(c => c.GetProperty("num_ground_truth").GetInt32()));
        Assert.False(metrics.RootElement.TryGetProperty("per_class", out _));
        var run = metrics.RootElement.GetProperty("run");
        Assert.Equal("demo", run.GetProperty("command").GetString());
        Assert.Equal(4, run.GetProperty("batch_size").GetInt32());
        Assert.Equal(64, run.GetProperty("scene_size").GetInt32());
        Assert.True(run.GetProperty("quick").GetBoolean());
        foreach (var png in new[] { "loss_curve.png", "pr_curves.png", "detections_grid.png" })
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(report, png))[..4]);
        Assert.Contains("AP", File.ReadAllText(Path.Combine(report, "README.md")));

        // report.html on the demo's validation set: the error kinds add up to the evaluator's TP/FP/FN at every IoU threshold,
        // in the library and in the page's data; the anchors of the demo model are known.
        var gt = RetinaSharp.Data.CocoJson.ReadInstances(Path.Combine(outDir, "scenes", "instances_val.json"));
        var dt = RetinaSharp.Data.CocoJson.ReadResults(Path.Combine(report, "detections_val.json"));
        var (evaluation, matches) = RetinaSharp.Evaluation.CocoEvaluator.EvaluateWithMatches(gt, dt);
        var errors = RetinaSharp.Reporting.DetectionErrors.Classify(gt, dt, matches);
        string html = File.ReadAllText(Path.Combine(report, "report.html"));
        const string open = "<script type=\"application/json\" id=\"report-data\">";
        int start = html.IndexOf(open, StringComparison.Ordinal) + open.Length;
        using var data = JsonDocument.Parse(html[start..html.IndexOf("</script>", start, StringComparison.Ordinal)]);
        var images = data.RootElement.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(16, images.Count);
        Assert.Equal(16, data.RootElement.GetProperty("thumbnails").GetProperty("embedded").GetInt32());
        Assert.True(data.RootElement.GetProperty("anchors").GetProperty("total").GetInt32() > 0);
        for (int t = 0; t < 10; t++)
        {
            var c = errors.Counts(t);
            Assert.Equal(evaluation.Counts(t), new RetinaSharp.Evaluation.CocoCounts(c.TruePositives, c.FalsePositives, c.Missed));
            int embeddedFp = images.Sum(im => im.GetProperty("d").EnumerateArray().Count(d => "DCLB".Contains(d[6].GetString()![t])));
            int embeddedMissed = images.Sum(im => im.GetProperty("g").EnumerateArray().Count(g => g[5].GetInt32() == 0 && g[7 + t].GetInt32() < 0));
            Assert.Equal(c.FalsePositives, embeddedFp);
            Assert.Equal(c.Missed, embeddedMissed);
        }
    }
}

public class DemoRunFolderTests
{
    // OUT/train with a training checkpoint (and model.rsnet when finished), OUT/report with a metrics file.
    private static (string Out, string Train) FakeRun(bool finished)
    {
        string outDir = Path.Combine(TempDir.Create(), "demo"), train = Path.Combine(outDir, "train");
        Directory.CreateDirectory(train);
        Directory.CreateDirectory(Path.Combine(outDir, "report"));
        Directory.CreateDirectory(Path.Combine(outDir, "scenes"));
        File.WriteAllText(Path.Combine(train, RetinaSharp.Training.TrainingCheckpoint.FileName), "checkpoint");
        if (finished) File.WriteAllText(Path.Combine(train, "model.rsnet"), "weights");
        File.WriteAllText(Path.Combine(outDir, "report", "metrics.json"), "{\"run\": 1}");
        return (outDir, train);
    }

    [Fact]
    public void A_finished_run_is_moved_to_previous_and_an_older_previous_is_replaced()
    {
        var (outDir, train) = FakeRun(finished: true);
        string previous = Path.Combine(outDir, "previous");
        Directory.CreateDirectory(previous);
        File.WriteAllText(Path.Combine(previous, "old.txt"), "older run");

        DemoCommand.PrepareRunFolder(train, DemoSettings.Defaults(quick: true, outDir));

        Assert.False(Directory.Exists(train));
        Assert.False(Directory.Exists(Path.Combine(outDir, "report")));
        Assert.True(Directory.Exists(Path.Combine(outDir, "scenes")));
        Assert.Equal("{\"run\": 1}", File.ReadAllText(Path.Combine(previous, "report", "metrics.json")));
        Assert.Equal("weights", File.ReadAllText(Path.Combine(previous, "train", "model.rsnet")));
        Assert.False(File.Exists(Path.Combine(previous, "old.txt")));
    }

    [Fact]
    public void An_interrupted_run_is_kept_and_refused_with_the_resume_command()
    {
        var (outDir, train) = FakeRun(finished: false);
        var e = Assert.Throws<ArgumentException>(() => DemoCommand.PrepareRunFolder(train, DemoSettings.Defaults(quick: true, outDir)));
        Assert.Contains("--resume", e.Message);
        Assert.Equal("checkpoint", File.ReadAllText(Path.Combine(train, RetinaSharp.Training.TrainingCheckpoint.FileName)));
        Assert.True(File.Exists(Path.Combine(outDir, "report", "metrics.json")));
    }
}
