// The HTML report in a real browser: `retina eval --gt --dt --out` on a small generated set with images on disk, the
// report opened from disk in headless Chromium (DevTools protocol), no console error and no network request, the score
// slider moved with the keyboard changes the shown detection count exactly as the embedded JSON predicts, the IoU
// slider and the sortable class table work; screenshots are written to the test output folder.
using System.Text.Json;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.Reporting;
using Xunit.Abstractions;

namespace RetinaSharp.Tests.Reporting;

public sealed class ReportBrowserTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "retina-report-browser-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Writes instances.json, results.json and images/img{i}.png; returns the report written by `retina eval`.</summary>
    private string SmallEvaluation()
    {
        var (gt, dt) = DetectionErrorsGeneratedSetTests.Generate(seed: 5, images: 12);
        Directory.CreateDirectory(Path.Combine(_dir, "images"));
        var images = gt.Images.Select(im => im with { FileName = $"img{im.Id}.png" }).ToList();
        foreach (var im in images)
        {
            // A grey gradient with every object filled in its class's colour, so the screenshot shows what the boxes mark.
            var px = new byte[im.Width * im.Height * 3];
            for (int y = 0; y < im.Height; y++)
                for (int x = 0; x < im.Width; x++)
                    px[3 * (y * im.Width + x)] = px[3 * (y * im.Width + x) + 1] = px[3 * (y * im.Width + x) + 2] = (byte)(60 + 120 * x / im.Width);
            foreach (var a in gt.Annotations.Where(a => a.ImageId == im.Id))
            {
                var color = RetinaSharp.Visualization.DetectionDrawing.ColorOf((int)a.CategoryId);
                for (int y = (int)a.Y; y < Math.Min(im.Height, (int)(a.Y + a.Height)); y++)
                    for (int x = (int)a.X; x < Math.Min(im.Width, (int)(a.X + a.Width)); x++)
                    {
                        int o = 3 * (y * im.Width + x);
                        px[o] = (byte)((color.Red + 2 * px[o]) / 3); px[o + 1] = (byte)((color.Green + 2 * px[o + 1]) / 3); px[o + 2] = (byte)((color.Blue + 2 * px[o + 2]) / 3);
                    }
            }
            ImageIO.SavePng(new RgbImage(px, im.Width, im.Height), Path.Combine(_dir, "images", im.FileName));
        }
        string gtPath = Path.Combine(_dir, "instances.json"), dtPath = Path.Combine(_dir, "results.json"), outDir = Path.Combine(_dir, "out");
        CocoJson.WriteInstances(gtPath, gt with { Images = images });
        CocoJson.WriteResults(dtPath, dt);
        var output = new StringWriter();
        Assert.Equal(0, EvalCommand.Run(gtPath, dtPath, outDir, perCategory: false, output, TextWriter.Null));
        string report = Path.Combine(outDir, EvaluationReport.FileName);
        Assert.Contains($"wrote {report}", output.ToString());
        return report;
    }

    private static JsonElement EmbeddedData(string html)
    {
        const string open = "<script type=\"application/json\" id=\"report-data\">";
        int start = html.IndexOf(open, StringComparison.Ordinal) + open.Length;
        int end = html.IndexOf("</script>", start, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(html[start..end]);
        return doc.RootElement.Clone();
    }

    /// <summary>The detections the page should draw at score threshold s (all classes, all kinds): those scoring at least s.</summary>
    private static int ExpectedDetections(JsonElement data, double s, IEnumerable<long>? imageIds = null)
    {
        var only = imageIds?.ToHashSet();
        return data.GetProperty("images").EnumerateArray()
            .Where(im => only is null || only.Contains(im.GetProperty("id").GetInt64()))
            .Sum(im => im.GetProperty("d").EnumerateArray().Count(d => d[5].GetDouble() >= s));
    }

    [Fact]
    public void Report_opens_from_disk_without_errors_and_the_score_slider_changes_the_detection_count_as_the_data_predicts()
    {
        string report = SmallEvaluation();
        var data = EmbeddedData(File.ReadAllText(report));
        Assert.Equal(12, data.GetProperty("thumbnails").GetProperty("embedded").GetInt32());

        using var browser = HeadlessChromium.Start();
        browser.Navigate(new Uri(report).AbsoluteUri, "document.body && document.body.dataset.ready === '1'");
        string outputDir = Path.Combine(AppContext.BaseDirectory, "test-output");
        Directory.CreateDirectory(outputDir);

        // Starts at score 0.3: the count shown is what the data says.
        double s0 = double.Parse(browser.Evaluate("document.getElementById('score').value").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0.3, s0, 12);
        int shown0 = int.Parse(browser.Evaluate("document.getElementById('det-count').textContent").GetString()!);
        Assert.Equal(ExpectedDetections(data, s0), shown0);

        // Move the slider as a user does: focus it and press the right arrow 30 times (step 0.01).
        browser.Evaluate("document.getElementById('score').focus()");
        for (int i = 0; i < 30; i++) browser.Press("ArrowRight", 39);
        browser.Evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        double s1 = double.Parse(browser.Evaluate("document.getElementById('score').value").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0.6, s1, 9);
        int shown1 = int.Parse(browser.Evaluate("document.getElementById('det-count').textContent").GetString()!);
        Assert.Equal(ExpectedDetections(data, s1), shown1);
        Assert.True(shown1 < shown0, $"the count should fall when the threshold rises: {shown0} at {s0}, {shown1} at {s1}");
        Assert.Equal("0.60", browser.Evaluate("document.getElementById('score-value').textContent").GetString());

        // The boxes drawn on the visible page are those of the data for the images shown.
        var cards = browser.Evaluate("[...document.querySelectorAll('#grid canvas')].map(c => [+c.dataset.imageId, +c.dataset.drawn])");
        var pairs = cards.EnumerateArray().Select(c => (Id: c[0].GetInt64(), Drawn: c[1].GetInt32())).ToList();
        Assert.Equal(12, pairs.Count);
        foreach (var (id, drawn) in pairs) Assert.Equal(ExpectedDetections(data, s1, [id]), drawn);

        // The IoU slider: at 0.95 the true positives shown are the data's detections of kind T at that threshold.
        browser.Evaluate("document.getElementById('iou').focus()");
        browser.Press("End", 35);
        browser.Evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        int tp = data.GetProperty("images").EnumerateArray().Sum(im => im.GetProperty("d").EnumerateArray().Count(d => d[5].GetDouble() >= s1 && d[6].GetString()![9] == 'T'));
        Assert.Equal(tp.ToString(), browser.Evaluate("document.getElementById('n-T').textContent").GetString());
        Assert.Equal("0.95", browser.Evaluate("document.getElementById('iou-value').textContent").GetString());

        // The per-class table sorts by AP (descending) on a click.
        browser.Evaluate("document.querySelector('#class-table th[data-col=\"3\"]').click()");
        var bestClass = data.GetProperty("categories").EnumerateArray().OrderByDescending(c => c.GetProperty("stats")[0].GetDouble()).First().GetProperty("name").GetString();
        Assert.Equal(bestClass, browser.Evaluate("document.querySelector('#class-table tr:nth-child(2) td').textContent").GetString());

        // Screenshots at IoU 0.50 (Home), score 0.60.
        browser.Evaluate("document.getElementById('iou').focus()");
        browser.Press("Home", 36);
        browser.Evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        Assert.Equal("0.50", browser.Evaluate("document.getElementById('iou-value').textContent").GetString());
        File.WriteAllBytes(Path.Combine(outputDir, "report-top.png"), browser.Screenshot());
        browser.Evaluate("document.getElementById('images').scrollIntoView()");
        browser.Evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        byte[] png = browser.Screenshot();
        string shot = Path.Combine(outputDir, "report-images.png");
        File.WriteAllBytes(shot, png);
        log.WriteLine($"screenshots: {Path.Combine(outputDir, "report-top.png")}, {shot}");
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);

        Assert.Empty(browser.Errors);
        // Self-contained: the page itself and data: URLs of the thumbnails, nothing else.
        Assert.All(browser.Requests, url => Assert.True(url.StartsWith("file:", StringComparison.Ordinal) || url.StartsWith("data:", StringComparison.Ordinal), url));
    }
}
