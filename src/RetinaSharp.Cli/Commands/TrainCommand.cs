// `retina train`: trains RetinaNet on a COCO / VOC / CSV dataset with the paper's defaults (section 5:
// ResNet-50-FPN, SGD momentum 0.9, weight decay 1e-4, LR 0.01 per 16 images, warm-up, x0.1 at 2/3 and 8/9,
// flip augmentation), a progress bar, atomic checkpoints, exact --resume and Ctrl-C / SIGTERM that save and say how to resume.
using System.CommandLine;
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using RetinaSharp.Training;
using Spectre.Console;
using TorchSharp;

namespace RetinaSharp.Cli.Commands;

/// <summary>Everything `retina train` was asked to do; stored as the configuration of each checkpoint.</summary>
internal sealed record TrainSettings(
    string Data, string? Val, string Out, ResNetDepth? Backbone, int BatchSize, int MinSize, int MaxSize,
    int FpnChannels, bool HeadGroupNorm, int? TrainableLayers, string? Init, bool Flip, int[]? Scales, int Seed, bool Repair,
    string? BackboneWeights = null, BackboneNormKind? BackboneNorm = null);

/// <summary>`retina train`.</summary>
public static class TrainCommand
{
    /// <summary>Builds the `train` command.</summary>
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Training dataset: COCO instances .json, VOC folder or .csv", Required = true };
        var val = new Option<string?>("--val") { Description = "Validation dataset (COCO AP every --val-every iterations and at the end)" };
        var backbone = new Option<string?>("--backbone") { Description = "resnet18, resnet34, resnet50 or resnet101 [default: resnet50; with --backbone-weights: the weights' depth]" };
        var backboneWeights = new Option<string?>("--backbone-weights") { Description = "Start the backbone from pretrained weights: 'imagenet' (ML.NET's ImageNet ResNet-18, shipped with RetinaSharp) or a torchvision ResNet classification checkpoint (resnet50-0676ba61.pth, ...; fc.* ignored) [default: random weights]" };
        var backboneNorm = new Option<string?>("--backbone-norm") { Description = "frozen, batch or group [default: frozen with --backbone-weights (the checkpoint's statistics), batch from random weights]" };
        var outDir = new Option<string>("--out") { Description = "Run folder (checkpoint, log.csv with the loss of each logged step, loss_curve.png, model.rsnet)", Required = true };
        var iterations = new Option<long?>("--iterations") { Description = "Run length in iterations [default: 90000, the paper's, unless --epochs is given]" };
        var epochs = new Option<int?>("--epochs") { Description = "Run length in epochs (instead of --iterations)" };
        var batch = new Option<int>("--batch-size") { Description = "Images per iteration", DefaultValueFactory = _ => 16 };
        var lr = new Option<double?>("--lr") { Description = "Base learning rate [default: 0.01 x batch / 16]" };
        var optimizer = new Option<string>("--optimizer") { Description = "sgd or adamw", DefaultValueFactory = _ => "sgd" };
        var schedule = new Option<string>("--schedule") { Description = "step (x0.1 at 2/3 and 8/9) or cosine", DefaultValueFactory = _ => "step" };
        var warmup = new Option<long>("--warmup") { Description = "Linear warm-up iterations from lr/1000 (a fifth of the run at most unless given)", DefaultValueFactory = _ => 500 };
        var wd = new Option<double>("--weight-decay") { Description = "Weight decay", DefaultValueFactory = _ => 1e-4 };
        var clip = new Option<double?>("--clip-grad") { Description = "Clip the gradient L2 norm to this value [default: no clipping]" };
        var minSize = new Option<int>("--min-size") { Description = "Shorter image side after resize, pixels", DefaultValueFactory = _ => 800 };
        var maxSize = new Option<int>("--max-size") { Description = "Longer image side limit, pixels", DefaultValueFactory = _ => 1333 };
        var fpn = new Option<int>("--fpn-channels") { Description = "FPN and head width", DefaultValueFactory = _ => 256 };
        var gn = new Option<bool>("--head-groupnorm") { Description = "GroupNorm in the heads (torchvision v2)" };
        var trainable = new Option<int?>("--trainable-layers") { Description = "ResNet stages trained, counted from layer4, 0..5 [default: 3 with --backbone-weights (the paper), 5 from random weights]" };
        var init = new Option<string?>("--init") { Description = "Start from a model.rsnet or torchvision .pth (the classification layer is replaced when class counts differ)" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out exactly where it stopped (needs its checkpoint.rstrain; the run length cannot change)" };
        var seed = new Option<int>("--seed") { Description = "Seed of initialisation, data order and augmentation", DefaultValueFactory = _ => 0 };
        var noFlip = new Option<bool>("--no-flip") { Description = "Disable horizontal flip augmentation" };
        var scales = new Option<string?>("--scales") { Description = "Multi-scale training: comma-separated shorter sides, e.g. 640,672,704,736,768,800" };
        var ckptEvery = new Option<long>("--checkpoint-every") { Description = "Checkpoint interval in iterations", DefaultValueFactory = _ => 1000 };
        var logEvery = new Option<long>("--log-every") { Description = "Log interval in iterations", DefaultValueFactory = _ => 20 };
        var valEvery = new Option<long?>("--val-every") { Description = "Validation interval in iterations [default: only at the end]" };
        var device = CliApp.DeviceOption();
        var modelOnly = new Option<bool>("--model-only") { Description = $"When the run completes keep model.rsnet and delete {TrainingCheckpoint.FileName} (weights + optimiser state, about 3x the model): the run can then not be resumed or extended" };
        var repair = new Option<bool>("--repair") { Description = "Repair dataset problems (clip boxes, drop degenerate ones) instead of refusing" };

        var command = new Command("train", "Train RetinaNet on your own labelled images.");
        foreach (var o in new Option[] { data, val, backbone, outDir, iterations, epochs, batch, lr, optimizer, schedule, warmup, wd, clip, minSize, maxSize,
                     fpn, gn, trainable, init, resume, seed, noFlip, scales, ckptEvery, logEvery, valEvery, repair, device, modelOnly, backboneWeights, backboneNorm })
            command.Options.Add(o);
        command.SetAction(p =>
        {
            var dev = CliApp.ResolveDevice(p.GetValue(device));
            var settings = new TrainSettings(
                Path.GetFullPath(p.GetValue(data)!), p.GetValue(val) is string v ? Path.GetFullPath(v) : null, Path.GetFullPath(p.GetValue(outDir)!),
                p.GetValue(backbone) is string b ? ParseBackbone(b) : null, p.GetValue(batch), p.GetValue(minSize), p.GetValue(maxSize), p.GetValue(fpn), p.GetValue(gn),
                p.GetValue(trainable), p.GetValue(init) is string i ? Path.GetFullPath(i) : null, !p.GetValue(noFlip), ParseScales(p.GetValue(scales)),
                p.GetValue(seed), p.GetValue(repair),
                p.GetValue(backboneWeights) is string w ? (string.Equals(w, Pretrained.BackboneWeights.ImageNetName, StringComparison.OrdinalIgnoreCase) ? Pretrained.BackboneWeights.ImageNetName : Path.GetFullPath(w)) : null,
                p.GetValue(backboneNorm) is string bn ? ParseNorm(bn) : null);
            long? its = p.GetValue(iterations);
            int? eps = p.GetValue(epochs);
            var notices = new List<string>(); // printed once the options, --out and the data have been checked
            if (its is null && eps is null)
            {
                its = 90000;
                notices.Add("No --iterations or --epochs: training the paper's 90000 iterations (give --iterations N for a shorter run).");
            }
            long warmupIterations = p.GetValue(warmup);
            bool warmupGiven = p.GetResult(warmup) is { Implicit: false };
            if (!warmupGiven && its is long n && n > 0 && warmupIterations > n / 5)
            {
                // The paper's 500-iteration warm-up would swallow a short run: keep it to a fifth of the run unless asked.
                warmupIterations = Math.Max(1, n / 5);
                notices.Add($"Warm-up shortened to {Plural.Of(warmupIterations, "iteration")} (a fifth of the run; give --warmup to choose).");
            }
            var options = new TrainingOptions
            {
                Iterations = its, Epochs = eps, BaseLearningRate = p.GetValue(lr),
                Optimizer = p.GetValue(optimizer)!.ToLowerInvariant() switch
                {
                    "sgd" => OptimizerKind.Sgd, "adamw" => OptimizerKind.AdamW,
                    var o => throw new ArgumentException($"--optimizer: unknown optimizer '{o}' (sgd or adamw)"),
                },
                Decay = p.GetValue(schedule)!.ToLowerInvariant() switch
                {
                    "step" => LearningRateDecay.Step, "cosine" => LearningRateDecay.Cosine,
                    var s => throw new ArgumentException($"--schedule: unknown schedule '{s}' (step or cosine)"),
                },
                WarmupIterations = warmupIterations, WeightDecay = p.GetValue(wd), GradientClipNorm = p.GetValue(clip),
                CheckpointEvery = p.GetValue(ckptEvery), LogEvery = p.GetValue(logEvery), ValidateEvery = p.GetValue(valEvery), Seed = settings.Seed,
            };
            return Run(settings, options, p.GetValue(resume), notices, dev, p.GetValue(modelOnly));
        });
        return command;
    }

    private static ResNetDepth ParseBackbone(string s) => s.ToLowerInvariant() switch
    {
        "resnet18" => ResNetDepth.ResNet18,
        "resnet34" => ResNetDepth.ResNet34,
        "resnet50" => ResNetDepth.ResNet50,
        "resnet101" => ResNetDepth.ResNet101,
        _ => throw new ArgumentException($"--backbone: unknown backbone '{s}' (resnet18, resnet34, resnet50 or resnet101)"),
    };

    private static BackboneNormKind ParseNorm(string s) => s.ToLowerInvariant() switch
    {
        "frozen" => BackboneNormKind.Frozen,
        "batch" => BackboneNormKind.BatchNorm,
        "group" => BackboneNormKind.GroupNorm,
        _ => throw new ArgumentException($"--backbone-norm: unknown normalisation '{s}' (frozen, batch or group)"),
    };

    private static int[]? ParseScales(string? s)
    {
        if (string.IsNullOrWhiteSpace(s)) return null;
        return s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(x => int.TryParse(x, System.Globalization.CultureInfo.InvariantCulture, out int v) && v > 0 ? v
                : throw new ArgumentException($"--scales: '{x}' is not a positive number of pixels")).ToArray();
    }

    private static int Run(TrainSettings s, TrainingOptions options, bool resume, IReadOnlyList<string> notices, TorchSharp.torch.Device device, bool modelOnly)
    {
        if (s.BatchSize <= 0) throw new ArgumentException($"--batch-size {s.BatchSize}: must be at least 1.");
        ValidateOptions(s, options);
        RequireCheckpointForResume(s.Out, resume);
        bool created = CliApp.EnsureOutFolder(s.Out);
        DetectionDataset train;
        DetectionDataset? valSet;
        RetinaNetOptions modelOptions;
        Pretrained.BackboneWeights backboneWeights;
        try
        {
            train = LoadChecked(s.Data, s.Repair, "--data");
            valSet = s.Val is null ? null : LoadChecked(s.Val, s.Repair, "--val");
            if (valSet != null) CategoryMatch.RequireSame(train.Categories, valSet.Categories, "--data", "--val");
            modelOptions = new RetinaNetOptions(train.Categories.Count)
            {
                MinSize = s.MinSize, MaxSize = s.MaxSize, FpnChannels = s.FpnChannels, HeadGroupNorm = s.HeadGroupNorm,
            };
            // With --init the whole detector (backbone included) comes from that checkpoint: not random.
            var weights = Pretrained.BackboneWeights.Parse(s.BackboneWeights);
            if (s.Init != null && weights.IsPretrained)
                throw new ArgumentException("--init and --backbone-weights: --init already sets every weight, the backbone's included; give one of them.");
            modelOptions = s.Init != null
                ? modelOptions with { Backbone = s.Backbone ?? modelOptions.Backbone, BackboneNorm = s.BackboneNorm ?? BackboneNormKind.Frozen, TrainableBackboneLayers = s.TrainableLayers ?? 3 }
                : weights.Configure(modelOptions, s.Backbone, s.BackboneNorm, s.TrainableLayers);
            backboneWeights = weights;
            modelOptions.Validate();
            if (!resume)
                foreach (var notice in notices) AnsiConsole.MarkupLineInterpolated($"{notice}");
        }
        catch
        {
            CliApp.RemoveIfEmpty(s.Out, created); // bad input found before any output: leave no empty run folder behind
            throw;
        }
        var augmentation = new AugmentationOptions(HorizontalFlip: s.Flip, ShorterSideScales: s.Scales);
        using var stop = NewStopSignal();
        var result = TrainAndReport(train, valSet, modelOptions, augmentation, s.BatchSize, s.Seed, options, s.Out,
            JsonSerializer.Serialize(s), resume, s.Init, resumeHint: "the same command with --resume", ResumeFields, out _, stop: stop, device: device, modelOnly: modelOnly, backboneWeights: backboneWeights);
        return result.Status == TrainingStatus.Completed ? CliApp.Ok : stop.ExitCode ?? CliApp.Failed;
    }

    /// <summary>With --resume, the run folder must hold a training checkpoint: a mistyped --out must not silently start a new run.</summary>
    /// <exception cref="ArgumentException"><paramref name="resume"/> and no checkpoint; the message names the folder and the file expected.</exception>
    internal static void RequireCheckpointForResume(string runDir, bool resume)
    {
        string path = Path.Combine(runDir, TrainingCheckpoint.FileName);
        if (resume && !File.Exists(path))
            throw new ArgumentException($"--resume: no training checkpoint in '{runDir}' (expected {path}); check --out, or drop --resume to start a new run.");
        // Checked before any banner: the trainer would refuse the folder only after "Training ... ->" was printed.
        if (!resume && File.Exists(path))
            throw new ArgumentException($"--out '{runDir}' already holds a training checkpoint ({TrainingCheckpoint.FileName}); continue it with --resume or choose another --out.");
    }

    /// <summary>Checks the numeric options before any data is read; each message names the option as typed.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    internal static void ValidateOptions(TrainSettings s, TrainingOptions o)
    {
        static void Check(bool ok, string option, object? value, string why)
        {
            if (!ok) throw new ArgumentException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{option} {value}: {why}."));
        }
        if (o.Iterations != null && o.Epochs != null) throw new ArgumentException("--iterations and --epochs: give one of them, not both.");
        Check(o.Iterations is null or > 0, "--iterations", o.Iterations, "must be at least 1");
        Check(o.Epochs is null or > 0, "--epochs", o.Epochs, "must be at least 1");
        Check(o.BaseLearningRate is null || (o.BaseLearningRate > 0 && double.IsFinite(o.BaseLearningRate.Value)), "--lr", o.BaseLearningRate, "must be a positive number");
        Check(o.WarmupIterations >= 0, "--warmup", o.WarmupIterations, "must be 0 or more");
        Check(o.WeightDecay >= 0, "--weight-decay", o.WeightDecay, "must be 0 or more");
        Check(o.GradientClipNorm is null or > 0, "--clip-grad", o.GradientClipNorm, "must be positive");
        Check(o.CheckpointEvery > 0, "--checkpoint-every", o.CheckpointEvery, "must be at least 1");
        Check(o.LogEvery > 0, "--log-every", o.LogEvery, "must be at least 1");
        Check(o.ValidateEvery is null or > 0, "--val-every", o.ValidateEvery, "must be at least 1");
        Check(s.MinSize > 0, "--min-size", s.MinSize, "must be at least 1 pixel");
        Check(s.MaxSize >= s.MinSize, "--max-size", s.MaxSize, $"must be at least --min-size ({s.MinSize})");
        Check(s.FpnChannels > 0, "--fpn-channels", s.FpnChannels, "must be at least 1");
        Check(s.TrainableLayers is null or (>= 0 and <= 5), "--trainable-layers", s.TrainableLayers, "must be in 0..5");
    }

    /// <summary>How the fields of a `retina train` checkpoint show when they differ on --resume (option names as typed).</summary>
    internal static IReadOnlyDictionary<string, ResumeField> ResumeFields { get; } = BuildResumeFields();

    private static Dictionary<string, ResumeField> BuildResumeFields()
    {
        var f = ResumeCheck.TrainingOptionFields();
        f["config.settings.Data"] = new("--data");
        f["config.settings.Val"] = new("--val");
        f["config.settings.Out"] = new("--out", ChangesResult: false); // the run folder was moved: the checkpoint inside it is the same
        f["config.settings.Backbone"] = new("--backbone", Format: e => e.ValueKind == JsonValueKind.Number ? ((ResNetDepth)e.GetInt32()).ToString().ToLowerInvariant() : ResumeCheck.Lower(e));
        f["config.settings.BatchSize"] = new("--batch-size");
        f["config.settings.MinSize"] = new("--min-size");
        f["config.settings.MaxSize"] = new("--max-size");
        f["config.settings.FpnChannels"] = new("--fpn-channels");
        f["config.settings.HeadGroupNorm"] = new("--head-groupnorm");
        f["config.settings.TrainableLayers"] = new("--trainable-layers");
        f["config.settings.Init"] = new("--init", ChangesResult: false); // on resume the weights come from the checkpoint
        f["config.settings.BackboneWeights"] = new("--backbone-weights", ChangesResult: false); // likewise
        f["config.settings.BackboneNorm"] = new("--backbone-norm");
        f["config.model.BackboneNorm"] = new("--backbone-norm");
        f["config.settings.Flip"] = new("--no-flip", Format: e => e.ValueKind == JsonValueKind.False ? "given" : "not given");
        f["config.settings.Scales"] = new("--scales");
        f["config.settings.Seed"] = new("--seed");
        f["config.settings.Repair"] = new("--repair");
        f["config.model.Backbone"] = f["config.settings.Backbone"];
        f["config.model.MinSize"] = new("--min-size");
        f["config.model.MaxSize"] = new("--max-size");
        f["config.model.FpnChannels"] = new("--fpn-channels");
        f["config.model.HeadGroupNorm"] = new("--head-groupnorm");
        f["config.model.TrainableBackboneLayers"] = new("--trainable-layers");
        return f;
    }

    /// <summary>Loads a dataset; refuses it when it has problems unless <paramref name="repair"/> (then prints the changes).</summary>
    /// <exception cref="ArgumentException">The dataset has problems and no repair was asked for; the message lists them.</exception>
    internal static DetectionDataset LoadChecked(string path, bool repair, string option)
    {
        var dataset = DetectionDataset.Load(path);
        var problems = DatasetCheck.Check(dataset, decodeImages: false);
        if (problems.Count == 0) return dataset;
        if (!repair)
        {
            var lines = problems.Take(20).Select(p => "  " + p.ToString());
            throw new ArgumentException($"{option}: the dataset '{path}' has {Plural.Of(problems.Count, "problem")}; fix them or train with --repair:\n" +
                string.Join("\n", lines) + (problems.Count > 20 ? $"\n  ... and {problems.Count - 20} more (retina data check {path})" : ""));
        }
        var repaired = DatasetCheck.Repair(dataset, decodeImages: false);
        foreach (var c in repaired.Changes) AnsiConsole.MarkupLineInterpolated($"[yellow]repair:[/] {c}");
        return repaired.Dataset;
    }

    /// <summary>
    /// Builds RetinaNet, trains it with a progress bar (Ctrl-C saves a checkpoint), writes <c>model.rsnet</c> (our checkpoint
    /// format) when the run completes and returns the trainer's result. Shared by `retina train` and `retina demo`.
    /// </summary>
    internal static TrainingResult TrainAndReport(DetectionDataset train, DetectionDataset? val, RetinaNetOptions modelOptions,
        AugmentationOptions augmentation, int batchSize, int seed, TrainingOptions options, string outDir, string configurationJson,
        bool resume, string? init, string resumeHint, IReadOnlyDictionary<string, ResumeField> resumeFields, out RetinaNet model, Action<RetinaNet>? prepareModel = null, int? maxValImages = null, StopSignal? stop = null,
        TorchSharp.torch.Device? device = null, bool modelOnly = false, Pretrained.BackboneWeights? backboneWeights = null)
    {
        TorchSharp.torch.manual_seed(seed);
        model = new RetinaNet(modelOptions);
        prepareModel?.Invoke(model);
        var weights = backboneWeights ?? Pretrained.BackboneWeights.Random;
        if (init != null) AnsiConsole.WriteLine(WeightInitialization.InitFrom(model, init));
        else if (resume) AnsiConsole.WriteLine(weights.Describe(modelOptions) + " Resuming: the weights come from the checkpoint.");
        else AnsiConsole.WriteLine(weights.LoadInto(model));
        if (device != null) model.to(device); // before the trainer: the optimiser's state is made beside the parameters
        using var loader = new DetectionDataLoader(train, batchSize, shuffle: true, seed: seed, augmentation: augmentation, dropLast: train.Images.Count >= batchSize);
        string stored = "{\"settings\":" + configurationJson + ",\"model\":" + modelOptions.ToJson() + "}";
        var trainer = new Trainer(new RetinaNetTrainable(model), new DataLoaderTrainingData(loader), options, outDir, stored);
        if (resume)
            foreach (var change in ResumeCheck.Reconcile(trainer.CheckpointPath, stored, trainer.OptionsJsonText, resumeFields))
                AnsiConsole.MarkupLineInterpolated($"Resuming with a changed setting that does not change the result: {change}");
        var m = model;
        if (val != null)
            trainer.Validate = _ => DetectionValidation.Metrics(DetectionValidation.Evaluate(m, val, batchSize: 8, maxImages: maxValImages).Evaluation);
        AnsiConsole.MarkupLineInterpolated($"Training RetinaNet-{modelOptions.Backbone}-FPN on {Plural.Of(train.Images.Count, "image")} ({Plural.Of(train.Categories.Count, "class")}), {Plural.Of(trainer.TotalIterations, "iteration")} of {Plural.Of(batchSize, "image")}, base LR {trainer.Schedule.BaseLearningRate:G3} -> [bold]{outDir}[/]");
        AnsiConsole.MarkupLineInterpolated($"[grey]{LossLegend(outDir)}[/]");
        var result = RunWithProgress(trainer, resume, stop);
        if (result.Status == TrainingStatus.Completed)
        {
            string modelPath = Path.Combine(outDir, "model.rsnet");
            RetinaNetCheckpoint.Save(model, modelPath, train.Categories.Categories);
            if (modelOnly && File.Exists(trainer.CheckpointPath)) File.Delete(trainer.CheckpointPath);
            AnsiConsole.MarkupLineInterpolated($"[green]{FinishedMessage(result.TotalIterations, modelPath, trainer.CheckpointPath)}[/]");
        }
        else
            AnsiConsole.MarkupLineInterpolated($"[yellow]{result.Message}[/]");
        if (CanResume(result))
            AnsiConsole.MarkupLineInterpolated($"To continue, run {resumeHint}.");
        return result;
    }

    /// <summary>Whether a stopped run can be continued with --resume: after Ctrl-C / SIGTERM, or after a libtorch failure
    /// when a checkpoint is on disk (the one saved at the failure, or the last periodic one).</summary>
    internal static bool CanResume(TrainingResult result) =>
        result.Status == TrainingStatus.Interrupted || (result.Status == TrainingStatus.NativeFailure && File.Exists(result.CheckpointPath));

    /// <summary>
    /// The closing line of a completed run: the model file for eval/detect first, then what else the run folder keeps and
    /// its size (the training checkpoint holds the weights plus the optimiser state, about 3x the model with SGD momentum).
    /// </summary>
    internal static string FinishedMessage(long iterations, string modelPath, string checkpointPath)
    {
        static string Mb(string f) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{new FileInfo(f).Length / 1e6:0} MB");
        string kept = File.Exists(checkpointPath)
            ? $"; also kept: {checkpointPath} ({Mb(checkpointPath)}, weights + optimiser state, for --resume or a longer run: delete it, or train with --model-only, when you need neither)"
            : "";
        return $"Finished {Plural.Of(iterations, "iteration")}. Model for retina eval/detect --weights: {modelPath} ({Mb(modelPath)}){kept}.";
    }

    /// <summary>A <see cref="StopSignal"/> that prints its notice in yellow.</summary>
    internal static StopSignal NewStopSignal() => new(m => AnsiConsole.MarkupLineInterpolated($"[yellow]{m}[/]"));

    /// <summary>
    /// Runs <paramref name="trainer"/> with a Spectre.Console progress bar; the first Ctrl-C or SIGTERM stops after the current
    /// step with a checkpoint (<paramref name="stop"/> records which, for the exit code), a second one ends the process.
    /// </summary>
    internal static TrainingResult RunWithProgress(Trainer trainer, bool resume, StopSignal? stop = null)
    {
        using var own = stop == null ? NewStopSignal() : null;
        var signal = stop ?? own!;
        var token = signal.Token;
        signal.Arm();
        try
        {
            TrainingResult? result = null;
            trainer.Message = m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]");
            if (!AnsiConsole.Profile.Capabilities.Interactive)
            {
                long every = Math.Max(1, trainer.TotalIterations / 20);
                trainer.Progress = p =>
                {
                    if (p.Iteration % every == 0 || p.Iteration == p.TotalIterations)
                        Console.WriteLine(Describe(p));
                };
                return trainer.Run(resume, token);
            }
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("starting", maxValue: trainer.TotalIterations);
                    trainer.Progress = p =>
                    {
                        task.Value = p.Iteration;
                        task.Description = Markup.Escape(Describe(p));
                    };
                    result = trainer.Run(resume, token);
                    task.StopTask();
                });
            return result!;
        }
        finally
        {
            signal.Disarm();
        }
    }

    /// <summary>One progress line; the loss is labelled as the running mean it is (log.csv has the per-step values).</summary>
    internal static string Describe(TrainingProgress p) =>
        FormattableString.Invariant($"it {p.Iteration}/{p.TotalIterations} ep {p.Epoch} loss (mean of last {Math.Min(p.Iteration, TrainingProgress.SmoothingSteps)}) {p.Loss:0.000} (") +
        string.Join(" ", p.Terms.Select(kv => FormattableString.Invariant($"{Short(kv.Key)} {kv.Value:0.000}"))) +
        FormattableString.Invariant($") lr {p.LearningRate:G3} {p.ImagesPerSecond:0.0} img/s eta {p.Eta:hh\\:mm\\:ss}");

    /// <summary>Printed once before the progress: which loss the console shows and which log.csv holds.</summary>
    internal static string LossLegend(string outDir) =>
        $"Progress shows the loss averaged over the last {TrainingProgress.SmoothingSteps} steps; {Path.Combine(outDir, "log.csv")} has the loss of each logged step ({TrainingLog.StepLossColumn}, not averaged).";

    private static string Short(string term) => term switch { "classification" => "cls", "box_regression" => "box", _ => term };
}
