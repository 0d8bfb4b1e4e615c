// Benchmark suite "focal-loss": forward + backward of the sigmoid focal loss on detector-sized logits
// (2, 120000, 80) float32 with about 0.1% positives, on 2 threads. Ours (fused CPU kernel, dense and class-index
// targets; composite tensor-op path) against torchvision 0.14's ops.sigmoid_focal_loss run by
// python/focal_loss_ref.py in the same run. Reports median time and peak RSS beyond the inputs.

using System.Globalization;
using System.Runtime.CompilerServices;
using RetinaSharp.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>
/// The focal-loss suite. Options: <c>--repeats N</c> (default 7), <c>--warmup N</c> (default 2), <c>--threads N</c>
/// (default 2), <c>--shape d0,d1,...</c> (default 2,120000,80), <c>--positives F</c> (default 0.001).
/// </summary>
public sealed class FocalLossSuite : IBenchmarkSuite
{
    /// <inheritdoc/>
    public string Name => "focal-loss";

    /// <inheritdoc/>
    public void Run(string[] args)
    {
        int repeats = IntOption(args, "--repeats", 7), warmup = IntOption(args, "--warmup", 2), threads = IntOption(args, "--threads", 2);
        string shapeText = Option(args, "--shape") ?? "2,120000,80";
        double positives = double.Parse(Option(args, "--positives") ?? "0.001", CultureInfo.InvariantCulture);
        long[] shape = shapeText.Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        set_num_threads(threads);
        Console.WriteLine($"logits {shapeText} float32, {positives:P2} positives, {threads} threads, median of {repeats} after {warmup} warm-up runs; reduction sum, alpha 0.25, gamma 2");

        manual_seed(0);
        var logits = randn(shape);
        var targets = (rand(shape) < positives).to(ScalarType.Float32);
        // The same targets as class indices: the first positive class of each anchor, else background.
        var classIndices = where(targets.any(-1), targets.argmax(-1), full(shape[..^1], -1L, ScalarType.Int64));

        var rows = new List<(string Name, double Seconds, long ExtraBytes, double Loss)>
        {
            Measure1("fused (dense targets)", () => FocalLoss.SigmoidFocalLoss(Leaf(logits), targets, reduction: FocalReduction.Sum, path: FocalLossPath.Fused), warmup, repeats),
            Measure1("fused (class indices)", () => FocalLoss.SigmoidFocalLossFromIndices(Leaf(logits), classIndices, reduction: FocalReduction.Sum, path: FocalLossPath.Fused), warmup, repeats),
            Measure1("composite (tensor ops)", () => FocalLoss.SigmoidFocalLoss(Leaf(logits), targets, reduction: FocalReduction.Sum, path: FocalLossPath.Composite), warmup, repeats),
        };

        (double Seconds, long ExtraBytes, double Loss)? reference = null;
        string? stdout = Measure.RunPythonReference(ReferenceScript(), shapeText, positives.ToString("R", CultureInfo.InvariantCulture),
            threads.ToString(CultureInfo.InvariantCulture), warmup.ToString(CultureInfo.InvariantCulture), repeats.ToString(CultureInfo.InvariantCulture));
        var refLine = stdout?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
        if (refLine is not null)
        {
            var kv = Measure.ParseKeyValues(refLine);
            reference = (kv["time_s"], (long)kv["peak_extra_bytes"], kv["loss"]);
            rows.Add(("torchvision 0.14 sigmoid_focal_loss", reference.Value.Seconds, reference.Value.ExtraBytes, reference.Value.Loss));
        }
        else if (stdout is not null)
        {
            Console.WriteLine($"reference printed no REF line: {stdout.Trim()}");
        }

        Console.WriteLine();
        Console.WriteLine("| path | median time (s) | peak memory beyond inputs (MB) | time vs torchvision | memory vs torchvision | loss |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in rows)
        {
            string tr = reference is null ? "n/a" : Measure.F(r.Seconds / reference.Value.Seconds) + "x";
            string mr = reference is null ? "n/a" : Measure.F((double)r.ExtraBytes / reference.Value.ExtraBytes) + "x";
            Console.WriteLine($"| {r.Name} | {Measure.F(r.Seconds)} | {Measure.F(r.ExtraBytes / 1e6)} | {tr} | {mr} | {r.Loss.ToString("G8", CultureInfo.InvariantCulture)} |");
        }
        Console.WriteLine("(torchvision draws its inputs the same way, torch.manual_seed(0) then randn and rand < p, which gives the same tensors as here: its loss equals the dense-target rows up to float32 summation order. The class-index row keeps one positive per anchor, so it differs slightly.)");

        var fused = rows[0];
        string timeRatio = reference is null ? "nan" : Measure.F(fused.Seconds / reference.Value.Seconds);
        string memRatio = reference is null ? "nan" : Measure.F((double)fused.ExtraBytes / reference.Value.ExtraBytes);
        Console.WriteLine(
            $"RESULT focal-loss time_ratio={timeRatio} mem_ratio={memRatio} fused_s={Measure.F(fused.Seconds)} fused_mb={Measure.F(fused.ExtraBytes / 1e6)} " +
            $"fused_indices_s={Measure.F(rows[1].Seconds)} fused_indices_mb={Measure.F(rows[1].ExtraBytes / 1e6)} " +
            $"composite_s={Measure.F(rows[2].Seconds)} composite_mb={Measure.F(rows[2].ExtraBytes / 1e6)} " +
            $"torchvision_s={(reference is null ? "nan" : Measure.F(reference.Value.Seconds))} torchvision_mb={(reference is null ? "nan" : Measure.F(reference.Value.ExtraBytes / 1e6))} threads={threads}");
    }

    /// <summary>A fresh leaf sharing the input's storage, so each run builds its own graph and gradient.</summary>
    private static Tensor Leaf(Tensor logits) => logits.detach().requires_grad_(true);

    /// <summary>Median time of forward + backward, then one more run to read the peak RSS beyond the resident inputs.</summary>
    private static (string, double, long, double) Measure1(string name, Func<Tensor> loss, int warmup, int repeats)
    {
        void Step()
        {
            using var scope = NewDisposeScope();
            loss().backward();
        }
        double seconds = Measure.MedianSeconds(Step, warmup, repeats);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long baseline = Measure.CurrentRssBytes();
        Measure.ResetPeakRss();
        double value;
        using (var scope = NewDisposeScope())
        {
            var l = loss();
            l.backward();
            value = l.ToDouble();
        }
        long extra = Math.Max(0, Measure.PeakRssBytes() - baseline);
        Console.WriteLine($"{name}: {Measure.F(seconds)} s, {Measure.F(extra / 1e6)} MB");
        return (name, seconds, extra, value);
    }

    private static string ReferenceScript([CallerFilePath] string thisFile = "")
    {
        const string relative = "bench/RetinaSharp.Benchmarks/python/focal_loss_ref.py";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        return Path.Combine(Path.GetDirectoryName(thisFile) ?? ".", "..", "python", "focal_loss_ref.py");
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int IntOption(string[] args, string name, int fallback) =>
        Option(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;
}
