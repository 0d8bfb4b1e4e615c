// Benchmark `train-step`: one training step of RetinaNet R50-FPN (forward with losses, backward, step; 91 classes) on
// 2 images of 3x512x512 with 3 boxes each, 2 threads, against torchvision 0.14, in one of three modes:
//   pretrained (default): frozen BN, 3 trainable stages, SGD: the step of a run started from ImageNet weights
//                         (torchvision's weights_backbone); the weights are random, which does not change the work;
//   scratch:              trainable BN, all 5 stages, SGD: what torchvision builds without weights_backbone;
//   v2:                   TrainingRecipe.TorchvisionV2 (trainable BN, 3 stages, GroupNorm heads, GIoU, P6/P7 from C5), AdamW.
using RetinaSharp.Modeling;
using RetinaSharp.Recipes;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Times a RetinaNet training step, ours and torchvision's, with peak RSS.</summary>
public sealed class TrainStepSuite : IBenchmarkSuite
{
    /// <inheritdoc />
    public string Name => "train-step";

    /// <inheritdoc />
    /// <remarks>Options: --size S (default 512), --repeats N (default 5), --mode pretrained|scratch|v2 (default pretrained).</remarks>
    public void Run(string[] args)
    {
        int size = InferenceSuite.IntArg(args, "--size", 512);
        int repeats = InferenceSuite.IntArg(args, "--repeats", 5);
        string mode = InferenceSuite.StrArg(args, "--mode") ?? "pretrained";
        var options = mode switch
        {
            "pretrained" => new RetinaNetOptions(91),
            "scratch" => new RetinaNetOptions(91) { BackboneNorm = BackboneNormKind.BatchNorm, TrainableBackboneLayers = 5 },
            "v2" => TrainingRecipe.TorchvisionV2.ModelOptions(91) with { TrainMinSizes = null },
            _ => throw new ArgumentException($"--mode: '{mode}' is not pretrained, scratch or v2"),
        };
        Console.WriteLine($"mode {mode}: backbone norm {options.BackboneNorm}, {options.TrainableBackboneLayers} trainable stages, head GroupNorm {options.HeadGroupNorm}, box loss {options.BoxLoss}, P6 from {(options.P6FromC5 ? "C5" : "P5")}, {(mode == "v2" ? "AdamW" : "SGD")}");
        set_num_threads(2);
        manual_seed(0);
        GC.Collect();
        Measure.ResetPeakRss();
        using var model = new RetinaNet(options with { MinSize = size });
        model.train();
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        using var opt = mode == "v2" ? (optim.Optimizer)optim.AdamW(parameters, 1e-4, weight_decay: 0.05) : optim.SGD(parameters, 0.001, momentum: 0.9, weight_decay: 1e-4);
        var images = new[] { rand(3, size, size), rand(3, size, size) };
        var boxes = tensor(new[] { 10f, 20, 200, 220, 250, 40, 480, 300, 60, 300, 160, 500 }).reshape(3, 4);
        var targets = new[] { new DetectionTarget(boxes, tensor(new[] { 1L, 5, 17 })), new DetectionTarget(boxes, tensor(new[] { 1L, 5, 17 })) };
        long rssBuilt = Measure.CurrentRssBytes();

        var phases = new List<double[]>(); // forward with losses, backward, optimizer step (seconds), per call
        void Step()
        {
            using var scope = NewDisposeScope();
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var losses = model.ComputeLosses(images, targets);
            double forward = sw.Elapsed.TotalSeconds;
            opt.zero_grad();
            TorchRuntime.Backward(losses.Total);
            double backward = sw.Elapsed.TotalSeconds;
            opt.step();
            phases.Add([forward, backward - forward, sw.Elapsed.TotalSeconds - backward]);
        }

        double step = Measure.MedianSeconds(Step, warmup: 1, repeats: repeats);
        double peakMb = Measure.PeakRssBytes() / 1048576.0;
        double Phase(int i) { var v = phases.Skip(1).Select(p => p[i]).Order().ToArray(); return v[v.Length / 2]; }
        Console.WriteLine($"ours: step {Measure.F(step)} s (median of {repeats}: forward with losses {Measure.F(Phase(0))} s, backward {Measure.F(Phase(1))} s, optimizer {Measure.F(Phase(2))} s), peak RSS {Measure.F(peakMb)} MB (after building {Measure.F(rssBuilt / 1048576.0)} MB)");

        string? script = InferenceSuite.FindScript("train_step_ref.py");
        string? output = script == null ? null : Measure.RunPythonReference(script, size.ToString(System.Globalization.CultureInfo.InvariantCulture), repeats.ToString(System.Globalization.CultureInfo.InvariantCulture), mode);
        string? refLine = output?.Split('\n').FirstOrDefault(l => l.StartsWith("REF ", StringComparison.Ordinal));
        string extra = $"mode={mode} ours_step_s={Measure.F(step)} ours_forward_s={Measure.F(Phase(0))} ours_backward_s={Measure.F(Phase(1))} ours_peak_mb={Measure.F(peakMb)}";
        if (refLine == null)
        {
            Console.WriteLine(output?.Trim() ?? "reference skipped: train_step_ref.py not found");
            Console.WriteLine($"RESULT train-step time_ratio=NA mem_ratio=NA {extra} reference=none");
            return;
        }
        var r = Measure.ParseKeyValues(refLine);
        Console.WriteLine($"torchvision: step {Measure.F(r["step_s"])} s (forward with losses {Measure.F(r["forward_s"])} s, backward {Measure.F(r["backward_s"])} s), peak RSS {Measure.F(r["peak_rss_mb"])} MB");
        Console.WriteLine($"RESULT train-step time_ratio={Measure.F(step / r["step_s"])} mem_ratio={Measure.F(peakMb / r["peak_rss_mb"])} {extra} ref_step_s={Measure.F(r["step_s"])} ref_forward_s={Measure.F(r["forward_s"])} ref_backward_s={Measure.F(r["backward_s"])} ref_peak_mb={Measure.F(r["peak_rss_mb"])}");
    }
}
