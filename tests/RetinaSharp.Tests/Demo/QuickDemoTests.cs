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
        Assert.Equal(10, metrics.RootElement.GetProperty("per_class").GetArrayLength());
        foreach (var png in new[] { "loss_curve.png", "pr_curves.png", "detections_grid.png" })
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(report, png))[..4]);
        Assert.Contains("AP", File.ReadAllText(Path.Combine(report, "README.md")));
    }
}
