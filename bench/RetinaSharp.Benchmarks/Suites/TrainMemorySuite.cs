// Benchmark `train-memory`: does the resident memory of a long training run stay flat? Trains what `retina demo`
// trains (Fashion-MNIST scenes of 128x128 px, RetinaNet ResNet-18-FPN from scratch, batch 8, AdamW, through the real
// Trainer + DetectionDataLoader, checkpoints included) for 1000 iterations and samples VmRSS / VmHWM of
// /proc/self/status every N iterations. Goal: peak RSS drifts by at most 5% between iteration 100 (after warm-up)
// and the end. The same-run reference is torchvision 0.14's RetinaNet trained the same way on the same files
// (python/train_memory_ref.py), whose own drift is printed next to ours.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Recipes;
using RetinaSharp.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Benchmarks.Suites;

/// <summary>Peak-RSS drift of a `retina demo` training run, ours and torchvision's.</summary>
public sealed class TrainMemorySuite : IBenchmarkSuite
{
    /// <summary>The goal: peak RSS at the end at most this many percent above the peak at the warm-up point.</summary>
    public const double GoalDriftPercent = 5;

    private const double MB = 1048576.0;

    /// <inheritdoc />
    public string Name => "train-memory";

    /// <summary>One sample of the memory counters after a completed iteration.</summary>
    /// <param name="Iteration">Completed iterations (for the row written after the run: the run length).</param>
    /// <param name="Seconds">Wall time since the first step started.</param>
    /// <param name="RssMb">VmRSS, MiB.</param>
    /// <param name="PeakMb">VmHWM, MiB (since the counter was reset before training).</param>
    /// <param name="ManagedMb">The .NET GC heap (GC.GetTotalMemory without collecting), MiB; NaN for the reference.</param>
    private sealed record Sample(long Iteration, double Seconds, double RssMb, double PeakMb, double ManagedMb);

    /// <summary>The drift summary of one series.</summary>
    private sealed record Summary(long Warm, long End, double RssWarmMb, double PeakWarmMb, double RssEndMb, double PeakEndMb, double StepSeconds)
    {
        public double DriftPercent => 100 * (PeakEndMb - PeakWarmMb) / PeakWarmMb;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Options: --iterations N (1000), --batch-size B (8), --size S (128), --sample-every K (10), --train T (2000 scenes),
    /// --out DIR (docs/ of the repository: train_memory.csv and train_memory.png), --no-reference (skip torchvision),
    /// --reference-after (run torchvision after ours instead of at the same time), --warm W (the warm-up point,
    /// default min(100, N/2)), --max-minutes M (each side stops after M minutes of training; the end is then the last
    /// completed iteration, for a loaded machine), --trim-every N (sets
    /// <see cref="Trainer.TrimNativeHeapEvery"/>, 0 = never; default: the Trainer's default).
    /// </remarks>
    public void Run(string[] args)
    {
        int iterations = InferenceSuite.IntArg(args, "--iterations", 1000);
        int batch = InferenceSuite.IntArg(args, "--batch-size", 8);
        int size = InferenceSuite.IntArg(args, "--size", 128);
        int every = InferenceSuite.IntArg(args, "--sample-every", 10);
        int trainImages = InferenceSuite.IntArg(args, "--train", 2000);
        bool reference = !args.Contains("--no-reference");
        bool referenceAfter = args.Contains("--reference-after");
        string outDir = StringArg(args, "--out") ?? DocsFolder();
        long? trimEvery = StringArg(args, "--trim-every") is string te ? long.Parse(te, CultureInfo.InvariantCulture) : null;
        if (iterations < 2 || batch < 1 || every < 1) throw new ArgumentException("--iterations must be at least 2, --batch-size and --sample-every at least 1");
        long warm = InferenceSuite.IntArg(args, "--warm", Math.Min(100, iterations / 2));
        double? maxMinutes = StringArg(args, "--max-minutes") is string mm ? double.Parse(mm, CultureInfo.InvariantCulture) : null;
        if (warm < 1 || warm >= iterations) throw new ArgumentException($"--warm {warm}: must be in 1..{iterations - 1}");
        set_num_threads(2);

        // The demo's scenes (built once, reused while the options are the same).
        var scenesOptions = new FashionScenesOptions(Path.Combine(Path.GetTempPath(), $"retinasharp-bench-train-memory-{size}-{trainImages}"), trainImages, 300, size, 0);
        if (!FashionScenes.IsBuilt(scenesOptions)) FashionScenes.Build(scenesOptions);
        string trainJson = Path.Combine(scenesOptions.OutputFolder, "instances_train.json");
        var train = DetectionDataset.Load(trainJson);
        Console.WriteLine($"workload: `retina demo` training, {train.Images.Count} scenes of {size}x{size} px ({scenesOptions.OutputFolder}), " +
                          $"ResNet-18-FPN (width 64, GroupNorm heads, BatchNorm backbone) from scratch, batch {batch}, AdamW, {iterations} iterations, 2 threads; " +
                          $"samples every {every} iterations, warm-up point {warm}" +
                          (maxMinutes is double m ? string.Create(CultureInfo.InvariantCulture, $", each side stopped after {m} minutes of training") : ""));

        string args2 = string.Join(' ', new object[] { trainJson, iterations, batch, size, every, 0, warm, (maxMinutes ?? 0) * 60 }.Select(o => Convert.ToString(o, CultureInfo.InvariantCulture)));
        Process? python = null;
        var pythonOut = new StringBuilder();
        var pythonErr = new StringBuilder();
        string? script = reference ? InferenceSuite.FindScript("train_memory_ref.py") : null;
        if (reference && script == null) Console.WriteLine("reference skipped: bench/RetinaSharp.Benchmarks/python/train_memory_ref.py not found");
        if (script != null && !referenceAfter) python = StartPython(script, args2, pythonOut, pythonErr);

        var ours = TrainOurs(train, batch, size, iterations, every, warm, trimEvery, maxMinutes);
        var oursSummary = Summarize(ours, warm);

        if (script != null && referenceAfter) python = StartPython(script, args2, pythonOut, pythonErr);
        List<Sample>? theirs = null;
        Summary? theirSummary = null;
        if (python != null)
        {
            python.WaitForExit();
            if (python.ExitCode != 0)
                Console.WriteLine(pythonErr.ToString().Contains("No module named")
                    ? "reference skipped: python3-torchvision is not installed (apt-get install python3-torchvision)"
                    : $"reference failed (exit {python.ExitCode}): {pythonErr.ToString().Trim()}");
            else
            {
                theirs = ParseSamples(pythonOut.ToString());
                theirSummary = Summarize(theirs, warm);
            }
            python.Dispose();
        }

        Directory.CreateDirectory(outDir);
        string csv = Path.Combine(outDir, "train_memory.csv");
        string png = Path.Combine(outDir, "train_memory.png");
        WriteCsv(csv, ours, theirs);
        WritePlot(png, ours, theirs, warm, oursSummary);

        Console.WriteLine();
        Console.WriteLine($"| | iterations | RSS at {warm} (MB) | peak at {warm} (MB) | RSS at end (MB) | peak at end (MB) | drift | s / iteration |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine(Row("RetinaSharp", oursSummary));
        if (theirSummary != null) Console.WriteLine(Row("torchvision 0.14", theirSummary));
        Console.WriteLine($"series: {csv}, plot: {png}");

        string pass = oursSummary.DriftPercent <= GoalDriftPercent ? "yes" : "no";
        string extra = $"ours_drift_pct={Measure.F(oursSummary.DriftPercent)} ours_peak_warm_mb={Measure.F(oursSummary.PeakWarmMb)} ours_peak_end_mb={Measure.F(oursSummary.PeakEndMb)} " +
                       $"ours_step_s={Measure.F(oursSummary.StepSeconds)} goal_drift_pct={Measure.F(GoalDriftPercent)} pass={pass} iterations={oursSummary.End} warm={warm}";
        if (theirSummary == null)
        {
            Console.WriteLine($"RESULT train-memory time_ratio=NA mem_ratio=NA {extra} reference=none");
            return;
        }
        Console.WriteLine($"RESULT train-memory time_ratio={Measure.F(oursSummary.StepSeconds / theirSummary.StepSeconds)} mem_ratio={Measure.F(oursSummary.PeakEndMb / theirSummary.PeakEndMb)} {extra} " +
                          $"ref_drift_pct={Measure.F(theirSummary.DriftPercent)} ref_iterations={theirSummary.End} ref_peak_warm_mb={Measure.F(theirSummary.PeakWarmMb)} ref_peak_end_mb={Measure.F(theirSummary.PeakEndMb)} ref_step_s={Measure.F(theirSummary.StepSeconds)}");
    }

    /// <summary>
    /// The `retina demo` training run (TrainingRecipe.Demo, as the CLI's demo uses it; seed 0, horizontal flip,
    /// no validation) through <see cref="Trainer"/> with a progress callback that samples the memory counters.
    /// The last row is taken after <see cref="Trainer.Run"/> returned (final checkpoint, log and loss curve written).
    /// </summary>
    private static List<Sample> TrainOurs(DetectionDataset train, int batch, int size, int iterations, int every, long warm, long? trimEvery, double? maxMinutes)
    {
        string runDir = Path.Combine(Path.GetTempPath(), $"retinasharp-bench-train-memory-run-{Environment.ProcessId}");
        if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
        var recipe = TrainingRecipe.Demo(size) with { BatchSize = batch };
        var modelOptions = recipe.ModelOptions(train.Categories.Count);
        var options = recipe.TrainingFor(iterations) with
        {
            Seed = 0, CheckpointEvery = Math.Max(50, iterations / 8), LogEvery = Math.Max(1, iterations / 200),
        };
        manual_seed(0);
        using var model = new RetinaNet(modelOptions);
        using var loader = new DetectionDataLoader(train, batch, shuffle: true, seed: 0, augmentation: recipe.Augmentation, dropLast: true);
        var trainer = new Trainer(new RetinaNetTrainable(model), new DataLoaderTrainingData(loader), options, runDir);
        if (trimEvery is long t) trainer.TrimNativeHeapEvery = t == 0 ? null : t;
        Console.WriteLine($"  Trainer.TrimNativeHeapEvery = {trainer.TrimNativeHeapEvery?.ToString(CultureInfo.InvariantCulture) ?? "null (never)"}");
        var samples = new List<Sample>();
        var clock = new Stopwatch();
        Sample Take(long iteration) => new(iteration, clock.Elapsed.TotalSeconds, Measure.CurrentRssBytes() / MB, Measure.PeakRssBytes() / MB, GC.GetTotalMemory(false) / MB);
        Sample? lastStep = null;
        trainer.Progress = p =>
        {
            lastStep = Take(p.Iteration);
            if (p.Iteration % every == 0 || p.Iteration == 1 || p.Iteration == warm || p.Iteration == p.TotalIterations)
            {
                samples.Add(lastStep);
                if (p.Iteration % (every * 10) == 0 || p.Iteration == warm)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  ours {p.Iteration,5}/{p.TotalIterations}: RSS {samples[^1].RssMb:0} MB, peak {samples[^1].PeakMb:0} MB, managed {samples[^1].ManagedMb:0} MB, loss {p.Loss:0.000}, {clock.Elapsed.TotalSeconds:0} s"));
            }
        };
        GC.Collect();
        GC.WaitForPendingFinalizers();
        bool reset = Measure.ResetPeakRss();
        if (!reset) Console.WriteLine("  (the kernel refused to reset the peak-RSS counter: peaks include the set-up)");
        using var deadline = new CancellationTokenSource();
        if (maxMinutes is double m) deadline.CancelAfter(TimeSpan.FromMinutes(m));
        clock.Start();
        var result = trainer.Run(cancellation: deadline.Token);
        bool stopped = result.Status == TrainingStatus.Interrupted && deadline.IsCancellationRequested;
        if (result.Status != TrainingStatus.Completed && !stopped) throw new InvalidOperationException($"training did not complete: {result.Message}");
        if (stopped) Console.WriteLine($"  ours stopped by --max-minutes after {result.Iteration} of {iterations} iterations");
        // The step sample of the last iteration (taken when it is not on the sampling grid), then the row after Run returned.
        if (samples[^1].Iteration != result.Iteration) samples.Add(lastStep!);
        samples.Add(Take(result.Iteration) with { Seconds = samples[^1].Seconds });
        try { Directory.Delete(runDir, recursive: true); } catch (IOException) { }
        return samples;
    }

    /// <summary>Warm-up point against the last row (our row after the run, or the reference's last step).</summary>
    /// <exception cref="InvalidOperationException">The run stopped before the warm-up point.</exception>
    private static Summary Summarize(List<Sample> s, long warm)
    {
        var w = s.FirstOrDefault(x => x.Iteration == warm)
            ?? throw new InvalidOperationException($"the run stopped after {s[^1].Iteration} iterations, before the warm-up point {warm}; give a smaller --warm or more --max-minutes");
        var end = s[^1];
        double stepSeconds = (end.Seconds - w.Seconds) / Math.Max(1, end.Iteration - warm);
        return new Summary(warm, end.Iteration, w.RssMb, w.PeakMb, end.RssMb, end.PeakMb, stepSeconds);
    }

    private static string Row(string who, Summary s) => string.Create(CultureInfo.InvariantCulture,
        $"| {who} | {s.End} | {s.RssWarmMb:0} | {s.PeakWarmMb:0} | {s.RssEndMb:0} | {s.PeakEndMb:0} | {s.DriftPercent:+0.0;-0.0}% | {s.StepSeconds:0.00} |");

    private static Process StartPython(string script, string args, StringBuilder stdout, StringBuilder stderr)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args.Split(' ')) psi.ArgumentList.Add(a);
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (stdout) stdout.AppendLine(e.Data);
            // Echo the reference's progress (every tenth sample) so a long run can be followed and read even if stopped.
            if (e.Data.StartsWith("SAMPLE ", StringComparison.Ordinal) && Measure.ParseKeyValues(e.Data).TryGetValue("iteration", out double it) && (long)it % 100 == 0)
                Console.WriteLine("  torchvision " + e.Data["SAMPLE ".Length..]);
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        Console.WriteLine($"  reference started: /usr/bin/python3 {Path.GetFileName(script)} {args} (pid {p.Id})");
        return p;
    }

    private static List<Sample> ParseSamples(string output) =>
        [.. output.Split('\n').Where(l => l.StartsWith("SAMPLE ", StringComparison.Ordinal)).Select(Measure.ParseKeyValues)
            .Select(kv => new Sample((long)kv["iteration"], kv["elapsed_s"], kv["rss_mb"], kv["peak_mb"], double.NaN))];

    private static void WriteCsv(string path, List<Sample> ours, List<Sample>? theirs)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("iteration,phase,ours_elapsed_s,ours_rss_mb,ours_peak_mb,ours_managed_mb,ref_elapsed_s,ref_rss_mb,ref_peak_mb\n");
        var byIteration = theirs?.GroupBy(t => t.Iteration).ToDictionary(g => g.Key, g => g.Last()) ?? [];
        for (int i = 0; i < ours.Count; i++)
        {
            var o = ours[i];
            bool afterRun = i == ours.Count - 1; // the row after Trainer.Run returned has no reference counterpart
            var t = !afterRun && byIteration.TryGetValue(o.Iteration, out var x) ? x : null;
            sb.Append(string.Create(inv, $"{o.Iteration},{(afterRun ? "after_run" : "step")},{o.Seconds:0.###},{o.RssMb:0.0},{o.PeakMb:0.0},{o.ManagedMb:0.0},"));
            sb.Append(t == null ? ",,\n" : string.Create(inv, $"{t.Seconds:0.###},{t.RssMb:0.0},{t.PeakMb:0.0}\n"));
        }
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static void WritePlot(string path, List<Sample> ours, List<Sample>? theirs, long warm, Summary oursSummary)
    {
        var plot = new ScottPlot.Plot();
        void Line(List<Sample> s, Func<Sample, double> y, string label, ScottPlot.Color colour, bool dashed)
        {
            var line = plot.Add.Scatter(s.Select(x => (double)x.Iteration).ToArray(), s.Select(y).ToArray());
            line.LegendText = label;
            line.Color = colour;
            line.MarkerSize = 0;
            line.LineWidth = 2;
            if (dashed) line.LinePattern = ScottPlot.LinePattern.Dashed;
        }
        var steps = ours.Take(ours.Count - 1).ToList();
        Line(steps, s => s.RssMb, "RetinaSharp RSS", ScottPlot.Colors.Blue, false);
        Line(steps, s => s.PeakMb, "RetinaSharp peak RSS", ScottPlot.Colors.Blue, true);
        if (theirs != null)
        {
            Line(theirs, s => s.RssMb, "torchvision RSS", ScottPlot.Colors.OrangeRed, false);
            Line(theirs, s => s.PeakMb, "torchvision peak RSS", ScottPlot.Colors.OrangeRed, true);
        }
        var v = plot.Add.VerticalLine(warm);
        v.Color = ScottPlot.Colors.Gray;
        v.LinePattern = ScottPlot.LinePattern.Dotted;
        var goal = plot.Add.HorizontalLine(oursSummary.PeakWarmMb * (1 + GoalDriftPercent / 100));
        goal.Color = ScottPlot.Colors.Green;
        goal.LinePattern = ScottPlot.LinePattern.Dotted;
        goal.LegendText = $"goal: RetinaSharp peak at {warm} + {GoalDriftPercent:0}%";
        plot.Title("Resident memory while training (retina demo workload)");
        plot.XLabel("iteration");
        plot.YLabel("MiB");
        plot.Axes.SetLimitsY(0, Math.Max(ours.Max(s => s.PeakMb), theirs?.Max(s => s.PeakMb) ?? 0) * 1.1);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(1000, 520, ScottPlot.ImageFormat.Png));
    }

    private static string? StringArg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>The repository's docs/ folder (searched upwards from the working directory), else the working directory.</summary>
    private static string DocsFolder()
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "docs", "benchmarks.md"))) return Path.Combine(d.FullName, "docs");
        return Directory.GetCurrentDirectory();
    }
}
