// Benchmark `inference`: RetinaNet R50-FPN (91 classes, random weights) on one 3x800x800 image with 2 threads:
// the network alone (backbone + FPN + heads on the preprocessed batch) and full Detect (transform, network,
// post-processing), ours in fp32, fp32 with frozen BN folded, folded + channels-last, bfloat16, and bfloat16 +
// channels-last, bfloat16, and bfloat16 + channels-last, our whole detector exported to ONNX (RetinaSharp.Export) under
// ONNX Runtime fp32, against torchvision 0.14 eager and ONNX Runtime on torchvision's network exported by PyTorch 1.13
// (python/inference_onnx_ref.py), in one run.
using Microsoft.ML.OnnxRuntime;
using RetinaSharp.Export;
using RetinaSharp.Modeling;
using RetinaSharp.Serving;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Times R50-FPN RetinaNet inference, ours (several modes) and torchvision's, with peak RSS.</summary>
public sealed class InferenceSuite : IBenchmarkSuite
{
    /// <inheritdoc />
    public string Name => "inference";

    /// <inheritdoc />
    /// <remarks>Options: --size S (default 800), --repeats N (default 5), --modes fp32,folded,cl,bf16,bf16cl,ort,ort-int8,ort-tv (default all;
    /// cl = channels-last; ort = our exported graph under ONNX Runtime; ort-int8 = the same graph quantised to int8
    /// (OnnxExportOptions.Int8, calibrated on 4 random images); ort-tv = ONNX Runtime on torchvision's export, a peer).</remarks>
    public void Run(string[] args)
    {
        int size = IntArg(args, "--size", 800);
        int repeats = IntArg(args, "--repeats", 5);
        var modes = (StrArg(args, "--modes") ?? "fp32,folded,cl,bf16,bf16cl,ort,ort-int8,ort-tv").Split(',', StringSplitOptions.RemoveEmptyEntries);
        set_num_threads(2);
        manual_seed(0);
        var image = rand(3, size, size);
        GC.Collect();
        long rssStart = Measure.CurrentRssBytes();
        Console.WriteLine($"threads {get_num_threads()}, input 1x3x{size}x{size}, RSS before any model {Measure.F(rssStart / 1048576.0)} MB");

        // Each mode gets its own model (same seed, same weights) and its own peak-RSS window, as a process that
        // serves in that one mode would: bf16 and channels-last replace parameters, so modes cannot share a model.
        var results = new Dictionary<string, (double Net, double Full, double PeakMb)>();
        (double Net, double PeakMb)? ortTorchvision = null;
        string? oursOnnx = null, torchvisionOnnx = null;   // kept for the paired comparison at the end
        foreach (var mode in modes)
        {
            if (mode is "ort" or "ort-int8" or "ort-tv")
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                MallocTrim(0);
                Measure.ResetPeakRss();
                if (mode is "ort" or "ort-int8") results[mode] = RunOurOnnx(size, repeats, image, int8: mode == "ort-int8", keep: mode == "ort" ? f => oursOnnx = f : null);
                else ortTorchvision = RunTorchvisionOnnx(size, repeats, image, f => torchvisionOnnx = f);
                continue;
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            MallocTrim(0);   // hand the previous mode's freed memory back to the system, so each window starts alike
            Measure.ResetPeakRss();
            manual_seed(0);
            using (var model = new RetinaNet(new RetinaNetOptions(91) { MinSize = size }))
            {
                switch (mode)
                {
                    case "fp32": model.eval(); break;
                    case "folded": model.PrepareForInference(foldBatchNorm: true, channelsLast: false); break;
                    case "cl": model.PrepareForInference(foldBatchNorm: true, channelsLast: true); break;
                    case "bf16": model.PrepareForInference(foldBatchNorm: true, bfloat16: true, channelsLast: false); break;
                    case "bf16cl": model.PrepareForInference(foldBatchNorm: true, bfloat16: true, channelsLast: true); break;
                    default: throw new ArgumentException($"--modes: unknown mode '{mode}' (fp32, folded, cl, bf16, bf16cl)");
                }
                var batch = model.Transform.Preprocess([image]).Images;
                double net = Measure.MedianSeconds(() =>
                {
                    using var s = NewDisposeScope();
                    using var g = no_grad();
                    model.forward(batch);
                }, warmup: 1, repeats: repeats);
                double full = Measure.MedianSeconds(() =>
                {
                    using var s = NewDisposeScope();
                    model.Detect([image]);
                }, warmup: 1, repeats: repeats);
                batch.Dispose();
                double peakMb = Measure.PeakRssBytes() / 1048576.0;
                results[mode] = (net, full, peakMb);
                Console.WriteLine($"ours {mode,-7}: network {Measure.F(net)} s, full Detect {Measure.F(full)} s (medians of {repeats}), peak RSS {Measure.F(peakMb)} MB");
            }
        }
        // The ort mode has no network-only time (the graph runs from image to detections): its full time stands for it.
        var best = results.MinBy(kv => kv.Value.Net);
        string paired = oursOnnx != null && torchvisionOnnx != null ? $" ort_vs_ort_tv_paired={Measure.F(PairedOnnxRatio(oursOnnx, torchvisionOnnx, image, 2 * repeats))}" : "";
        foreach (var path in new[] { oursOnnx, torchvisionOnnx }) if (path != null) File.Delete(path);
        string ortExtra = ortTorchvision is { } otv
            ? $" ort_tv_net_s={Measure.F(otv.Net)} ort_tv_peak_mb={Measure.F(otv.PeakMb)}" + paired +
              (results.TryGetValue("ort", out var ours) ? $" ort_vs_ort_tv={Measure.F(ours.Full / otv.Net)}" : "") +
              (results.TryGetValue("ort-int8", out var int8) ? $" ort_int8_vs_ort_tv={Measure.F(int8.Full / otv.Net)}" : "")
            : "";
        double bestPeakMb = best.Value.PeakMb;

        string? script = FindScript("inference_ref.py");
        string? output = script == null ? null : Measure.RunPythonReference(script, size.ToString(System.Globalization.CultureInfo.InvariantCulture), repeats.ToString(System.Globalization.CultureInfo.InvariantCulture));
        string? refLine = output?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
        string extra = string.Join(' ', results.Select(kv => (Key: kv.Key.Replace('-', '_'), kv.Value)).Select(kv => $"{kv.Key}_net_s={Measure.F(kv.Value.Net)} {kv.Key}_full_s={Measure.F(kv.Value.Full)} {kv.Key}_peak_mb={Measure.F(kv.Value.PeakMb)}"));
        if (refLine == null)
        {
            Console.WriteLine(output?.Trim() ?? "reference skipped: inference_ref.py not found");
            Console.WriteLine($"RESULT inference time_ratio=NA mem_ratio=NA {extra}{ortExtra} reference=none");
            return;
        }
        var r = Measure.ParseKeyValues(refLine);
        Console.WriteLine($"torchvision: network {Measure.F(r["net_s"])} s, full {Measure.F(r["full_s"])} s, peak RSS {Measure.F(r["peak_rss_mb"])} MB");
        // PyTorch's best CPU modes in the same run (channels_last; bfloat16 autocast + channels_last), when the script has them.
        double bestPeer = r.TryGetValue("best_net_s", out var bp) ? bp : r["net_s"];
        if (r.TryGetValue("cl_net_s", out var tcl) && r.TryGetValue("bf16cl_net_s", out var tbf))
            Console.WriteLine($"torchvision channels_last: network {Measure.F(tcl)} s; bf16 autocast + channels_last {Measure.F(tbf)} s; best {Measure.F(bestPeer)} s");
        foreach (var (mode, (net, full, peak)) in results)
            Console.WriteLine($"ratio {mode,-7}: network {Measure.F(net / r["net_s"])}, full {Measure.F(full / r["full_s"])}, peak RSS {Measure.F(peak / r["peak_rss_mb"])}");
        Console.WriteLine($"RESULT inference time_ratio={Measure.F(best.Value.Net / r["net_s"])} mem_ratio={Measure.F(bestPeakMb / r["peak_rss_mb"])} best_mode={best.Key} " +
                          $"full_time_ratio={Measure.F(best.Value.Full / r["full_s"])} fp32_time_ratio={(results.TryGetValue("fp32", out var f) ? Measure.F(f.Net / r["net_s"]) : "NA")} " +
                          $"best_peer_ratio={Measure.F(best.Value.Net / bestPeer)} onednn={RetinaSharp.TorchRuntime.OneDnn.Mode} " +
                          $"{extra}{ortExtra} ref_net_s={Measure.F(r["net_s"])} ref_full_s={Measure.F(r["full_s"])} ref_peak_mb={Measure.F(r["peak_rss_mb"])} " +
                          $"ref_cl_net_s={(r.TryGetValue("cl_net_s", out var a1) ? Measure.F(a1) : "NA")} ref_bf16cl_net_s={(r.TryGetValue("bf16cl_net_s", out var a2) ? Measure.F(a2) : "NA")}");
    }

    /// <summary>
    /// Our whole detector (same architecture and seed as the TorchSharp modes) exported in memory (opset 17, fixed
    /// SIZExSIZE) and run by <see cref="OnnxRuntimeDetector"/> on the CPU with 2 threads: image to detections, so its
    /// network time is its full time (resize, normalisation, decoding and NMS included).
    /// </summary>
    private static (double Net, double Full, double PeakMb) RunOurOnnx(int size, int repeats, Tensor image, bool int8, Action<string>? keep = null)
    {
        // Exported to a file first, the exporting model released, then served from the file: the peak-RSS window is a
        // serving process's (ONNX Runtime session and one run), as for the other modes.
        string file = Path.Combine(Path.GetTempPath(), $"retinasharp-bench-ours{(int8 ? "-int8" : "")}-{Environment.ProcessId}.onnx");
        manual_seed(0);
        using (var model = new RetinaNet(new RetinaNetOptions(91) { MinSize = size }))
        {
            model.eval();
            // int8: ranges from the timed image and three more random ones (the weights are random too: this mode measures speed;
            // its accuracy is measured on the trained demo model, docs/benchmarks.md).
            var calibration = int8 ? RetinaSharp.Quantization.Int8Calibrator.Calibrate(model, [image, rand(3, size, size), rand(3, size, size), rand(3, size, size)], intraOpThreads: 2) : null;
            OnnxExporter.Export(model, file, new OnnxExportOptions { FixedSize = (size, size), Int8 = calibration });
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        MallocTrim(0);
        Measure.ResetPeakRss();
        using var detector = new OnnxRuntimeDetector(file, new OnnxRuntimeDetectorOptions { Device = OnnxDevice.Cpu, IntraOpThreads = 2 });
        if (keep != null) keep(file); else File.Delete(file);
        double full = Measure.MedianSeconds(() =>
        {
            using var s = NewDisposeScope();
            detector.Detect(image);
        }, warmup: 1, repeats: repeats);
        double peakMb = Measure.PeakRssBytes() / 1048576.0;
        Console.WriteLine($"ours {(int8 ? "ort-int8" : "ort     ")}: whole graph (image to detections) {Measure.F(full)} s (median of {repeats}), peak RSS {Measure.F(peakMb)} MB, {detector.DeviceNote}");
        return (full, full, peakMb);
    }

    /// <summary>
    /// torchvision's network part exported by PyTorch 1.13 (python/inference_onnx_ref.py, opset 17) and run by ONNX
    /// Runtime on the CPU with 2 threads on the preprocessed 1x3xSIZExSIZE batch; null when the export is not possible here.
    /// </summary>
    private static (double Net, double PeakMb)? RunTorchvisionOnnx(int size, int repeats, Tensor image, Action<string> keep)
    {
        string? script = FindScript("inference_onnx_ref.py");
        if (script == null) { Console.WriteLine("ort-tv skipped: inference_onnx_ref.py not found"); return null; }
        string file = Path.Combine(Path.GetTempPath(), $"retinasharp-bench-tv-{Environment.ProcessId}.onnx");
        try
        {
            string? output = Measure.RunPythonReference(script, file, size.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (output == null || !File.Exists(file)) { Console.WriteLine("ort-tv skipped: the PyTorch export did not run"); return null; }
            float[] batch = TorchvisionInput(image, size);
            Measure.ResetPeakRss();
            using var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 2 };
            using var session = new InferenceSession(file, so);
            long side = (long)Math.Sqrt(batch.Length / 3);
            using var input = OrtValue.CreateTensorValueFromMemory(batch, [1, 3, side, side]);
            using var runOptions = new RunOptions();
            double net = Measure.MedianSeconds(() =>
            {
                using var outputs = session.Run(runOptions, ["x"], [input], ["cls_logits", "bbox_regression"]);
            }, warmup: 1, repeats: repeats);
            double peakMb = Measure.PeakRssBytes() / 1048576.0;
            Console.WriteLine($"ORT on torchvision's export: network {Measure.F(net)} s (median of {repeats}), peak RSS {Measure.F(peakMb)} MB " +
                              $"({output.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal))?.Trim()})");
            return (net, peakMb);
        }
        finally
        {
            if (File.Exists(file)) keep(file);
        }
    }

    /// <summary>
    /// Our graph (whole detector, <paramref name="ours"/>) against torchvision's export (network only, <paramref name="torchvision"/>)
    /// under ONNX Runtime, both sessions open, timed in alternation for <paramref name="rounds"/> rounds after one warm-up each:
    /// the median of the per-round ratios. Drift of the machine's speed over a run (other tenants, clocks) moves both sides of a
    /// round alike, which separate medians minutes apart do not cancel. Both sides are bare <c>InferenceSession.Run</c> calls on
    /// ready inputs (ours: the image (3, H, W); theirs: the preprocessed batch), so the ratio compares the two graphs alone.
    /// </summary>
    private static double PairedOnnxRatio(string ours, string torchvision, Tensor image, int rounds)
    {
        float[] batch = TorchvisionInput(image, (int)image.shape[1]), pixels = image.contiguous().data<float>().ToArray();
        using var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 2 };
        using var session = new InferenceSession(torchvision, so);
        using var oursSession = new InferenceSession(ours, so);
        using var oursInput = OrtValue.CreateTensorValueFromMemory(pixels, [3, image.shape[1], image.shape[2]]);
        using var input = OrtValue.CreateTensorValueFromMemory(batch, [1, 3, image.shape[1], image.shape[2]]);
        using var runOptions = new RunOptions();
        void Ours() { using var outputs = oursSession.Run(runOptions, [OnnxDetectorMetadata.ImageInput], [oursInput], [OnnxDetectorMetadata.BoxesOutput, OnnxDetectorMetadata.ScoresOutput, OnnxDetectorMetadata.LabelsOutput]); }
        void Theirs() { using var outputs = session.Run(runOptions, ["x"], [input], ["cls_logits", "bbox_regression"]); }
        Ours(); Theirs();
        var ratios = new List<double>();
        var sw = new System.Diagnostics.Stopwatch();
        for (int r = 0; r < rounds; r++)
        {
            sw.Restart(); Ours(); double a = sw.Elapsed.TotalSeconds;
            sw.Restart(); Theirs(); double b = sw.Elapsed.TotalSeconds;
            ratios.Add(a / b);
        }
        ratios.Sort();
        double median = ratios.Count % 2 == 1 ? ratios[ratios.Count / 2] : (ratios[ratios.Count / 2 - 1] + ratios[ratios.Count / 2]) / 2;
        Console.WriteLine($"paired ort vs ort-tv ({rounds} alternating rounds): median ratio {Measure.F(median)} (range {Measure.F(ratios[0])}..{Measure.F(ratios[^1])})");
        return median;
    }

    /// <summary>The input of torchvision's exported network: <paramref name="image"/> normalised, resized to <paramref name="size"/>
    /// and padded as the suite's models do (DetectionTransform of the same options), (1, 3, H, W) flattened.</summary>
    private static float[] TorchvisionInput(Tensor image, int size)
    {
        using var scope = NewDisposeScope();
        return new DetectionTransform(new RetinaNetOptions(91) { MinSize = size }).Preprocess([image]).Images.contiguous().data<float>().ToArray();
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    internal static int IntArg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    internal static string? StrArg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>Finds bench/RetinaSharp.Benchmarks/python/NAME from the output folder or the working directory.</summary>
    internal static string? FindScript(string name)
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "bench", "RetinaSharp.Benchmarks", "python", name);
                if (File.Exists(p)) return p;
                p = Path.Combine(d.FullName, "python", name);
                if (File.Exists(p)) return p;
            }
        return null;
    }
}
