// Benchmark `data`: the data stage on the Fashion-MNIST scenes of `retina demo` (128x128 PNG, 2000 training
// images): scene generation, `data check` (full decode), and one epoch of DetectionDataLoader (decode + flip +
// tensors, one background thread) against a torchvision-style pipeline (PIL + to_tensor + flip) in
// torch.utils.data.DataLoader with one worker process.
using System.Diagnostics;
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Times scene generation, dataset check and the training data loader.</summary>
public sealed class DataSuite : IBenchmarkSuite
{
    /// <inheritdoc />
    public string Name => "data";

    /// <inheritdoc />
    /// <remarks>Options: --train N (default 2000), --val M (default 300), --size S (default 128), --batch B (default 16).</remarks>
    public void Run(string[] args)
    {
        int train = InferenceSuite.IntArg(args, "--train", 2000), val = InferenceSuite.IntArg(args, "--val", 300), size = InferenceSuite.IntArg(args, "--size", 128), batch = InferenceSuite.IntArg(args, "--batch", 16);
        string dir = Path.Combine(Path.GetTempPath(), "retinasharp-bench-data");
        var sw = Stopwatch.StartNew();
        var scenes = FashionScenes.Build(new FashionScenesOptions(dir, train, val, size));
        double buildSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"fashion-scenes: {train}+{val} scenes of {size}x{size}, {scenes.TrainBoxes + scenes.ValBoxes} boxes in {Measure.F(buildSeconds)} s ({dir})");

        var dataset = DetectionDataset.Load(scenes.TrainJson);
        sw.Restart();
        var problems = DatasetCheck.Check(dataset, decodeImages: true);
        double checkSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"data check (full decode, parallel): {dataset.Images.Count} images in {Measure.F(checkSeconds)} s, {problems.Count} problems");

        GC.Collect();
        long rssBefore = Measure.CurrentRssBytes();
        bool peakReset = Measure.ResetPeakRss();
        using var loader = new DetectionDataLoader(dataset, batch, shuffle: true, seed: 1);
        int warm = 0;
        foreach (var b in loader.Epoch(0, loader.BatchesPerEpoch - 2)) { foreach (var s in b) { s.Dispose(); warm++; } } // JIT warm-up
        // Three epochs: the time of each, and the RSS after each (flat = nothing accumulates across epochs).
        var times = new List<double>();
        var rssAfter = new List<double>();
        int n = 0;
        for (int epoch = 1; epoch <= 3; epoch++)
        {
            sw.Restart();
            n = 0;
            foreach (var b in loader.Epoch(epoch))
            {
                using var scope = NewDisposeScope();
                foreach (var s in b) { s.Dispose(); n++; }
            }
            times.Add(sw.Elapsed.TotalSeconds);
            rssAfter.Add((Measure.CurrentRssBytes() - rssBefore) / 1048576.0);
        }
        double epochSeconds = times.Order().ElementAt(1);
        double peakDeltaMb = (Measure.PeakRssBytes() - rssBefore) / 1048576.0;
        Console.WriteLine($"ours: one epoch of {n} images (batch {batch}, flip, prefetch 2) in {Measure.F(epochSeconds)} s (median of 3) = {Measure.F(n / epochSeconds)} images/s, " +
                          $"peak RSS +{Measure.F(peakDeltaMb)} MB{(peakReset ? "" : " (peak counter not reset)")}, RSS after each epoch +{string.Join(" / +", rssAfter.Select(Measure.F))} MB");

        string extra = $"ours_epoch_s={Measure.F(epochSeconds)} ours_images_per_s={Measure.F(n / epochSeconds)} ours_delta_mb={Measure.F(peakDeltaMb)} " +
                       $"ours_rss_drift_mb={Measure.F(rssAfter[2] - rssAfter[0])} " +
                       $"scenes_s={Measure.F(buildSeconds)} check_s={Measure.F(checkSeconds)}";
        string? script = InferenceSuite.FindScript("data_ref.py");
        string? output = script == null ? null : Measure.RunPythonReference(script, scenes.TrainJson, batch.ToString(CultureInfo.InvariantCulture));
        string? refLine = output?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
        if (refLine == null)
        {
            Console.WriteLine(output?.Trim() ?? "reference skipped: bench/RetinaSharp.Benchmarks/python/data_ref.py not found");
            Console.WriteLine($"RESULT data time_ratio=NA mem_ratio=NA {extra} reference=none");
            return;
        }
        var r = Measure.ParseKeyValues(refLine);
        Console.WriteLine($"torchvision-style DataLoader (1 worker): {Measure.F(r["epoch_s"])} s = {Measure.F(r["images_per_s"])} images/s, peak RSS +{Measure.F(r["delta_rss_mb"])} MB");
        Console.WriteLine($"RESULT data time_ratio={Measure.F(epochSeconds / r["epoch_s"])} mem_ratio={Measure.F(peakDeltaMb / Math.Max(r["delta_rss_mb"], 1))} {extra} " +
                          $"ref_epoch_s={Measure.F(r["epoch_s"])} ref_images_per_s={Measure.F(r["images_per_s"])} ref_delta_mb={Measure.F(r["delta_rss_mb"])}");
    }
}
