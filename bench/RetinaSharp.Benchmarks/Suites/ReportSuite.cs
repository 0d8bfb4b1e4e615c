// Benchmark `report`: size and time of report.html for a COCO-sized set: the eval suite's synthetic 5 000 images
// with 100 detections each, every image a 640x480 JPEG photo stand-in (smooth colour fields plus sensor-like noise,
// harder for JPEG than most photos). The reference is the budget: a 5 000-image report under about 200 MB.
using System.Diagnostics;
using RetinaSharp.Data;
using RetinaSharp.Reporting;
using SkiaSharp;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Writes the HTML evaluation report of a synthetic COCO-sized set; prints its size against the 200 MB budget.</summary>
public sealed class ReportSuite : IBenchmarkSuite
{
    private const double BudgetMb = 200;

    /// <inheritdoc />
    public string Name => "report";

    /// <inheritdoc />
    /// <remarks>Options: --images N (default 5000), --seed S (default 1).</remarks>
    public void Run(string[] args)
    {
        int images = InferenceSuite.IntArg(args, "--images", 5000);
        int seed = InferenceSuite.IntArg(args, "--seed", 1);
        string dir = Path.Combine(Path.GetTempPath(), "retinasharp-bench-report");
        Directory.CreateDirectory(dir);
        var (gt, dt) = EvalSuite.Synthesize(images, detectionsPerImage: 100, meanGroundTruth: 7, categories: 80, seed);
        var sw = Stopwatch.StartNew();
        var files = new string[gt.Images.Count];
        Parallel.For(0, gt.Images.Count, i =>
        {
            var im = gt.Images[i];
            files[i] = Path.Combine(dir, $"{im.Id}.jpg");
            if (!File.Exists(files[i])) WritePhotoStandIn(files[i], 640, 480, seed * 100_003 + i);
        });
        Console.WriteLine($"data: {gt.Images.Count} images of 640x480 (JPEG q90, {Measure.F(files.Sum(f => new FileInfo(f).Length) / 1048576.0)} MB on disk), " +
                          $"{gt.Annotations.Count} ground-truth boxes, {dt.Count} detections; images written in {Measure.F(sw.Elapsed.TotalSeconds)} s ({dir})");
        var byId = gt.Images.Select((im, i) => (im.Id, files[i])).ToDictionary(p => p.Id, p => p.Item2);

        sw.Restart();
        var report = EvaluationReport.Evaluate(gt, dt);
        double evalSeconds = sw.Elapsed.TotalSeconds;
        sw.Restart();
        string path = Path.Combine(dir, EvaluationReport.FileName);
        var summary = report.Write(path, im => byId[im.Id], progress: (done, total) => { if (done % 1000 == 0 || done == total) Console.WriteLine($"  thumbnails {done}/{total}"); });
        double writeSeconds = sw.Elapsed.TotalSeconds;
        double mb = new FileInfo(path).Length / 1e6, thumbsMb = summary.Bytes / 1e6;
        Console.WriteLine($"report.html: {Measure.F(mb)} MB ({Measure.F(thumbsMb)} MB thumbnails for {summary.Embedded} images, {summary.LeftOut} left out; " +
                          $"{Measure.F(mb - thumbsMb)} MB page and data); evaluate + classify {Measure.F(evalSeconds)} s, write {Measure.F(writeSeconds)} s");
        Console.WriteLine($"RESULT report size_ratio={Measure.F(mb / BudgetMb)} size_mb={Measure.F(mb)} thumbnails_mb={Measure.F(thumbsMb)} embedded={summary.Embedded} " +
                          $"left_out={summary.LeftOut} write_s={Measure.F(writeSeconds)} reference=budget_{BudgetMb}MB");
    }

    /// <summary>A 640x480 stand-in for a photograph: a few soft colour blobs over a gradient, plus per-pixel noise.</summary>
    private static void WritePhotoStandIn(string path, int w, int h, int seed)
    {
        var rng = new Random(seed);
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bitmap))
        {
            using var paint = new SKPaint { IsAntialias = true };
            paint.Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(w, h),
                [new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)), new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256))], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, w, h, paint);
            paint.Shader = null;
            for (int b = 0; b < 25; b++)
            {
                paint.Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(80, 220));
                canvas.DrawOval(rng.Next(w), rng.Next(h), rng.Next(10, 160), rng.Next(10, 160), paint);
            }
        }
        var pixels = bitmap.GetPixelSpan().ToArray();
        for (int i = 0; i < pixels.Length; i += 4)
            for (int c = 0; c < 3; c++) pixels[i + c] = (byte)Math.Clamp(pixels[i + c] + rng.Next(-12, 13), 0, 255);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, data.ToArray());
    }
}
