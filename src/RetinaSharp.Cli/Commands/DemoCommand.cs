// `retina demo`: the README's main command. Builds Fashion-MNIST detection scenes (real 28x28 photos of
// clothing composed into scenes), trains RetinaNet from scratch (ResNet-18-FPN at a small input size, the
// paper's focal loss and schedule shape with a higher LR for training from scratch), evaluates COCO AP on the
// validation split with the pycocotools-exact evaluator, and writes a report folder a person can read.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Evaluation;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Reporting;
using RetinaSharp.Recipes;
using RetinaSharp.Visualization;
using RetinaSharp.Training;
using Spectre.Console;
using TorchSharp;

namespace RetinaSharp.Cli.Commands;

/// <summary>The demo's configuration: the data, the training budget and the user's overrides of <see cref="TrainingRecipe.Demo"/>.</summary>
internal sealed record DemoSettings(
    bool Quick, string Out, string ScenesFolder, int TrainImages, int ValImages, int Size, int Seed,
    long? Iterations, double TrainingMinutes, int BatchSize, double LearningRate, double DrawThreshold, bool Resume, bool FromScratch = false)
{
    /// <summary>The default demo (at most 15 minutes on a quiet 2-core CPU) or the quick one (well under 3 minutes).</summary>
    public static DemoSettings Defaults(bool quick, string outDir)
    {
        int size = quick ? 64 : 128;
        var recipe = TrainingRecipe.Demo(size, quick);
        return new DemoSettings(quick, outDir, Path.Combine(outDir, "scenes"), TrainImages: quick ? 64 : 2000, ValImages: quick ? 16 : 300, Size: size, Seed: 0,
            Iterations: null, TrainingMinutes: quick ? 0.4 : 12, BatchSize: recipe.BatchSize, LearningRate: recipe.Training.BaseLearningRate!.Value,
            DrawThreshold: quick ? 0.2 : 0.3, Resume: false);
    }

    /// <summary>The demo's recipe (<see cref="TrainingRecipe.Demo"/> at the scene size) with the batch size and learning rate given.</summary>
    public TrainingRecipe Recipe
    {
        get
        {
            var r = TrainingRecipe.Demo(Size, Quick, pretrained: !FromScratch);
            return r with { BatchSize = BatchSize, Training = r.Training with { BaseLearningRate = LearningRate } };
        }
    }

    /// <summary>The RetinaNet configuration of <see cref="Recipe"/> for <paramref name="numClasses"/> classes.</summary>
    public RetinaNetOptions ModelOptions(int numClasses) => Recipe.ModelOptions(numClasses);

    /// <summary>The trainer's configuration of <see cref="Recipe"/> for a run of <paramref name="iterations"/>, with the demo's
    /// seed, checkpoint interval (8 per run, at least 50 iterations apart; only at the end of a quick run) and log interval (200 rows per run).</summary>
    public TrainingOptions TrainingOptions(long iterations) => Recipe.TrainingFor(iterations) with
    {
        Seed = Seed, CheckpointEvery = Quick ? iterations : Math.Max(50, iterations / 8), LogEvery = Math.Max(1, iterations / 200),
    };
}

/// <summary>`retina demo`.</summary>
public static class DemoCommand
{
    /// <summary>The report files the demo writes into OUT/report.</summary>
    public static IReadOnlyList<string> ReportFiles { get; } =
        [CocoEvaluation.MetricsFileName, "loss_curve.png", "pr_curves.png", "detections_grid.png", "README.md", "detections_val.json", EvaluationReport.FileName];

    /// <summary>How the fields of a demo checkpoint show when they differ on --resume (option names as typed).</summary>
    internal static IReadOnlyDictionary<string, ResumeField> ResumeFields { get; } = BuildResumeFields();

    private static Dictionary<string, ResumeField> BuildResumeFields()
    {
        var f = ResumeCheck.TrainingOptionFields();
        f["config.settings.Quick"] = new("--quick");
        f["config.settings.Out"] = new("--out", ChangesResult: false);
        f["config.settings.ScenesFolder"] = new("--scenes", ChangesResult: false); // the scenes are a function of their counts, size and seed
        f["config.settings.TrainImages"] = new("--train");
        f["config.settings.ValImages"] = new("--val");
        f["config.settings.Size"] = new("--size");
        f["config.settings.Seed"] = new("--seed");
        f["config.settings.Iterations"] = new("--iterations");
        f["config.settings.TrainingMinutes"] = new("--minutes", ChangesResult: false); // only chooses the run length, which a resume takes from the checkpoint
        f["config.settings.BatchSize"] = new("--batch-size");
        f["config.settings.LearningRate"] = new("--lr");
        f["options.WarmupIterations"] = new("warm-up iterations (set by --quick)");
        f["options.GradientClipNorm"] = new("gradient clipping (set by --quick)");
        f["options.BaseLearningRate"] = new("--lr");
        f["config.settings.DrawThreshold"] = new("score threshold of the drawn detections", ChangesResult: false);
        f["config.model.MinSize"] = new("--size");
        f["config.model.MaxSize"] = new("--size");
        f["config.model.FpnChannels"] = new("FPN width (set by --quick)");
        return f;
    }

    /// <summary>Builds the `demo` command.</summary>
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "A tiny budget (well under 3 minutes): checks that everything works; the numbers are poor" };
        var outDir = new Option<string>("--out") { Description = "Output folder (scenes/, train/, report/)", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var train = new Option<int?>("--train") { Description = "Training scenes [default: 2000; with --quick: 64]" };
        var val = new Option<int?>("--val") { Description = "Validation scenes [default: 300; with --quick: 16]" };
        var size = new Option<int?>("--size") { Description = $"Scene side in pixels, at least {FashionScenesOptions.MinSize} [default: 128; with --quick: 64]" };
        var iterations = new Option<long?>("--iterations") { Description = "Training iterations [default: as many as fit in --minutes, measured on this machine]" };
        var minutes = new Option<double?>("--minutes") { Description = "Training time budget in minutes, used to choose the iterations when --iterations is not given [default: 12; with --quick: 0.4]" };
        var batch = new Option<int?>("--batch-size") { Description = "Images per iteration [default: 8; with --quick: 4]" };
        var lr = new Option<double?>("--lr") { Description = "Base learning rate of AdamW [default: 5e-4]" };
        var seed = new Option<int>("--seed") { Description = "Seed of the scenes, the initialisation and the data order", DefaultValueFactory = _ => 0 };
        var scenes = new Option<string?>("--scenes") { Description = "Where the scenes are built [default: OUT/scenes]" };
        var resume = new Option<bool>("--resume") { Description = "Continue an interrupted demo in --out" };
        var scratch = new Option<bool>("--from-scratch") { Description = "Start the backbone from random weights (trainable batch norm) instead of ML.NET's ImageNet ResNet-18, for comparison" };
        var command = new Command("demo", "Train, evaluate and show RetinaNet on Fashion-MNIST detection scenes (the main demo).");
        foreach (var o in new Option[] { quick, outDir, train, val, size, iterations, minutes, batch, lr, seed, scenes, resume, scratch }) command.Options.Add(o);
        command.SetAction(p =>
        {
            string o = Path.GetFullPath(p.GetValue(outDir)!);
            var d = DemoSettings.Defaults(p.GetValue(quick), o);
            d = d with
            {
                TrainImages = p.GetValue(train) ?? d.TrainImages, ValImages = p.GetValue(val) ?? d.ValImages, Size = p.GetValue(size) ?? d.Size,
                Iterations = p.GetValue(iterations) ?? d.Iterations, TrainingMinutes = p.GetValue(minutes) ?? d.TrainingMinutes, BatchSize = p.GetValue(batch) ?? d.BatchSize, LearningRate = p.GetValue(lr) ?? d.LearningRate,
                Seed = p.GetValue(seed), ScenesFolder = p.GetValue(scenes) is string s ? Path.GetFullPath(s) : d.ScenesFolder, Resume = p.GetValue(resume),
                FromScratch = p.GetValue(scratch),
            };
            return Run(d);
        });
        return command;
    }

    /// <summary>Checks the settings before any work: sizes and counts, and that the output folder is a writable folder.</summary>
    /// <exception cref="ArgumentException">A value is out of range, or the output folder is a file or cannot be created or written; the message names the option.</exception>
    internal static void Validate(DemoSettings d)
    {
        if (d.Size < FashionScenesOptions.MinSize)
            throw new ArgumentException($"--size {d.Size}: scenes must be at least {FashionScenesOptions.MinSize} pixels (two 28-pixel glyphs side by side).");
        if (d.Size > 1024) throw new ArgumentException($"--size {d.Size}: at most 1024 pixels for the demo.");
        if (d.TrainImages <= 0) throw new ArgumentException($"--train {d.TrainImages}: the number of training scenes must be at least 1.");
        if (d.ValImages <= 0) throw new ArgumentException($"--val {d.ValImages}: the number of validation scenes must be at least 1.");
        if (d.Iterations <= 0) throw new ArgumentException($"--iterations {d.Iterations}: must be at least 1.");
        if (!(d.TrainingMinutes > 0)) throw new ArgumentException($"--minutes {d.TrainingMinutes}: must be positive.");
        if (d.BatchSize <= 0) throw new ArgumentException($"--batch-size {d.BatchSize}: must be at least 1.");
        if (!(d.LearningRate > 0)) throw new ArgumentException($"--lr {d.LearningRate}: must be positive.");
        if (d.Resume) TrainCommand.RequireCheckpointForResume(Path.Combine(d.Out, "train"), resume: true);
        CliApp.EnsureOutFolder(d.Out);
    }

    /// <summary>Runs the whole demo; returns the exit code.</summary>
    internal static int Run(DemoSettings d)
    {
        Validate(d);
        PrepareRunFolder(Path.Combine(d.Out, "train"), d);
        var total = Stopwatch.StartNew();
        var times = new List<(string Phase, TimeSpan Time)>();

        // 1. Data.
        var sw = Stopwatch.StartNew();
        var scenesOptions = new FashionScenesOptions(d.ScenesFolder, d.TrainImages, d.ValImages, d.Size, d.Seed);
        if (FashionScenes.IsBuilt(scenesOptions))
            AnsiConsole.MarkupLineInterpolated($"Using the scenes in [bold]{d.ScenesFolder}[/].");
        else
        {
            AnsiConsole.MarkupLineInterpolated($"Building {d.TrainImages} training and {d.ValImages} validation scenes of {d.Size}x{d.Size} px from Fashion-MNIST in [bold]{d.ScenesFolder}[/]...");
            FashionScenes.Build(scenesOptions);
        }
        var train = DetectionDataset.Load(Path.Combine(d.ScenesFolder, "instances_train.json"));
        var val = DetectionDataset.Load(Path.Combine(d.ScenesFolder, "instances_val.json"));
        times.Add(("scenes", sw.Elapsed));

        // 2. Training.
        sw.Restart();
        string runDir = Path.Combine(d.Out, "train");
        var modelOptions = d.ModelOptions(train.Categories.Count);
        long iterations = d.Iterations ?? PreviousIterations(runDir, d.Resume) ?? Calibrate(d, modelOptions, train);
        d = d with { Iterations = iterations };
        using var stop = TrainCommand.NewStopSignal();
        var result = TrainCommand.TrainAndReport(train, null, modelOptions, d.Recipe.Augmentation, d.BatchSize, d.Seed,
            d.TrainingOptions(iterations), runDir, JsonSerializer.Serialize(d with { Resume = false }), d.Resume, init: null,
            resumeHint: $"retina demo{(d.Quick ? " --quick" : "")}{(d.FromScratch ? " --from-scratch" : "")} --out \"{d.Out}\" --resume", ResumeFields, out var model, stop: stop,
            backboneWeights: d.Recipe.BackboneWeights);
        times.Add(("training", sw.Elapsed));
        if (result.Status == TrainingStatus.NativeFailure)
            WriteStoppedReadme(Path.Combine(d.Out, "report"), result, $"retina demo{(d.Quick ? " --quick" : "")} --out \"{d.Out}\" --resume");
        if (result.Status != TrainingStatus.Completed) return stop.ExitCode ?? CliApp.Failed;

        // 3. Evaluation.
        sw.Restart();
        string report = Path.Combine(d.Out, "report");
        Directory.CreateDirectory(report);
        IReadOnlyList<CocoResult> detections = null!;
        EvaluationReport errorReport = null!;
        var valCoco = val.ToCoco();
        AnsiConsole.Status().Start($"Evaluating on {val.Images.Count} validation scenes...", _ =>
        {
            detections = DetectionValidation.Detect(model, val, batchSize: 8);
            errorReport = EvaluationReport.Evaluate(valCoco, detections); // the COCO numbers and the matching behind report.html
        });
        var evaluation = errorReport.Evaluation;
        CocoJson.WriteResults(Path.Combine(report, "detections_val.json"), detections);
        // Generalisation: new scenes built the same way from glyphs the model never saw in training (the validation
        // glyph pool), which no setting of the demo was chosen on.
        string testJson = Path.Combine(d.ScenesFolder, "instances_test.json");
        if (!File.Exists(testJson)) FashionScenes.BuildTestSplit(scenesOptions, d.ValImages);
        var test = DetectionDataset.Load(testJson);
        CocoEvaluation testEvaluation = null!;
        AnsiConsole.Status().Start($"Evaluating on {test.Images.Count} test scenes (glyphs never seen in training)...", _ =>
            testEvaluation = DetectionValidation.Evaluate(model, test, batchSize: 8).Evaluation);
        times.Add(("evaluation", sw.Elapsed));

        // 4. Report.
        sw.Restart();
        File.Copy(Path.Combine(runDir, "loss_curve.png"), Path.Combine(report, "loss_curve.png"), overwrite: true);
        PrCurvePlot.Save(evaluation, Path.Combine(report, "pr_curves.png"));
        WriteGrid(Path.Combine(report, "detections_grid.png"), val, detections, d.DrawThreshold, d.Quick ? 8 : 16);
        WriteMetrics(Path.Combine(report, CocoEvaluation.MetricsFileName), evaluation, d, result, total.Elapsed, testEvaluation);
        AnsiConsole.Status().Start("Writing report.html (every validation scene with its errors)...", _ =>
            errorReport.Write(Path.Combine(report, EvaluationReport.FileName), anchors: AnchorCoverage.Compute(model, valCoco),
                options: new EvaluationReportOptions { Title = $"RetinaNet on Fashion-MNIST scenes{(d.Quick ? " (quick run)" : "")}", Source = $"{val.Images.Count} validation scenes, {Plural.Of(result.TotalIterations, "iteration")}" }));
        times.Add(("report", sw.Elapsed));
        WriteReadme(Path.Combine(report, "README.md"), evaluation, d, modelOptions, d.TrainingOptions(iterations), result, times, total.Elapsed, train, val);

        AnsiConsole.WriteLine();
        AnsiConsole.Write(evaluation.Summary());
        AnsiConsole.MarkupLineInterpolated($"[bold green]AP {evaluation.Stats.Ap:0.000}, AP50 {evaluation.Stats.Ap50:0.000}[/] on {val.Images.Count} validation scenes after {Plural.Of(result.TotalIterations, "iteration")} ({total.Elapsed:mm\\:ss}).");
        AnsiConsole.MarkupLineInterpolated($"Generalisation: AP {testEvaluation.Stats.Ap:0.000}, AP50 {testEvaluation.Stats.Ap50:0.000} on {test.Images.Count} test scenes of unseen glyphs ({testEvaluation.Stats.Ap - evaluation.Stats.Ap:+0.000;-0.000} AP against validation).");
        AnsiConsole.MarkupLineInterpolated($"Report: [bold]{report}[/] (report.html: open it in a browser; README.md, metrics.json, loss_curve.png, pr_curves.png, detections_grid.png)");
        return CliApp.Ok;
    }

    /// <summary>
    /// The report of a demo whose training libtorch stopped (<see cref="TrainingStatus.NativeFailure"/>): OUT/report/README.md
    /// says what failed, which checkpoint holds the training so far and the command that continues it.
    /// </summary>
    internal static void WriteStoppedReadme(string report, TrainingResult result, string resumeCommand)
    {
        Directory.CreateDirectory(report);
        var sb = new StringBuilder();
        sb.AppendLine("# RetinaSharp demo: training stopped");
        sb.AppendLine();
        sb.AppendLine(result.Message);
        sb.AppendLine();
        if (TrainCommand.CanResume(result))
            sb.AppendLine($"Nothing is lost: continue the training from that checkpoint with `{resumeCommand}`; the evaluation and the rest of this report follow when it finishes.");
        else
            sb.AppendLine("No checkpoint was written yet: run the demo again.");
        AtomicFile.WriteAllText(Path.Combine(report, "README.md"), sb.ToString());
        AnsiConsole.MarkupLineInterpolated($"Report: [bold]{Path.Combine(report, "README.md")}[/]");
    }

    /// <summary>
    /// Before any work: a finished earlier demo (OUT/train and OUT/report) is moved to OUT/previous/ (running the README's
    /// command twice just works and the last finished run is still there to compare; an older OUT/previous is removed);
    /// an interrupted one is kept and the user is told how to continue it, so no training is lost.
    /// </summary>
    internal static void PrepareRunFolder(string runDir, DemoSettings d)
    {
        if (d.Resume)
        {
            TrainCommand.RequireCheckpointForResume(runDir, resume: true);
            return;
        }
        if (!File.Exists(Path.Combine(runDir, TrainingCheckpoint.FileName))) return;
        if (File.Exists(Path.Combine(runDir, "model.rsnet")))
        {
            // OUT/train and OUT/report of the finished run go to OUT/previous/ (replacing an older one); the scenes stay.
            string previous = Path.Combine(d.Out, "previous"), report = Path.Combine(d.Out, "report");
            if (Directory.Exists(previous)) Directory.Delete(previous, recursive: true);
            Directory.CreateDirectory(previous);
            Directory.Move(runDir, Path.Combine(previous, Path.GetFileName(Path.TrimEndingDirectorySeparator(runDir))));
            if (Directory.Exists(report)) Directory.Move(report, Path.Combine(previous, "report"));
            AnsiConsole.MarkupLineInterpolated($"The finished demo run is kept in [bold]{previous}[/] (train/, report/); starting a new one.");
            return;
        }
        throw new ArgumentException(
            $"--out '{d.Out}' holds an interrupted demo run: continue it with `retina demo{(d.Quick ? " --quick" : "")} --out \"{d.Out}\" --resume`, or give another --out.");
    }

    /// <summary>On resume, the run length stored in the checkpoint (so a resumed demo continues the same schedule).</summary>
    private static long? PreviousIterations(string runDir, bool resume)
    {
        string path = Path.Combine(runDir, TrainingCheckpoint.FileName);
        if (!resume || !File.Exists(path)) return null;
        using var state = TrainingCheckpoint.Load(path);
        using var doc = JsonDocument.Parse(state.OptionsJson);
        return doc.RootElement.GetProperty("Iterations").GetInt64();
    }

    /// <summary>
    /// Chooses the number of iterations that fits <see cref="DemoSettings.TrainingMinutes"/> on this machine: times twelve
    /// training steps of a throw-away model on real batches (the first three are a warm-up; <see cref="StepTiming.SecondsPerStep"/>) and divides the budget by the step time.
    /// </summary>
    private static long Calibrate(DemoSettings d, RetinaNetOptions modelOptions, DetectionDataset train)
    {
        double perStep = 1;
        AnsiConsole.Status().Start("Measuring the speed of this machine...", _ => perStep = StepTiming.SecondsPerStep(modelOptions, train, d.BatchSize, d.Seed));
        long fit = (long)(d.TrainingMinutes * 60 / Math.Max(1e-3, perStep));
        long iterations = d.Quick ? Math.Clamp(fit, 4, 30) : Math.Clamp(fit, 100, 5000);
        if (iterations == fit)
            AnsiConsole.MarkupLineInterpolated($"One step takes {perStep:0.00} s here: {Plural.Of(iterations, "iteration")} fit in the {d.TrainingMinutes:0.#}-minute training budget.");
        else
            AnsiConsole.MarkupLineInterpolated($"One step takes {perStep:0.00} s here: {Plural.Of(fit, "iteration")} would fit in the {d.TrainingMinutes:0.#}-minute budget; training {iterations} instead (about {iterations * perStep / 60:0.#} minutes; give --iterations to choose).");
        return iterations;
    }

    private static void WriteGrid(string path, DetectionDataset val, IReadOnlyList<CocoResult> detections, double threshold, int count)
    {
        var byImage = detections.GroupBy(r => r.ImageId).ToDictionary(g => g.Key, g => g.ToList());
        var cells = new List<(RgbImage, IReadOnlyList<DrawnBox>)>();
        foreach (var image in val.Images.Take(count))
        {
            var rgb = ImageIO.Load(image.FilePath);
            var boxes = (byImage.TryGetValue(image.Id, out var list) ? list : [])
                .Where(r => r.Score >= threshold)
                .Select(r =>
                {
                    int k = val.Categories.ToIndex(r.CategoryId);
                    return new DrawnBox((float)r.X, (float)r.Y, (float)(r.X + r.Width), (float)(r.Y + r.Height), k,
                        $"{val.Categories.Name(k)} {r.Score.ToString("0.00", CultureInfo.InvariantCulture)}");
                }).ToList();
            cells.Add((rgb, boxes));
        }
        float scale = Math.Max(1, 256f / Math.Max(1, val.Images.Max(i => Math.Max(i.Width, i.Height))));
        DetectionDrawing.WriteGrid(path, cells, columns: 4, scale: scale);
    }

    /// <summary>The evaluation in the one metrics schema (<see cref="CocoEvaluation.ToJson"/>), with the demo's run under <c>run</c>.</summary>
    private static void WriteMetrics(string path, CocoEvaluation e, DemoSettings d, TrainingResult r, TimeSpan elapsed, CocoEvaluation test) =>
        e.WriteJson(path, new JsonObject
        {
            ["command"] = "demo",
            ["backbone_weights"] = d.FromScratch ? "random" : "imagenet",
            ["skipped_steps"] = r.Log.Steps.Count(s => s.Skipped),
            ["test_unseen_glyphs"] = new JsonObject
            {
                ["images"] = test.ImageIds.Count, ["ap"] = test.Stats.Ap, ["ap50"] = test.Stats.Ap50, ["ap75"] = test.Stats.Ap75,
                ["ap_minus_val_ap"] = test.Stats.Ap - e.Stats.Ap,
            },
            ["iterations"] = r.TotalIterations,
            ["training_minutes_budget"] = d.TrainingMinutes,
            ["batch_size"] = d.BatchSize,
            ["scene_size"] = d.Size,
            ["quick"] = d.Quick,
            ["wall_time_seconds"] = Math.Round(elapsed.TotalSeconds, 1),
            ["onednn"] = TorchRuntime.OneDnn.Mode.ToString(),
        });

    private static void WriteReadme(string path, CocoEvaluation e, DemoSettings d, RetinaNetOptions m, TrainingOptions trainingOptions, TrainingResult r,
        List<(string Phase, TimeSpan Time)> times, TimeSpan elapsed, DetectionDataset train, DetectionDataset val)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"# RetinaNet on Fashion-MNIST scenes{(d.Quick ? " (quick run)" : "")}");
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"**AP {e.Stats.Ap:0.000}**, AP50 {e.Stats.Ap50:0.000}, AP75 {e.Stats.Ap75:0.000} on {e.ImageIds.Count} validation scenes; wall time {elapsed:mm\\:ss} on {Environment.ProcessorCount} CPU core(s), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC."));
        if (d.Quick) sb.AppendLine().AppendLine("A quick run checks that every stage works; its budget is far too small for good numbers. Run `retina demo` for the real one.");
        sb.AppendLine();
        sb.AppendLine("Command: `retina demo" + (d.Quick ? " --quick" : "") + $" --out {d.Out}`");
        sb.AppendLine();
        sb.AppendLine("## Configuration");
        sb.AppendLine();
        sb.AppendLine("| setting | value |");
        sb.AppendLine("| --- | --- |");
        sb.AppendLine($"| data | {train.Images.Count} training / {val.Images.Count} validation scenes of {d.Size}x{d.Size} px, {train.BoxCount} / {val.BoxCount} objects, 10 classes, seed {d.Seed} (`{d.ScenesFolder}`) |");
        sb.AppendLine($"| model | RetinaNet, {m.Backbone}-FPN {(d.FromScratch ? "from scratch (no pretrained weights" : "from ImageNet weights (ML.NET's ResNet-18")}, {m.BackboneNorm} backbone norm), FPN/head width {m.FpnChannels}, GroupNorm heads, input {m.MinSize} px, anchors 16-406 px |");
        sb.AppendLine(string.Create(inv, $"| loss | focal loss alpha {m.Alpha} gamma {m.Gamma}, {m.BoxLoss} box loss |"));
        sb.AppendLine(string.Create(inv, $"| training | {r.TotalIterations} iterations x {d.BatchSize} images, AdamW (weight decay 0.05), LR {d.LearningRate} with {trainingOptions.WarmupIterations}-iteration warm-up, {(trainingOptions.Decay == RetinaSharp.Training.LearningRateDecay.Cosine ? "cosine decay to 0" : "x0.1 at 2/3 and 8/9")}, gradient norm clipped at {trainingOptions.GradientClipNorm}, horizontal flip |"));
        sb.AppendLine($"| skipped steps | {r.Log.SkippedSteps} (non-finite loss or gradient; 0 on a healthy run) |");
        sb.AppendLine($"| libtorch | {TorchRuntime.Version}, oneDNN {TorchRuntime.OneDnn.Mode} ({TorchRuntime.OneDnn.Reason}) |");
        sb.AppendLine();
        sb.AppendLine("## Time");
        sb.AppendLine();
        sb.AppendLine("| phase | time |");
        sb.AppendLine("| --- | --- |");
        foreach (var (phase, t) in times) sb.AppendLine($"| {phase} | {t:mm\\:ss} |");
        sb.AppendLine($"| total | {elapsed:mm\\:ss} |");
        sb.AppendLine();
        sb.AppendLine("## COCO metrics (pycocotools-exact)");
        sb.AppendLine();
        sb.AppendLine("```");
        sb.Append(e.Summary());
        sb.AppendLine("```");
        sb.AppendLine();
        sb.AppendLine("| class | objects | AP | AP50 | AP75 |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: |");
        foreach (var c in e.PerCategory)
            sb.AppendLine(string.Create(inv, $"| {c.Name} | {c.GroundTruthCount} | {c.Ap:0.000} | {c.Ap50:0.000} | {c.Ap75:0.000} |"));
        sb.AppendLine();
        sb.AppendLine("## Pictures");
        sb.AppendLine();
        sb.AppendLine(string.Create(inv, $"Validation scenes with detections scoring at least {d.DrawThreshold}:"));
        sb.AppendLine();
        sb.AppendLine("![detections](detections_grid.png)");
        sb.AppendLine();
        sb.AppendLine("![loss curve](loss_curve.png)");
        sb.AppendLine();
        sb.AppendLine("![precision-recall curves](pr_curves.png)");
        sb.AppendLine();
        sb.AppendLine("Open `report.html` in a browser (one self-contained file): per-class AP/AR, the precision-recall curves, every validation scene with each detection marked true positive or its error kind (duplicate, wrong class, poor localisation, background) and each missed object, at the IoU and score thresholds you choose, the confusion between classes and the anchor coverage.");
        sb.AppendLine();
        sb.AppendLine("Files: `metrics.json` (the 12 COCO numbers and per-class AP), `detections_val.json` (COCO results), the training log `../train/log.csv` (one row per logged step; `loss_step` and the `*_step` terms are that step's losses, not the running mean of the console progress) the model `../train/model.rsnet` (for `retina detect --weights` and `retina eval --weights`; it keeps the class names) and the training checkpoint `../train/checkpoint.rstrain` (only for `--resume`).");
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
