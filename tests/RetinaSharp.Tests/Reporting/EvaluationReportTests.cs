// The report file itself: its embedded data agrees with the evaluator, it references nothing outside itself, the
// thumbnails keep to their budget, it is written atomically; and the anchor coverage on hand-computed boxes.
using System.Text.Json;
using System.Text.RegularExpressions;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Modeling;
using RetinaSharp.Reporting;

namespace RetinaSharp.Tests.Reporting;

public sealed class EvaluationReportTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "retina-report-" + Guid.NewGuid().ToString("N"));

    public EvaluationReportTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonElement EmbeddedData(string html)
    {
        const string open = "<script type=\"application/json\" id=\"report-data\">";
        int start = html.IndexOf(open, StringComparison.Ordinal) + open.Length;
        using var doc = JsonDocument.Parse(html[start..html.IndexOf("</script>", start, StringComparison.Ordinal)]);
        return doc.RootElement.Clone();
    }

    [Fact]
    public void The_embedded_kinds_add_up_to_the_evaluators_counts_at_every_IoU_threshold()
    {
        var (gt, dt) = DetectionErrorsGeneratedSetTests.Generate(seed: 21, images: 80);
        var report = EvaluationReport.Evaluate(gt, dt);
        string path = Path.Combine(_dir, EvaluationReport.FileName);
        var summary = report.Write(path, imageFile: _ => null);
        Assert.Equal(new EvaluationReport.ThumbnailSummary(80, 0, 80, 0, 0), summary);
        Assert.Equal([EvaluationReport.FileName], Directory.GetFiles(_dir).Select(Path.GetFileName)); // no temporary file left
        var data = EmbeddedData(File.ReadAllText(path));
        var images = data.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(80, images.Count);
        for (int t = 0; t < 10; t++)
        {
            int tp = 0, fp = 0, missed = 0;
            foreach (var im in images)
            {
                var dets = im.GetProperty("d").EnumerateArray().ToList();
                foreach (var d in dets)
                {
                    char kind = d[6].GetString()![t];
                    if (kind == 'T') tp++;
                    else if ("DCLB".Contains(kind)) fp++;
                }
                foreach (var g in im.GetProperty("g").EnumerateArray())
                    if (g[5].GetInt32() == 0 && g[7 + t].GetInt32() < 0) missed++;
                    else if (g[5].GetInt32() == 0) Assert.Equal('T', dets[g[7 + t].GetInt32()][6].GetString()![t]); // the match points at a true positive
            }
            var expected = report.Evaluation.Counts(t);
            Assert.Equal(expected, new CocoCounts(tp, fp, missed));
            var embedded = data.GetProperty("evaluatorCounts")[t];
            Assert.Equal([expected.TruePositives, expected.FalsePositives, expected.FalseNegatives], embedded.EnumerateArray().Select(v => v.GetInt32()));
        }
        Assert.Equal(report.Evaluation.Stats.ToArray().Select(v => Math.Round(v, 4)), data.GetProperty("stats").EnumerateArray().Select(v => v.GetDouble()));
        Assert.Equal(JsonValueKind.Null, data.GetProperty("anchors").ValueKind);
    }

    [Fact]
    public void The_page_references_nothing_outside_itself()
    {
        var report = EvaluationReport.Evaluate(DetectionErrorsTests.GroundTruth(), DetectionErrorsTests.Detections());
        string path = Path.Combine(_dir, EvaluationReport.FileName);
        report.Write(path, imageFile: _ => null, options: new EvaluationReportOptions { Title = "cats </title><script>alert(1)</script>" });
        string html = File.ReadAllText(path);
        var external = Regex.Matches(html, @"(?:src|href)\s*=\s*[""']([^""']*)[""']").Select(m => m.Groups[1].Value)
            .Where(v => !v.StartsWith("data:", StringComparison.Ordinal) && !v.StartsWith('#')).ToList();
        Assert.Empty(external);
        Assert.DoesNotContain("@import", html);
        Assert.DoesNotContain("url(", html);
        Assert.Contains("<title>cats &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>", html); // the title is escaped
        Assert.DoesNotContain("</script><script>alert", html);
    }

    [Fact]
    public void Thumbnails_shrink_to_fit_the_budget_and_leave_images_out_when_even_the_smallest_does_not_fit()
    {
        var rng = new Random(3);
        var files = new List<string?>();
        for (int i = 0; i < 12; i++)
        {
            var px = new byte[300 * 200 * 3];
            rng.NextBytes(px); // noise: the hardest case for JPEG
            string f = Path.Combine(_dir, $"noise{i}.png");
            ImageIO.SavePng(new RgbImage(px, 300, 200), f);
            files.Add(f);
        }
        files.Add(Path.Combine(_dir, "missing.png"));

        var roomy = ReportThumbnails.Make(files, budgetBytes: 100_000_000, maxSide: 384, quality: 80);
        Assert.Equal(300, roomy.LargestSide);  // never enlarged
        Assert.Equal(1, roomy.Unreadable);
        Assert.Null(roomy.Jpegs[12]);

        long budget = 13 * 12_000;             // about 9 KB of JPEG per image
        var tight = ReportThumbnails.Make(files, budget, maxSide: 384, quality: 80);
        Assert.True(tight.EmbeddedBytes <= budget, $"{tight.EmbeddedBytes} > {budget}");
        Assert.Equal(12, tight.Jpegs.Count(j => j != null));
        Assert.True(tight.LargestSide < 300, $"largest side {tight.LargestSide}");
        foreach (var j in tight.Jpegs.Where(j => j != null)) Assert.Equal([0xFF, 0xD8, 0xFF], j![..3]); // JPEG

        var starved = ReportThumbnails.Make(files, budgetBytes: 13 * 300, maxSide: 384, quality: 80);
        Assert.True(starved.EmbeddedBytes <= 13 * 300);
        Assert.True(starved.LeftOut > 0);
    }

    [Fact]
    public void Anchor_coverage_is_the_best_anchor_IoU_against_the_foreground_threshold()
    {
        // 64x64 image at MinSize = MaxSize = 64: no resize; P3 anchors of size 32 every 8 pixels (torchvision's defaults).
        var gt = new CocoInstances([new CocoImage(1, "a.png", 64, 64)],
        [
            new CocoAnnotation(1, 1, 1, 0, 0, 32, 32, 1024, false),  // exactly the anchor centred at (16, 16): IoU 1
            new CocoAnnotation(2, 1, 1, 10, 10, 4, 4, 16, false),    // at best inside the smallest anchor, 46x22 (size 32, ratio 0.5, rounded corners): 16 / 1012
            new CocoAnnotation(3, 1, 1, 0, 0, 64, 64, 4096, true),   // crowd: not counted
        ], [new CocoCategory(1, "box")]);
        using var model = new RetinaNet(new RetinaNetOptions(1) { Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64 });
        var coverage = AnchorCoverage.Compute(model, gt);
        Assert.Equal(1.0, coverage.BestIou(0), 6);
        Assert.Equal(16.0 / 1012, coverage.BestIou(1), 6);
        Assert.True(double.IsNaN(coverage.BestIou(2)));
        Assert.Equal((1, 2), coverage.Count());
        Assert.Equal(0.5, coverage.FgIouThreshold);
    }
}
