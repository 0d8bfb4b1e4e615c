// Benchmark `data-anchors` (a `data` entry): `retina data anchors` on a COCO-sized synthetic set (118 287 images of
// COCO's common sizes, ~860 000 boxes of log-uniform side and aspect ratio) at the training resize 800/1333 with
// torchvision's 9 anchors: AnchorCoverageAnalysis.Analyze (best IoU, positive-anchor counts, all bins) against a numpy
// reference computing the best IoU alone with the same nearest-cell method vectorised over all boxes
// (python/anchors_ref.py). The suite also checks that both find the same positive count and mean best IoU.
using System.Globalization;
using RetinaSharp.Analysis;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Times the anchor coverage analysis on a COCO-sized set.</summary>
public sealed class DataAnchorsSuite : IBenchmarkSuite
{
    /// <inheritdoc />
    public string Name => "data-anchors";

    /// <inheritdoc />
    /// <remarks>Options: --images N (default 118287, COCO train2017), --seed S (default 0).</remarks>
    public void Run(string[] args)
    {
        int images = InferenceSuite.IntArg(args, "--images", 118_287), seed = InferenceSuite.IntArg(args, "--seed", 0);
        var (set, path) = Build(images, seed);
        Console.WriteLine($"synthetic COCO-sized set: {set.ImageCount} images ({set.EmptyImageCount} empty), {set.BoxCount} boxes ({path})");
        var settings = AnchorSettings.Default();
        AnchorCoverageAnalysis.Analyze(settings, new AnchorBoxSet([640], [480], [0], [10, 10, 50, 60]));   // JIT and libtorch warm-up
        AnchorCoverageResult? result = null;
        double seconds = Measure.MedianSeconds(() => result = AnchorCoverageAnalysis.Analyze(settings, set), warmup: 1, repeats: 3);
        var o = result!.Overall;
        Console.WriteLine($"ours: {set.BoxCount} boxes in {Measure.F(seconds)} s (median of 3; best IoU + positive counts + bins), " +
                          $"positive {o.Positive} ({o.PositiveFraction:P2}), ignored only {o.IgnoredOnly}, none {o.None}, mean best IoU {o.MeanBestIou:F6}, {Environment.ProcessorCount} threads");
        string extra = $"ours_s={Measure.F(seconds)} boxes={set.BoxCount} ours_positive={o.Positive}";
        string? script = InferenceSuite.FindScript("anchors_ref.py");
        string? output = script == null ? null : Measure.RunPythonReference(script, path);
        string? refLine = output?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
        if (refLine == null)
        {
            Console.WriteLine(output?.Trim() ?? "reference skipped: bench/RetinaSharp.Benchmarks/python/anchors_ref.py not found");
            Console.WriteLine($"RESULT data-anchors time_ratio=NA {extra} reference=none");
            return;
        }
        var r = Measure.ParseKeyValues(refLine);
        bool same = (long)r["positive"] == o.Positive && Math.Abs(r["mean_best_iou"] - o.MeanBestIou) < 1e-9;
        Console.WriteLine($"numpy (best IoU only, same method, vectorised over boxes): {Measure.F(r["seconds"])} s, positive {r["positive"]}, mean best IoU {r["mean_best_iou"]:F6}: " +
                          (same ? "same numbers" : "NUMBERS DIFFER"));
        Console.WriteLine($"RESULT data-anchors time_ratio={Measure.F(seconds / r["seconds"])} {extra} ref_s={Measure.F(r["seconds"])} same_numbers={(same ? 1 : 0)}");
    }

    /// <summary>The synthetic set and its binary file for the reference (layout in anchors_ref.py).</summary>
    private static (AnchorBoxSet Set, string Path) Build(int images, int seed)
    {
        (int W, int H, double P)[] sizes = [(640, 480, 0.55), (480, 640, 0.15), (640, 427, 0.15), (427, 640, 0.05), (500, 375, 0.05), (640, 360, 0.05)];
        var rng = new Random(seed);
        var w = new int[images];
        var h = new int[images];
        var of = new List<int>();
        var xy = new List<float>();
        for (int i = 0; i < images; i++)
        {
            double u = rng.NextDouble(), acc = 0;
            foreach (var s in sizes) { acc += s.P; (w[i], h[i]) = (s.W, s.H); if (u < acc) break; }
            int n = rng.Next(0, 15) + (rng.Next(4) == 0 ? 1 : 0);   // mean 7.25 boxes (COCO: 7.3); about 1 image in 20 empty (COCO: 1%)
            for (int k = 0; k < n; k++)
            {
                double side = 4 * Math.Pow(Math.Min(w[i], h[i]) * 0.9 / 4, rng.NextDouble());   // log-uniform 4 px .. 0.9 of the short side
                double aspect = Math.Pow(4, 2 * rng.NextDouble() - 1);                          // log-uniform 1/4 .. 4
                double bw = Math.Min(w[i] - 1, side / Math.Sqrt(aspect)), bh = Math.Min(h[i] - 1, side * Math.Sqrt(aspect));
                double x = rng.NextDouble() * (w[i] - bw), y = rng.NextDouble() * (h[i] - bh);
                of.Add(i);
                xy.Add((float)x); xy.Add((float)y); xy.Add((float)(x + bw)); xy.Add((float)(y + bh));
            }
        }
        var set = new AnchorBoxSet(w, h, [.. of], [.. xy]);
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"retinasharp-bench-anchors-{images}-{seed}.bin");
        using (var f = new BinaryWriter(File.Create(path)))
        {
            f.Write(images);
            for (int i = 0; i < images; i++) { f.Write(w[i]); f.Write(h[i]); }
            f.Write(of.Count);
            for (int b = 0; b < of.Count; b++)
            {
                f.Write(of[b]);
                for (int c = 0; c < 4; c++) f.Write(xy[4 * b + c]);
            }
        }
        return (set, path);
    }
}
