// Benchmark `eval`: CocoEvaluator against pycocotools' COCOeval (bbox) on a seeded synthetic COCO-sized set:
// 5 000 images, 100 detections each, about 7 ground-truth boxes per image, 80 categories.
using System.Diagnostics;
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Times COCO evaluation (load + evaluate + accumulate + summarize) and its peak memory, ours and pycocotools'.</summary>
public sealed class EvalSuite : IBenchmarkSuite
{
    /// <inheritdoc />
    public string Name => "eval";

    /// <inheritdoc />
    /// <remarks>Options: --images N (default 5000), --seed S (default 1), --no-reference (skip pycocotools).</remarks>
    public void Run(string[] args)
    {
        int images = InferenceSuite.IntArg(args, "--images", 5000);
        int seed = InferenceSuite.IntArg(args, "--seed", 1);
        string dir = Path.Combine(Path.GetTempPath(), "retinasharp-bench-eval");
        Directory.CreateDirectory(dir);
        string gtPath = Path.Combine(dir, "instances.json"), dtPath = Path.Combine(dir, "results.json");
        var (gt, dt) = Synthesize(images, detectionsPerImage: 100, meanGroundTruth: 7, categories: 80, seed);
        CocoJson.WriteInstances(gtPath, gt);
        CocoJson.WriteResults(dtPath, dt);
        Console.WriteLine($"data: {gt.Images.Count} images, {gt.Annotations.Count} ground-truth boxes, {dt.Count} detections, {gt.Categories.Count} categories ({dir})");

        // Ours: read both files (as written, scores rounded like a real results file), then evaluate.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long rssBefore = Measure.CurrentRssBytes();
        bool peakReset = Measure.ResetPeakRss();
        var sw = Stopwatch.StartNew();
        var gtRead = CocoJson.ReadInstances(gtPath);
        var dtRead = CocoJson.ReadResults(dtPath);
        double loadSeconds = sw.Elapsed.TotalSeconds;
        var result = CocoEvaluator.Evaluate(gtRead, dtRead, dtPath);
        double firstTotal = sw.Elapsed.TotalSeconds;
        long peak = Measure.PeakRssBytes();
        double evalSeconds = Measure.MedianSeconds(() => CocoEvaluator.Evaluate(gtRead, dtRead, dtPath), warmup: 1, repeats: 5);
        // Process CPU time (all threads) of one evaluation and of one load: steadier than wall time on a shared machine.
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        CocoEvaluator.Evaluate(gtRead, dtRead, dtPath);
        var cpu1 = Process.GetCurrentProcess().TotalProcessorTime;
        CocoJson.ReadInstances(gtPath);
        CocoJson.ReadResults(dtPath);
        var cpu2 = Process.GetCurrentProcess().TotalProcessorTime;
        double evalCpu = (cpu1 - cpu0).TotalSeconds, loadCpu = (cpu2 - cpu1).TotalSeconds;
        double oursTotal = loadSeconds + evalSeconds;
        double oursPeakMb = peak / 1048576.0, oursDeltaMb = (peak - rssBefore) / 1048576.0;
        Console.Write(result.Summary());
        Console.WriteLine($"ours CPU time: load {Measure.F(loadCpu)} s, evaluate {Measure.F(evalCpu)} s");
        Console.WriteLine($"ours: load {Measure.F(loadSeconds)} s, evaluate {Measure.F(evalSeconds)} s (median of 5; first run incl. JIT {Measure.F(firstTotal - loadSeconds)} s), " +
                          $"peak RSS {Measure.F(oursPeakMb)} MB (+{Measure.F(oursDeltaMb)} MB over the process before loading{(peakReset ? "" : "; peak counter not reset")})");

        // Reference: pycocotools in a separate process on the same files.
        string? script = args.Contains("--no-reference") ? null : InferenceSuite.FindScript("eval_ref.py");
        string? output = script == null ? null : Measure.RunPythonReference(script, gtPath, dtPath);
        string? refLine = output?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
        string? statsLine = output?.Split('\n').FirstOrDefault(l => l.StartsWith("STATS ", StringComparison.Ordinal));
        var ours = result.Stats.ToArray();
        string extra = $"ours_s={Measure.F(oursTotal)} ours_eval_s={Measure.F(evalSeconds)} ours_cpu_s={Measure.F(loadCpu + evalCpu)} ours_eval_cpu_s={Measure.F(evalCpu)} ours_peak_mb={Measure.F(oursPeakMb)} ours_delta_mb={Measure.F(oursDeltaMb)} ap={ours[0].ToString("F4", CultureInfo.InvariantCulture)}";
        if (refLine == null)
        {
            Console.WriteLine(output?.Trim() ?? "reference skipped (--no-reference, or bench/RetinaSharp.Benchmarks/python/eval_ref.py not found)");
            Console.WriteLine($"RESULT eval time_ratio=NA mem_ratio=NA {extra} reference=none");
            return;
        }
        var r = Measure.ParseKeyValues(refLine);
        double maxDiff = 0;
        if (statsLine != null)
        {
            var refStats = statsLine[6..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            for (int i = 0; i < Math.Min(refStats.Length, ours.Length); i++) maxDiff = Math.Max(maxDiff, Math.Abs(refStats[i] - ours[i]));
        }
        Console.WriteLine($"pycocotools: load {Measure.F(r["load_s"])} s, evaluate+accumulate+summarize {Measure.F(r["eval_s"])} s (CPU time {Measure.F(r["load_cpu_s"])} s + {Measure.F(r["eval_cpu_s"])} s), peak RSS {Measure.F(r["peak_rss_mb"])} MB (+{Measure.F(r["delta_rss_mb"])} MB)");
        Console.WriteLine($"max |stat difference| = {maxDiff:G3}");
        Console.WriteLine($"RESULT eval time_ratio={Measure.F(oursTotal / r["total_s"])} mem_ratio={Measure.F(oursDeltaMb / r["delta_rss_mb"])} " +
                          $"eval_time_ratio={Measure.F(evalSeconds / r["eval_s"])} cpu_ratio={Measure.F((loadCpu + evalCpu) / (r["load_cpu_s"] + r["eval_cpu_s"]))} {extra} " +
                          $"ref_s={Measure.F(r["total_s"])} ref_eval_s={Measure.F(r["eval_s"])} ref_cpu_s={Measure.F(r["load_cpu_s"] + r["eval_cpu_s"])} ref_eval_cpu_s={Measure.F(r["eval_cpu_s"])} " +
                          $"ref_peak_mb={Measure.F(r["peak_rss_mb"])} ref_delta_mb={Measure.F(r["delta_rss_mb"])} max_stat_diff={maxDiff:G3}");
    }

    /// <summary>A seeded synthetic COCO set: COCO-like category ids (1-90 with gaps), boxes of all sizes, 1% crowd,
    /// detections = jittered copies of the ground truth (some duplicated, some with the wrong class) + random boxes.</summary>
    internal static (CocoInstances Gt, List<CocoResult> Dt) Synthesize(int images, int detectionsPerImage, int meanGroundTruth, int categories, int seed)
    {
        var rng = new Random(seed);
        var skipped = new HashSet<long> { 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 };
        var catIds = Enumerable.Range(1, 200).Select(i => (long)i).Where(i => !skipped.Contains(i)).Take(categories).ToArray();
        var cats = catIds.Select(id => new CocoCategory(id, $"class{id}")).ToList();
        var imgs = new List<CocoImage>(images);
        var anns = new List<CocoAnnotation>();
        var dets = new List<CocoResult>(images * detectionsPerImage);
        long annId = 1;
        for (int i = 0; i < images; i++)
        {
            long imageId = 100000 + 7L * i;
            imgs.Add(new CocoImage(imageId, $"{imageId:D12}.jpg", 640, 480));
            int numGt = rng.Next(0, 2 * meanGroundTruth + 1);
            int made = 0;
            for (int g = 0; g < numGt; g++)
            {
                double side = Math.Exp(Math.Log(8) + rng.NextDouble() * (Math.Log(400) - Math.Log(8)));
                double w = Math.Min(630, side * (0.5 + rng.NextDouble())), h = Math.Min(470, side * (0.5 + rng.NextDouble()));
                double x = rng.NextDouble() * (640 - w), y = rng.NextDouble() * (480 - h);
                long cat = catIds[rng.Next(catIds.Length)];
                anns.Add(new CocoAnnotation(annId++, imageId, cat, x, y, w, h, w * h * (0.5 + 0.5 * rng.NextDouble()), rng.NextDouble() < 0.01));
                int copies = rng.Next(0, 4); // missed, found, found twice or three times
                for (int c = 0; c < copies && made < detectionsPerImage; c++, made++)
                {
                    long dcat = rng.NextDouble() < 0.9 ? cat : catIds[rng.Next(catIds.Length)];
                    dets.Add(new CocoResult(imageId, dcat, x + Noise(rng, 0.08 * w), y + Noise(rng, 0.08 * h),
                        Math.Max(1, w + Noise(rng, 0.1 * w)), Math.Max(1, h + Noise(rng, 0.1 * h)), 0.3 + 0.7 * rng.NextDouble()));
                }
            }
            for (; made < detectionsPerImage; made++)
            {
                double w = 4 + rng.NextDouble() * 300, h = 4 + rng.NextDouble() * 300;
                dets.Add(new CocoResult(imageId, catIds[rng.Next(catIds.Length)], rng.NextDouble() * (640 - w), rng.NextDouble() * (480 - h), w, h, 0.6 * rng.NextDouble()));
            }
        }
        return (new CocoInstances(imgs, anns, cats), dets);
    }

    private static double Noise(Random rng, double sigma) => sigma * (2 * rng.NextDouble() - 1);
}
