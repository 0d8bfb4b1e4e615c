using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using RetinaSharp.Geometry;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>
/// `postprocess`: one image's RetinaNet head outputs at 800x800 (5 levels, 120 087 anchors x 80 classes):
/// score threshold 0.05, top 1000 per level, decode, batched NMS 0.5, keep 100 — ours
/// (<see cref="RetinaNetPostProcessor"/>) against torchvision 0.14's <c>RetinaNet.postprocess_detections</c>
/// on the same tensors (written to a temporary folder that python/postprocess_ref.py reads). Also greedy
/// NMS alone: ours, torchvision's <c>ops.nms</c> and TorchSharp's <c>torchvision.ops.nms</c> (when the
/// TorchVision package is in the NuGet cache). Options: --repeats N (7), --threads T (2), --seed S (0).
/// </summary>
public sealed class PostprocessSuite : IBenchmarkSuite
{
    /// <inheritdoc />
    public string Name => "postprocess";

    private const int NumClasses = 80;
    private static readonly (long H, long W) ImageSize = (800, 800);
    private static readonly (long H, long W)[] FeatureSizes = { (100, 100), (50, 50), (25, 25), (13, 13), (7, 7) };
    private static readonly int[] NmsSizes = { 1000, 5000 };
    private const double NmsThreshold = 0.5;

    /// <inheritdoc />
    public void Run(string[] args)
    {
        int repeats = IntOption(args, "--repeats", 7);
        int threads = IntOption(args, "--threads", 2);
        int seed = IntOption(args, "--seed", 0);
        torch.set_num_threads(threads);
        string dir = Path.Combine(Path.GetTempPath(), $"retinasharp-postprocess-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            RunIn(dir, repeats, threads, seed);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void RunIn(string dir, int repeats, int threads, int seed)
    {
        using var scope = NewDisposeScope();
        // Head outputs at initialisation: logits = prior bias -ln((1 - 0.01) / 0.01) + N(0, 1), so about 5 %
        // of the 9.6 M (anchor, class) scores pass 0.05 and every level fills its top 1000; deltas N(0, 0.1).
        var gen = new torch.Generator((ulong)seed);
        var anchors = AnchorGenerator.RetinaNetDefault().AnchorsPerLevel(ImageSize, FeatureSizes);
        double prior = -Math.Log((1 - 0.01) / 0.01);
        var logits = anchors.Select(a => randn(a.shape[0], NumClasses, generator: gen) + prior).ToArray();
        var deltas = anchors.Select(a => randn(a.shape[0], 4, generator: gen) * 0.1).ToArray();
        for (int l = 0; l < anchors.Length; l++)
        {
            WriteRaw(Path.Combine(dir, $"logits_{l}.bin"), logits[l]);
            WriteRaw(Path.Combine(dir, $"deltas_{l}.bin"), deltas[l]);
            WriteRaw(Path.Combine(dir, $"anchors_{l}.bin"), anchors[l]);
        }
        var nmsInputs = new Dictionary<int, (Tensor Boxes, Tensor Scores)>();
        foreach (int n in NmsSizes)
        {
            // boxes of 20-200 px spread over the 800x800 image: a realistic share is suppressed at 0.5
            var xy = rand(n, 2, generator: gen) * 700;
            var boxes = cat(new[] { xy, xy + rand(n, 2, generator: gen) * 180 + 20 }, 1);
            var scores = rand(n, generator: gen);
            nmsInputs[n] = (boxes, scores);
            WriteRaw(Path.Combine(dir, $"nms_boxes_{n}.bin"), boxes);
            WriteRaw(Path.Combine(dir, $"nms_scores_{n}.bin"), scores);
        }
        var meta = new
        {
            num_classes = NumClasses,
            anchors_per_level = anchors.Select(a => a.shape[0]).ToArray(),
            image_size = new[] { ImageSize.H, ImageSize.W },
            settings = new { score_thresh = 0.05, topk_candidates = 1000, nms_thresh = 0.5, detections_per_img = 100 },
            nms_cases = NmsSizes.Select(n => new { n, threshold = NmsThreshold }).ToArray(),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "meta.json"), JsonSerializer.Serialize(meta));

        // Ours.
        var post = new RetinaNetPostProcessor();
        Detections Once() => post.Process(logits, deltas, anchors, ImageSize);
        long rss0 = Measure.CurrentRssBytes();
        bool resetOk = Measure.ResetPeakRss();
        Detections ours;
        using (var s = NewDisposeScope())
        {
            ours = Once();
            ours = new Detections(ours.Boxes.MoveToOuterDisposeScope(), ours.Scores.MoveToOuterDisposeScope(), ours.Labels.MoveToOuterDisposeScope());
        }
        long oursMem = Math.Max(0, Measure.PeakRssBytes() - rss0);
        var (oursTime, oursCpu) = WallAndCpu(() => { using var s = NewDisposeScope(); Once(); }, repeats);

        var nmsOurs = new Dictionary<int, double>();
        var nmsTorchSharp = new Dictionary<int, double?>();
        var oursKeeps = new Dictionary<int, long[]>();
        var torchSharpNms = FindTorchSharpNms();
        foreach (int n in NmsSizes)
        {
            var (b, sc) = nmsInputs[n];
            nmsOurs[n] = Measure.MedianSeconds(() => { using var s = NewDisposeScope(); NonMaxSuppression.Greedy(b, sc, NmsThreshold); }, repeats: repeats);
            oursKeeps[n] = NonMaxSuppression.Greedy(b, sc, NmsThreshold).data<long>().ToArray();
            nmsTorchSharp[n] = torchSharpNms is null ? null
                : Measure.MedianSeconds(() => { using var s = NewDisposeScope(); torchSharpNms(b, sc, NmsThreshold); }, warmup: 1, repeats: Math.Min(repeats, 3));
        }

        // torchvision, same tensors, same process tree.
        string? script = InferenceSuite.FindScript("postprocess_ref.py");
        if (script is null) Console.WriteLine("reference skipped: postprocess_ref.py not found next to the benchmark or in the source tree");
        string? line = script is null ? null : Measure.RunPythonReference(script, dir, repeats.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture));
        var tv = line is null ? new Dictionary<string, double>() : Measure.ParseKeyValues(line.Trim().Split('\n')[^1]);

        Console.WriteLine($"image 800x800, {anchors.Sum(a => a.shape[0])} anchors x {NumClasses} classes, torch threads {threads}, repeats {repeats}, peak-RSS reset {(resetOk ? "on" : "unavailable")}");
        Console.WriteLine($"{"step",-34} {"ours ms",10} {"torchvision ms",15} {"ratio",7}");
        double? tvTime = tv.TryGetValue("tv_postprocess_s", out var t0) ? t0 : null;
        Row("postprocess (one image), wall", oursTime, tvTime);
        double? tvCpu = tv.TryGetValue("tv_postprocess_cpu_s", out var tc) ? tc : null;
        Row("postprocess (one image), CPU", oursCpu, tvCpu);
        foreach (int n in NmsSizes)
        {
            double? tvNms = tv.TryGetValue($"tv_nms_{n}_s", out var t1) ? t1 : null;
            Row($"greedy NMS, {n} boxes", nmsOurs[n], tvNms);
            if (nmsTorchSharp[n] is double ts)
                Console.WriteLine($"{"  TorchSharp ops.nms, " + n + " boxes",-34} {ts * 1000,10:F2} {"",15} {"ours/TS",7} {Measure.F(nmsOurs[n] / ts)}");
        }
        if (torchSharpNms is null) Console.WriteLine("TorchSharp ops.nms: skipped (TorchVision 0.107.0 not in the NuGet cache)");

        // Equality with torchvision's outputs.
        string match = "n/a";
        if (line is not null)
        {
            var tvScores = ReadFloats(Path.Combine(dir, "tv_scores.bin"));
            var tvLabels = ReadLongs(Path.Combine(dir, "tv_labels.bin"));
            var tvBoxes = ReadFloats(Path.Combine(dir, "tv_boxes.bin"));
            var oScores = ours.Scores.data<float>().ToArray();
            var oLabels = ours.Labels.data<long>().ToArray();
            var oBoxes = ours.Boxes.contiguous().data<float>().ToArray();
            bool same = tvScores.Length == oScores.Length && tvLabels.SequenceEqual(oLabels);
            double maxScore = same ? tvScores.Zip(oScores, (a, b) => Math.Abs(a - b)).DefaultIfEmpty(0).Max() : double.NaN;
            double maxBox = same ? tvBoxes.Zip(oBoxes, (a, b) => Math.Abs(a - b)).DefaultIfEmpty(0).Max() : double.NaN;
            bool nmsSame = NmsSizes.All(n => ReadLongs(Path.Combine(dir, $"tv_nms_keep_{n}.bin")).SequenceEqual(oursKeeps[n]));
            match = same && nmsSame ? "1" : "0";
            Console.WriteLine($"detections: ours {oScores.Length}, torchvision {tvScores.Length}; labels equal {same}; max |score diff| {Measure.F(maxScore)}; max |box diff| {Measure.F(maxBox)} px; NMS keeps equal {nmsSame}");
        }

        double ratio = tvTime is double tt ? oursTime / tt : double.NaN;
        double cpuRatio = tvCpu is double tcpu ? oursCpu / tcpu : double.NaN;
        double memRatio = tv.TryGetValue("tv_mem_bytes", out var tvMem) && tvMem > 0 ? oursMem / tvMem : double.NaN;
        Console.WriteLine($"memory: ours {oursMem / 1e6:F1} MB, torchvision {(tv.TryGetValue("tv_mem_bytes", out var m) ? (m / 1e6).ToString("F1", CultureInfo.InvariantCulture) : "n/a")} MB (peak RSS growth during one call)");
        var extra = string.Join(" ", NmsSizes.Select(n =>
            $"nms{n}_ours_ms={Measure.F(nmsOurs[n] * 1000)} nms{n}_tv_ms={(tv.TryGetValue($"tv_nms_{n}_s", out var v) ? Measure.F(v * 1000) : "nan")} " +
            $"nms{n}_torchsharp_ms={(nmsTorchSharp[n] is double d ? Measure.F(d * 1000) : "nan")}"));
        Console.WriteLine($"RESULT postprocess time_ratio={Measure.F(ratio)} mem_ratio={Measure.F(memRatio)} ours_ms={Measure.F(oursTime * 1000)} " +
                          $"torchvision_ms={(tvTime is double x ? Measure.F(x * 1000) : "nan")} cpu_ratio={Measure.F(cpuRatio)} {extra} match={match} threads={threads}");
    }

    /// <summary>Median wall time and median process CPU time (all threads) in seconds, after 2 warm-up runs.
    /// CPU time is the steadier figure on a shared machine where this process waits for a core.</summary>
    private static (double Wall, double Cpu) WallAndCpu(Action action, int repeats)
    {
        action();
        action();
        var wall = new double[repeats];
        var cpu = new double[repeats];
        var process = System.Diagnostics.Process.GetCurrentProcess();
        for (int i = 0; i < repeats; i++)
        {
            process.Refresh();
            var c0 = process.TotalProcessorTime;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            action();
            wall[i] = sw.Elapsed.TotalSeconds;
            process.Refresh();
            cpu[i] = (process.TotalProcessorTime - c0).TotalSeconds;
        }
        Array.Sort(wall);
        Array.Sort(cpu);
        return (wall[repeats / 2], cpu[repeats / 2]);
    }

    private static void Row(string name, double ours, double? reference) =>
        Console.WriteLine($"{name,-34} {ours * 1000,10:F2} {(reference is double r ? (r * 1000).ToString("F2", CultureInfo.InvariantCulture) : "n/a"),15} {(reference is double r2 ? Measure.F(ours / r2) : ""),7}");

    /// <summary>TorchSharp's own torchvision.ops.nms, loaded by reflection from the NuGet cache (the package is not referenced).</summary>
    private static Func<Tensor, Tensor, double, Tensor>? FindTorchSharpNms()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                      ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string dll = Path.Combine(root, "torchvision", "0.107.0", "lib", "net8.0", "TorchVision.dll");
        if (!File.Exists(dll)) return null;
        try
        {
            var asm = Assembly.LoadFrom(dll);
            var method = asm.GetTypes().Where(t => t.Name == "ops")
                .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
                .FirstOrDefault(mi => mi.Name == "nms" && mi.GetParameters().Length == 3);
            if (method is null) return null;
            return (b, s, thr) => (Tensor)method.Invoke(null, new object[] { b, s, thr })!;
        }
        catch (Exception e) when (e is IOException or BadImageFormatException or ReflectionTypeLoadException)
        {
            Console.WriteLine($"TorchSharp ops.nms unavailable: {e.Message}");
            return null;
        }
    }

    private static void WriteRaw(string path, Tensor t)
    {
        var c = t.contiguous().cpu();
        var bytes = c.bytes.ToArray();
        AtomicFile.WriteAllBytes(path, bytes);
    }

    private static float[] ReadFloats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();
    private static long[] ReadLongs(string path) => MemoryMarshal.Cast<byte, long>(File.ReadAllBytes(path)).ToArray();

    private static int IntOption(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : fallback;
    }
}
