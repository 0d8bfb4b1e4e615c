// Benchmark `detect` (issue 12's goal: `retina detect` images/s on a folder of photos >= 1.5x a torchvision eager loop):
// a folder of N photos of varied sizes (JPEG and PNG crops of Fashion-MNIST scenes built from data/fashion-mnist),
// run through the real `retina detect` code path in-process (DetectCommand through CliApp.Invoke, default options: R50-FPN,
// 91 classes, shorter side 800, longer side at most 1333, batch 4; engines torchsharp fp32, --bf16 and --engine onnxruntime),
// against the loop a torchvision 0.14 user writes (python/detect_ref.py: read_image, model([img]), draw the boxes, write a
// PNG and the detections JSON per image) on the same files with the same weights (a .pth written by
// RetinaNetCheckpoint.SaveTorchvisionPth), in one run. Times are wall clock from loading the weights file to the last output
// written, so images/s = N / time; time_ratio = ours / torchvision (the goal is time_ratio <= 0.667).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Modeling;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Times <c>retina detect</c> on a folder of photos against a torchvision eager loop, with peak RSS.</summary>
public sealed class DetectSuite : IBenchmarkSuite
{
    /// <summary>Photo sizes (width, height), used in turn: landscape and portrait 4:3, 16:9 and square, 480 to 1024 px.</summary>
    private static readonly (int W, int H)[] Sizes =
        [(640, 480), (480, 640), (800, 600), (600, 800), (1024, 768), (768, 1024), (1024, 576), (640, 640)];

    /// <summary>
    /// The classification bias written into the deterministic (seed 0) weights: logit -2 is a score of about 0.12, so every
    /// level fills its top 1000 above the 0.05 threshold and each image keeps 100 detections after NMS, as a trained
    /// COCO model does at that threshold (with torchvision's prior bias, -ln 99, random weights would detect nothing and
    /// the post-processing and writing would do no work). No score reaches the 0.5 drawing threshold on either side.
    /// </summary>
    private const double ClassBias = -2.0;

    /// <inheritdoc />
    public string Name => "detect";

    /// <inheritdoc />
    /// <remarks>Options: --images N (default 16), --repeats R (default 1; medians), --threads T (default 2),
    /// --modes fp32,bf16,ort (default all: `retina detect`, `--bf16`, `--engine onnxruntime`).</remarks>
    public void Run(string[] args)
    {
        int n = InferenceSuite.IntArg(args, "--images", 16);
        int repeats = InferenceSuite.IntArg(args, "--repeats", 1);
        int threads = InferenceSuite.IntArg(args, "--threads", 2);
        var modes = (InferenceSuite.StrArg(args, "--modes") ?? "fp32,bf16,ort").Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (n < 1 || repeats < 1 || threads < 1) throw new ArgumentException("--images, --repeats and --threads must be at least 1.");
        foreach (var m in modes)
            if (m is not ("fp32" or "bf16" or "ort")) throw new ArgumentException($"--modes: unknown mode '{m}' (fp32, bf16, ort)");
        set_num_threads(threads);

        string root = Path.Combine(Path.GetTempPath(), $"retinasharp-bench-detect-{Environment.ProcessId}");
        Directory.CreateDirectory(root);
        try
        {
            var sw = Stopwatch.StartNew();
            string photos = BuildPhotos(Path.Combine(root, "photos"), n, out long bytes);
            Console.WriteLine($"{n} photos ({string.Join(", ", Sizes.Take(Math.Min(n, Sizes.Length)).Select(s => $"{s.W}x{s.H}"))}; " +
                              $"JPEG q90 and PNG alternately, {Measure.F(bytes / 1048576.0)} MB) built in {Measure.F(sw.Elapsed.TotalSeconds)} s in {photos}");
            string weights = Path.Combine(root, "model.pth");
            manual_seed(0);
            using (var model = new RetinaNet(new RetinaNetOptions(91)))
            {
                using (no_grad())
                using (var bias = ClassBias.ToScalar())
                    model.state_dict()["head.classification_head.cls_logits.bias"].fill_(bias);
                RetinaSharp.Modeling.RetinaNetCheckpoint.SaveTorchvisionPth(model, weights);
            }
            Console.WriteLine($"weights: R50-FPN, 91 classes, seed 0, classification bias {Measure.F(ClassBias)}, written as a torchvision .pth ({Measure.F(new FileInfo(weights).Length / 1048576.0)} MB); threads {get_num_threads()}");

            var cli = new System.CommandLine.RootCommand("retina (benchmark)");
            cli.Subcommands.Add(DetectCommand.Create());
            var results = new Dictionary<string, (double Seconds, double PeakMb, long Detections)>();
            foreach (var mode in modes)
            {
                var times = new List<double>();
                double peak = 0;
                long detections = 0;
                for (int r = 0; r < repeats; r++)
                {
                    string outDir = Path.Combine(root, $"out-{mode}-{r}");
                    var cliArgs = new List<string> { "detect", photos, "--weights", weights, "--out", outDir };
                    if (mode == "bf16") cliArgs.Add("--bf16");
                    if (mode == "ort") cliArgs.AddRange(["--engine", "onnxruntime"]);
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    MallocTrim(0);   // the previous run's freed memory back to the system, so each peak-RSS window starts alike
                    Measure.ResetPeakRss();
                    using var output = new StringWriter(CultureInfo.InvariantCulture);
                    var watch = Stopwatch.StartNew();
                    int rc = CliApp.Invoke(cli, cliArgs.ToArray(), output, output);
                    double seconds = watch.Elapsed.TotalSeconds;
                    peak = Math.Max(peak, Measure.PeakRssBytes() / 1048576.0);
                    if (rc != CliApp.Ok) throw new InvalidOperationException($"retina {string.Join(' ', cliArgs)} exited with {rc}:\n{output}");
                    times.Add(seconds);
                    detections = CountDetections(Path.Combine(outDir, "detections.json"));
                    string engineLine = output.ToString().Split('\n').FirstOrDefault(l => l.StartsWith("Engine:", StringComparison.Ordinal))?.Trim() ?? "";
                    Console.WriteLine($"ours {mode,-4} run {r + 1}/{repeats}: {Measure.F(seconds)} s ({Measure.F(n / seconds)} images/s), {detections} detections, peak RSS {Measure.F(Measure.PeakRssBytes() / 1048576.0)} MB; {engineLine}");
                    Directory.Delete(outDir, recursive: true);
                }
                times.Sort();
                results[mode] = (times[times.Count / 2], peak, detections);
            }

            string? script = InferenceSuite.FindScript("detect_ref.py");
            string refOut = Path.Combine(root, "out-torchvision");
            string? output2 = script == null ? null : Measure.RunPythonReference(script, photos, weights, refOut,
                repeats.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture));
            string? refLine = output2?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
            string extra = string.Join(' ', results.Select(kv =>
                $"{kv.Key}_s={Measure.F(kv.Value.Seconds)} {kv.Key}_images_per_s={Measure.F(n / kv.Value.Seconds)} {kv.Key}_peak_mb={Measure.F(kv.Value.PeakMb)} {kv.Key}_detections={kv.Value.Detections}"));
            string common = $"images={n} repeats={repeats} threads={threads} onednn={RetinaSharp.TorchRuntime.OneDnn.Mode}";
            if (results.Count == 0) { Console.WriteLine("no mode of ours ran (--modes)"); return; }
            var best = results.MinBy(kv => kv.Value.Seconds);
            if (refLine == null)
            {
                Console.WriteLine(output2?.Trim() ?? "reference skipped: detect_ref.py not found");
                Console.WriteLine($"RESULT detect time_ratio=NA mem_ratio=NA best_mode={best.Key} {extra} {common} reference=none");
                return;
            }
            var rf = Measure.ParseKeyValues(refLine);
            string blas = refLine.Split(' ').FirstOrDefault(t => t.StartsWith("blas=", StringComparison.Ordinal))?[5..] ?? "unknown";
            if (blas == "reference")
                Console.WriteLine("warning: the reference ran on the reference BLAS (apt-get install libopenblas0-pthread): its time is not representative");
            double refS = rf["total_s"], refPeak = rf["peak_rss_mb"];
            Console.WriteLine($"torchvision eager loop: {Measure.F(refS)} s ({Measure.F(n / refS)} images/s; weights {Measure.F(rf["load_s"])} s, loop {Measure.F(rf["loop_s"])} s), " +
                              $"{(long)rf["detections"]} detections, peak RSS {Measure.F(refPeak)} MB, blas {blas}");
            foreach (var (mode, (s, p, d)) in results)
                Console.WriteLine($"ratio {mode,-4}: time {Measure.F(s / refS)} (images/s {Measure.F(refS / s)}x torchvision's), peak RSS {Measure.F(p / refPeak)}" +
                                  (d != (long)rf["detections"] ? $"; detections differ ({d} vs {(long)rf["detections"]})" : ""));
            Console.WriteLine($"RESULT detect time_ratio={Measure.F(best.Value.Seconds / refS)} mem_ratio={Measure.F(best.Value.PeakMb / refPeak)} best_mode={best.Key} " +
                              $"speedup={Measure.F(refS / best.Value.Seconds)} {extra} ref_s={Measure.F(refS)} ref_images_per_s={Measure.F(n / refS)} ref_load_s={Measure.F(rf["load_s"])} " +
                              $"ref_loop_s={Measure.F(rf["loop_s"])} ref_peak_mb={Measure.F(refPeak)} ref_detections={(long)rf["detections"]} {common} blas={blas}");
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); }
            catch (IOException) { }
        }
    }

    /// <summary>
    /// Writes <paramref name="n"/> photos into <paramref name="folder"/>: Fashion-MNIST scenes of 1024x1024 (seed 0, 1-8
    /// glyphs scaled 2x-10x on flat, gradient, noise or texture backgrounds) cropped to <see cref="Sizes"/> in turn at a
    /// seeded offset, encoded as JPEG (quality 90) for even and PNG for odd indices. The same files for both sides.
    /// </summary>
    /// <returns>The folder (absolute).</returns>
    private static string BuildPhotos(string folder, int n, out long bytes)
    {
        string scenes = Path.Combine(Path.GetDirectoryName(folder)!, "scenes");
        FashionScenes.Build(new FashionScenesOptions(scenes, TrainImages: n, ValImages: 1, Size: 1024, MinScale: 2, MaxScale: 10));
        Directory.CreateDirectory(folder);
        var random = new Random(0);
        bytes = 0;
        for (int i = 0; i < n; i++)
        {
            var (w, h) = Sizes[i % Sizes.Length];
            using var scene = SKBitmap.Decode(Path.Combine(scenes, "train", $"{i + 1:D6}.png"))
                ?? throw new InvalidOperationException($"cannot decode scene {i + 1} in {scenes}");
            using var crop = new SKBitmap();
            if (!scene.ExtractSubset(crop, SKRectI.Create(random.Next(scene.Width - w + 1), random.Next(scene.Height - h + 1), w, h)))
                throw new InvalidOperationException($"cannot crop scene {i + 1} to {w}x{h}");
            using var image = SKImage.FromBitmap(crop);
            bool jpeg = i % 2 == 0;
            using var data = image.Encode(jpeg ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Png, 90);
            string path = Path.Combine(folder, $"photo{i + 1:D3}_{w}x{h}.{(jpeg ? "jpg" : "png")}");
            File.WriteAllBytes(path, data.ToArray());
            bytes += data.Size;
        }
        Directory.Delete(scenes, recursive: true);
        return Path.GetFullPath(folder);
    }

    /// <summary>The number of detections in a COCO results file (a JSON array).</summary>
    private static long CountDetections(string path)
    {
        using var stream = File.OpenRead(path);
        using var doc = JsonDocument.Parse(stream);
        return doc.RootElement.GetArrayLength();
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
