// `retina train`: trains RetinaNet on a COCO / VOC / CSV dataset with the paper's defaults (section 5:
// ResNet-50-FPN, SGD momentum 0.9, weight decay 1e-4, LR 0.01 per 16 images, warm-up, x0.1 at 2/3 and 8/9,
// flip augmentation), a progress bar, atomic checkpoints, exact --resume and Ctrl-C / SIGTERM that save and say how to resume.
using System.CommandLine;
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using RetinaSharp.Recipes;
using RetinaSharp.Training;
using Spectre.Console;
using TorchSharp;

namespace RetinaSharp.Cli.Commands;

/// <summary>Everything `retina train` was asked to do, each value resolved (given, or the recipe's); stored as the configuration of each checkpoint.</summary>
/// <remarks>Backbone, TrainableLayers and BackboneNorm stay null when not given: they follow the backbone weights and the recipe
/// (<see cref="TrainingRecipe.ModelFor"/>); BackboneWeights null = the recipe's (random for paper and v2, ImageNet for demo).</remarks>
internal sealed record TrainSettings(
    string Data, string? Val, string Out, string Recipe, ResNetDepth? Backbone, int BatchSize, int MinSize, int MaxSize,
    int FpnChannels, bool HeadGroupNorm, int? TrainableLayers, string? Init, bool Flip, int[]? Scales, int Seed, bool Repair,
    double? Alpha, double Gamma, double Prior, BoxLossKind BoxLoss, double SmoothL1Beta, bool P6FromC5,
    int[][]? AnchorSizes, double[] AspectRatios, double FgIou, double BgIou,
    string? BackboneWeights = null, BackboneNormKind? BackboneNorm = null, string? Anchors = null)
{
    /// <summary>The recipe with every model value of these settings (the backbone's depth, norm and stages are resolved by <see cref="ModelOptions"/>).</summary>
    public TrainingRecipe ResolvedRecipe()
    {
        var r = TrainingRecipe.Named(Recipe);
        return r with
        {
            Model = r.Model with
            {
                MinSize = MinSize, MaxSize = MaxSize, FpnChannels = FpnChannels, HeadGroupNorm = HeadGroupNorm,
                TrainMinSizes = Scales, Alpha = Alpha, Gamma = Gamma, PriorProbability = Prior, BoxLoss = BoxLoss,
                SmoothL1Beta = SmoothL1Beta, P6FromC5 = P6FromC5, AnchorSizes = AnchorSizes, AspectRatios = AspectRatios, FgIouThreshold = FgIou, BgIouThreshold = BgIou,
            },
        };
    }

    /// <summary>The backbone weights: --backbone-weights, else the recipe's.</summary>
    public Pretrained.BackboneWeights Weights() => BackboneWeights is null ? TrainingRecipe.Named(Recipe).BackboneWeights : Pretrained.BackboneWeights.Parse(BackboneWeights);

    /// <summary>The model configuration for <paramref name="numClasses"/> classes: the recipe's with every value of these settings,
    /// the backbone configured for its weights (<see cref="TrainingRecipe.ModelFor"/>); with --init the backbone's depth, norm and
    /// stages are the recipe's pretrained ones (the whole detector comes from that checkpoint).</summary>
    /// <exception cref="ArgumentException">A refused combination of weights, norm and stages, or --init with --backbone-weights.</exception>
    public RetinaNetOptions ModelOptions(int numClasses)
    {
        var recipe = ResolvedRecipe();
        if (Init != null)
        {
            if (BackboneWeights != null && Pretrained.BackboneWeights.Parse(BackboneWeights).IsPretrained)
                throw new ArgumentException("--init and --backbone-weights: --init already sets every weight, the backbone's included; give one of them.");
            var m = recipe.Model with { NumClasses = numClasses };
            return m with
            {
                Backbone = Backbone ?? (m.Backbone == ResNetDepth.ResNet18Cntk && recipe.BackboneWeights.Kind != Pretrained.BackboneWeightsKind.ImageNet ? ResNetDepth.ResNet18 : m.Backbone),
                BackboneNorm = BackboneNorm ?? m.BackboneNorm, TrainableBackboneLayers = TrainableLayers ?? m.TrainableBackboneLayers,
            };
        }
        return recipe.ModelFor(numClasses, Weights(), Backbone, BackboneNorm, TrainableLayers);
    }
}

/// <summary>`retina train`.</summary>
public static class TrainCommand
{
    /// <summary>The options of `retina train`; values not given come from the recipe (<see cref="TrainingRecipe"/>).</summary>
    private sealed class TrainOptions
    {
        public readonly Option<string> Data = new("--data") { Description = "Training dataset: COCO instances .json, VOC folder or .csv", Required = true };
        public readonly Option<string?> Val = new("--val") { Description = "Validation dataset (COCO AP every --val-every iterations and at the end)" };
        public readonly Option<string> Out = new("--out") { Description = "Run folder (checkpoint, log.csv with the loss of each logged step, loss_curve.png, model.rsnet)", Required = true };
        public readonly Option<string> Recipe = new("--recipe")
        {
            Description = "Where the values of the options not given come from: paper (the paper / torchvision v1: ResNet-50-FPN, frozen BN, SGD 0.01 per 16 images, 90k iterations, L1 box loss, P6 from P5), " +
                          "v2 (torchvision retinanet_resnet50_fpn_v2: GroupNorm heads, GIoU box loss, P6/P7 from C5, trainable BN, AdamW 1e-4, weight decay 0.05 and 0 on norm layers, 26 epochs with steps at 16/26 and 22/26, shorter side 480..800 px) " +
                          "or demo (retina demo's small from-scratch model); options given override it",
            DefaultValueFactory = _ => "paper",
        };
        public readonly Option<string?> Backbone = new("--backbone") { Description = "resnet18, resnet34, resnet50 or resnet101 [default: with --backbone-weights the weights' depth, else the recipe's: paper, v2 resnet50]" };
        public readonly Option<string?> BackboneWeights = new("--backbone-weights") { Description = "Start the backbone from pretrained weights: 'imagenet' (ML.NET's ImageNet ResNet-18, shipped with RetinaSharp) or a torchvision ResNet classification checkpoint (resnet50-0676ba61.pth, ...; fc.* ignored) [default: random weights; --recipe demo: imagenet]" };
        public readonly Option<string?> BackboneNorm = new("--backbone-norm") { Description = "frozen, batch or group [default: with --backbone-weights the recipe's (paper frozen, v2 batch), from random weights batch]" };
        public readonly Option<long?> Iterations = new("--iterations") { Description = "Run length in iterations [default: the recipe's: paper 90000 iterations, v2 26 epochs, unless --epochs is given]" };
        public readonly Option<int?> Epochs = new("--epochs") { Description = "Run length in epochs (instead of --iterations)" };
        public readonly Option<int?> Batch = new("--batch-size") { Description = "Images per iteration [default: 16]" };
        public readonly Option<double?> Lr = new("--lr") { Description = "Base learning rate [default: paper 0.01 x batch / 16; v2 1e-4]" };
        public readonly Option<string?> Optimizer = new("--optimizer") { Description = "sgd or adamw [default: paper sgd (momentum 0.9); v2 adamw]" };
        public readonly Option<string?> Schedule = new("--schedule") { Description = "step (x0.1 at each --lr-steps fraction) or cosine [default: step]" };
        public readonly Option<string?> LrSteps = new("--lr-steps") { Description = "Step decay points as comma-separated fractions of the run, e.g. 0.667,0.889 [default: paper 2/3,8/9; v2 16/26,22/26]" };
        public readonly Option<long?> Warmup = new("--warmup") { Description = "Linear warm-up iterations from lr/1000 (a fifth of the run at most unless given) [default: paper 500; v2 1000]" };
        public readonly Option<double?> Wd = new("--weight-decay") { Description = "Weight decay [default: paper 1e-4; v2 0.05]" };
        public readonly Option<double?> NormWd = new("--norm-weight-decay") { Description = "Weight decay of the BatchNorm/GroupNorm weights and biases [default: paper --weight-decay; v2 0]" };
        public readonly Option<double?> Clip = new("--clip-grad") { Description = "Clip the gradient L2 norm to this value [default: no clipping]" };
        public readonly Option<int?> MinSize = new("--min-size") { Description = "Shorter image side after resize, pixels (inference, and training without --scales) [default: 800]" };
        public readonly Option<int?> MaxSize = new("--max-size") { Description = "Longer image side limit, pixels [default: 1333]" };
        public readonly Option<string?> Scales = new("--scales")
        {
            Description = "Multi-scale training: comma-separated shorter sides in pixels, one drawn per image at each step (at most --max-size), e.g. 640,672,704,736,768,800; " +
                          "evaluation and the saved model use --min-size [default: paper --min-size only; v2 480,512,...,800]",
        };
        public readonly Option<int?> Fpn = new("--fpn-channels") { Description = "FPN and head width [default: 256]" };
        public readonly Option<bool> Gn = new("--head-groupnorm") { Description = "GroupNorm in the heads (torchvision v2; on with --recipe v2 and demo)" };
        public readonly Option<int?> Trainable = new("--trainable-layers") { Description = "ResNet stages trained, counted from layer4, 0..5 [default: 3 with --backbone-weights (the paper, v2), 5 from random weights]" };
        public readonly Option<string?> Alpha = new("--alpha") { Description = "Focal loss alpha in [0, 1], the weight of positives, or none [default: 0.25]" };
        public readonly Option<double?> Gamma = new("--gamma") { Description = "Focal loss gamma >= 0 (0 with --alpha none is cross-entropy) [default: 2]" };
        public readonly Option<double?> Prior = new("--prior") { Description = "Prior probability pi in (0, 1): the classification bias starts at -log((1 - pi) / pi) [default: 0.01]" };
        public readonly Option<string?> BoxLoss = new("--box-loss") { Description = "Box regression loss: l1, smooth-l1 (the paper) or giou [default: paper l1 (torchvision v1); v2 giou]" };
        public readonly Option<double?> Beta = new("--smooth-l1-beta") { Description = "Beta of --box-loss smooth-l1, >= 0 [default: 1 (torchvision); detectron2 uses 0.1]" };
        public readonly Option<string?> P6From = new("--p6-from") { Description = "Input of the P6 convolution: p5 (torchvision v1) or c5 (the paper, torchvision v2) [default: paper p5; v2 c5]" };
        public readonly Option<string?> AnchorSizes = new("--anchor-sizes")
        {
            Description = "Anchor sizes in pixels for P3..P7: 5 comma-separated base sizes, each level getting x, x*2^(1/3), x*2^(2/3) (e.g. 32,64,128,256,512), " +
                          "or 5 '/'-separated lists of the same length (e.g. 32,40/64,80/128,160/256,320/512,640) [default: 32,64,128,256,512]",
        };
        public readonly Option<string?> AspectRatios = new("--aspect-ratios") { Description = "Anchor aspect ratios height/width, comma-separated [default: 0.5,1,2]" };
        public readonly Option<double?> FgIou = new("--fg-iou") { Description = "Anchors with IoU >= this with a box are foreground, in (0, 1] [default: 0.5]" };
        public readonly Option<double?> BgIou = new("--bg-iou") { Description = "Anchors with IoU < this with every box are background, in [0, --fg-iou]; in between, ignored [default: 0.4]" };
        public readonly Option<string?> Init = new("--init") { Description = "Start from a model.rsnet or torchvision .pth (the classification layer is replaced when class counts differ)" };
        public readonly Option<bool> Resume = new("--resume") { Description = "Continue the run in --out exactly where it stopped (needs its checkpoint.rstrain; the run length cannot change)" };
        public readonly Option<int> Seed = new("--seed") { Description = "Seed of initialisation, data order and augmentation", DefaultValueFactory = _ => 0 };
        public readonly Option<bool> NoFlip = new("--no-flip") { Description = "Disable horizontal flip augmentation" };
        public readonly Option<long> CkptEvery = new("--checkpoint-every") { Description = "Checkpoint interval in iterations", DefaultValueFactory = _ => 1000 };
        public readonly Option<long> LogEvery = new("--log-every") { Description = "Log interval in iterations", DefaultValueFactory = _ => 20 };
        public readonly Option<long?> ValEvery = new("--val-every") { Description = "Validation interval in iterations [default: only at the end]" };
        public readonly Option<bool> Repair = new("--repair") { Description = "Repair dataset problems (clip boxes, drop degenerate ones) instead of refusing" };
        public readonly Option<string> Device = CliApp.DeviceOption();
        public readonly Option<bool> ModelOnly = new("--model-only") { Description = $"When the run completes keep model.rsnet and delete {TrainingCheckpoint.FileName} (weights + optimiser state, about 3x the model): the run can then not be resumed or extended" };

        public readonly Option<string?> Anchors = new("--anchors") { HelpName = "anchors.json", Description = "Anchor sizes per level and aspect ratios from a file written by 'retina data anchors --fit' (overrides --anchor-sizes and --aspect-ratios) [default: the recipe's]" };

        public Option[] All => [Data, Val, Recipe, Backbone, Out, Iterations, Epochs, Batch, Lr, Optimizer, Schedule, LrSteps, Warmup, Wd, NormWd, Clip, MinSize, MaxSize,
            Scales, Fpn, Gn, Trainable, Alpha, Gamma, Prior, BoxLoss, Beta, P6From, AnchorSizes, AspectRatios, FgIou, BgIou, Init, Resume, Seed, NoFlip,
            CkptEvery, LogEvery, ValEvery, Repair, Device, ModelOnly, BackboneWeights, BackboneNorm, Anchors];

        /// <summary>Resolves every value: given, else the recipe's. Notices are printed once the options, --out and the data are checked.</summary>
        /// <exception cref="ArgumentException">An unknown name (recipe, backbone, optimiser, ...) or a malformed list; the message names the option.</exception>
        public (TrainSettings Settings, TrainingOptions Options, List<string> Notices) Bind(ParseResult p)
        {
            TrainingRecipe recipe;
            try { recipe = TrainingRecipe.Named(p.GetValue(Recipe)!); }
            catch (ArgumentException e) { throw new ArgumentException($"--recipe: {e.Message.Replace(" (Parameter 'name')", "")}"); }
            var m = recipe.Model;
            var t = recipe.Training;
            var notices = new List<string> { $"Recipe {recipe.Name}: {recipe.Description} (options given override it)." };
            var settings = new TrainSettings(
                Path.GetFullPath(p.GetValue(Data)!), p.GetValue(Val) is string v ? Path.GetFullPath(v) : null, Path.GetFullPath(p.GetValue(Out)!), recipe.Name,
                p.GetValue(Backbone) is string b ? ParseBackbone(b) : null, p.GetValue(Batch) ?? recipe.BatchSize,
                p.GetValue(MinSize) ?? m.MinSize, p.GetValue(MaxSize) ?? m.MaxSize, p.GetValue(Fpn) ?? m.FpnChannels, p.GetValue(Gn) || m.HeadGroupNorm,
                p.GetValue(Trainable), p.GetValue(Init) is string i ? Path.GetFullPath(i) : null, !p.GetValue(NoFlip),
                p.GetValue(Scales) is string sc ? ParseScales(sc) : m.TrainMinSizes, p.GetValue(Seed), p.GetValue(Repair),
                p.GetValue(Alpha) is string a ? ParseAlpha(a) : m.Alpha, p.GetValue(Gamma) ?? m.Gamma, p.GetValue(Prior) ?? m.PriorProbability,
                p.GetValue(BoxLoss) is string bl ? ParseBoxLoss(bl) : m.BoxLoss, p.GetValue(Beta) ?? m.SmoothL1Beta,
                p.GetValue(P6From) is string p6 ? ParseP6From(p6) : m.P6FromC5,
                p.GetValue(AnchorSizes) is string an ? ParseAnchorSizes(an) : m.AnchorSizes,
                p.GetValue(AspectRatios) is string ar ? ParseNumbers(ar, "--aspect-ratios") : m.AspectRatios,
                p.GetValue(FgIou) ?? m.FgIouThreshold, p.GetValue(BgIou) ?? m.BgIouThreshold,
                p.GetValue(BackboneWeights) is string w ? (string.Equals(w, Pretrained.BackboneWeights.ImageNetName, StringComparison.OrdinalIgnoreCase) ? Pretrained.BackboneWeights.ImageNetName : Path.GetFullPath(w)) : null,
                p.GetValue(BackboneNorm) is string bn ? ParseNorm(bn) : null,
                p.GetValue(Anchors) is string af ? Path.GetFullPath(af) : null);
            long? its = p.GetValue(Iterations);
            int? eps = p.GetValue(Epochs);
            if (its is null && eps is null)
            {
                (its, eps) = (t.Iterations, t.Epochs);
                notices.Add(its is long n0
                    ? $"No --iterations or --epochs: training the recipe's {n0} iterations (give --iterations N for a shorter run)."
                    : $"No --iterations or --epochs: training the recipe's {Plural.Of(eps ?? 0, "epoch")} (give --iterations N for a shorter run).");
            }
            long warmupIterations = p.GetValue(Warmup) ?? t.WarmupIterations;
            if (p.GetValue(Warmup) is null && its is long n && n > 0 && warmupIterations > n / 5)
            {
                // The recipe's warm-up would swallow a short run: keep it to a fifth of the run unless asked.
                warmupIterations = Math.Max(1, n / 5);
                notices.Add($"Warm-up shortened to {Plural.Of(warmupIterations, "iteration")} (a fifth of the run; give --warmup to choose).");
            }
            var options = t with
            {
                Iterations = its, Epochs = eps,
                BaseLearningRate = p.GetValue(Lr) ?? t.BaseLearningRate,
                Optimizer = p.GetValue(Optimizer) is string o ? o.ToLowerInvariant() switch
                {
                    "sgd" => OptimizerKind.Sgd, "adamw" => OptimizerKind.AdamW,
                    _ => throw new ArgumentException($"--optimizer: unknown optimizer '{o}' (sgd or adamw)"),
                } : t.Optimizer,
                Decay = p.GetValue(Schedule) is string d ? d.ToLowerInvariant() switch
                {
                    "step" => LearningRateDecay.Step, "cosine" => LearningRateDecay.Cosine,
                    _ => throw new ArgumentException($"--schedule: unknown schedule '{d}' (step or cosine)"),
                } : t.Decay,
                StepMilestones = p.GetValue(LrSteps) is string ls ? ParseNumbers(ls, "--lr-steps") : t.StepMilestones,
                WarmupIterations = warmupIterations, WeightDecay = p.GetValue(Wd) ?? t.WeightDecay, NormWeightDecay = p.GetValue(NormWd) ?? t.NormWeightDecay,
                GradientClipNorm = p.GetValue(Clip) ?? t.GradientClipNorm,
                CheckpointEvery = p.GetValue(CkptEvery), LogEvery = p.GetValue(LogEvery), ValidateEvery = p.GetValue(ValEvery), Seed = settings.Seed,
            };
            return (settings, options, notices);
        }
    }

    /// <summary>Builds the `train` command.</summary>
    public static Command Create()
    {
        var o = new TrainOptions();
        var command = new Command("train", "Train RetinaNet on your own labelled images; options not given take the values of --recipe (the paper unless given).");
        foreach (var option in o.All) command.Options.Add(option);
        command.SetAction(p =>
        {
            var dev = CliApp.ResolveDevice(p.GetValue(o.Device));
            var (settings, options, notices) = o.Bind(p);
            return Run(settings, options, p.GetValue(o.Resume), notices, dev, p.GetValue(o.ModelOnly));
        });
        return command;
    }

    /// <summary>
    /// What `retina train ARGS` would train, without reading any data: the settings, the model configuration for
    /// <paramref name="numClasses"/> classes and the trainer's options, after the same checks as a real run (for tests and tools).
    /// </summary>
    /// <param name="numClasses">The class count the data would have.</param>
    /// <param name="args">The arguments after `train`.</param>
    /// <exception cref="ArgumentException">A parse error or a refused value; the message names the option.</exception>
    internal static (TrainSettings Settings, RetinaNetOptions Model, TrainingOptions Options) Resolve(int numClasses, params string[] args)
    {
        var o = new TrainOptions();
        var command = new Command("train");
        foreach (var option in o.All) command.Options.Add(option);
        var p = command.Parse(args);
        if (p.Errors.Count > 0) throw new ArgumentException(string.Join("; ", p.Errors.Select(e => e.Message)));
        var (settings, options, _) = o.Bind(p);
        ValidateOptions(settings, options);
        var model = settings.ModelOptions(numClasses);
        model.Validate();
        return (settings, model, options);
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

    private static double? ParseAlpha(string s)
    {
        if (s.Trim().Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
        return double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v
            : throw new ArgumentException($"--alpha: '{s}' is not a number in [0, 1] or none");
    }

    private static BoxLossKind ParseBoxLoss(string s) => s.Trim().ToLowerInvariant() switch
    {
        "l1" => BoxLossKind.L1,
        "smooth-l1" or "smooth_l1" or "smoothl1" => BoxLossKind.SmoothL1,
        "giou" => BoxLossKind.GIoU,
        _ => throw new ArgumentException($"--box-loss: unknown box loss '{s}' (l1, smooth-l1 or giou)"),
    };

    private static bool ParseP6From(string s) => s.Trim().ToLowerInvariant() switch
    {
        "c5" => true,
        "p5" => false,
        _ => throw new ArgumentException($"--p6-from: '{s}' is not c5 or p5"),
    };

    private static double[] ParseNumbers(string s, string option)
    {
        var parts = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException($"{option}: '{s}' lists no numbers");
        return [.. parts.Select(x => double.TryParse(x, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v
            : throw new ArgumentException($"{option}: '{x}' is not a number"))];
    }

    /// <summary>"32,64,128,256,512" (torchvision's three octave scales per base size) or "a,b/c,d/e,f/g,h/i,j" (each level given).</summary>
    private static int[][] ParseAnchorSizes(string s)
    {
        static int Pixels(string x) => int.TryParse(x, System.Globalization.CultureInfo.InvariantCulture, out int v) && v > 0 ? v
            : throw new ArgumentException($"--anchor-sizes: '{x}' is not a positive number of pixels");
        var levels = s.Split('/', StringSplitOptions.TrimEntries);
        if (levels.Length == 1)
        {
            var bases = levels[0].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Pixels).ToArray();
            if (bases.Length != 5) throw new ArgumentException($"--anchor-sizes: '{s}' gives {bases.Length} base sizes; give 5, one per level P3..P7 (e.g. 32,64,128,256,512)");
            return [.. bases.Select(x => new[] { x, (int)(x * Math.Pow(2, 1.0 / 3)), (int)(x * Math.Pow(2, 2.0 / 3)) })];
        }
        var sizes = levels.Select(l => l.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Pixels).ToArray()).ToArray();
        if (sizes.Length != 5 || sizes.Any(l => l.Length == 0 || l.Length != sizes[0].Length))
            throw new ArgumentException($"--anchor-sizes: '{s}' must give 5 '/'-separated levels (P3..P7) with the same number of sizes each");
        return sizes;
    }

    private static int Run(TrainSettings s, TrainingOptions options, bool resume, IReadOnlyList<string> notices, TorchSharp.torch.Device device, bool modelOnly)
    {
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
            modelOptions = s.ModelOptions(train.Categories.Count);
            // With --init the whole detector (backbone included) comes from that checkpoint: not random, not the recipe's weights.
            backboneWeights = s.Init != null ? Pretrained.BackboneWeights.Random : s.Weights();
            if (s.Anchors != null) modelOptions = Analysis.AnchorFile.ApplyTo(s.Anchors, modelOptions);
            modelOptions.Validate();
            if (!resume)
                foreach (var notice in notices) AnsiConsole.MarkupLineInterpolated($"{notice}");
        }
        catch
        {
            CliApp.RemoveIfEmpty(s.Out, created); // bad input found before any output: leave no empty run folder behind
            throw;
        }
        var augmentation = new AugmentationOptions(HorizontalFlip: s.Flip); // --scales is the model's TrainMinSizes: the transform draws the size
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
        if (s.Scales is { } scales)
            foreach (int v in scales) Check(v <= s.MaxSize, "--scales", v, $"a shorter side must be at most --max-size ({s.MaxSize})");
        Check(s.FpnChannels > 0, "--fpn-channels", s.FpnChannels, "must be at least 1");
        Check(s.TrainableLayers is null or (>= 0 and <= 5), "--trainable-layers", s.TrainableLayers, "must be in 0..5");
        Check(s.BatchSize > 0, "--batch-size", s.BatchSize, "must be at least 1");
        Check(o.NormWeightDecay is null or >= 0, "--norm-weight-decay", o.NormWeightDecay, "must be 0 or more");
        if (o.StepMilestones is { } steps)
            Check(steps.All(f => f is > 0 and < 1) && steps.Zip(steps.Skip(1)).All(q => q.Second > q.First), "--lr-steps", string.Join(",", steps),
                "must be increasing fractions of the run, each in (0, 1)");
        Check(s.Alpha is null or (>= 0 and <= 1), "--alpha", s.Alpha, "must be in [0, 1], or none");
        Check(s.Gamma >= 0 && double.IsFinite(s.Gamma), "--gamma", s.Gamma, "must be a number >= 0");
        Check(s.Prior is > 0 and < 1, "--prior", s.Prior, "must be in (0, 1), the probability every anchor starts with");
        Check(s.SmoothL1Beta >= 0 && double.IsFinite(s.SmoothL1Beta), "--smooth-l1-beta", s.SmoothL1Beta, "must be a number >= 0");
        Check(s.AspectRatios.All(r => r > 0 && double.IsFinite(r)), "--aspect-ratios", string.Join(",", s.AspectRatios), "must be positive (height / width)");
        Check(s.FgIou is > 0 and <= 1, "--fg-iou", s.FgIou, "must be in (0, 1]");
        Check(s.BgIou >= 0 && s.BgIou <= s.FgIou, "--bg-iou", s.BgIou, $"must be in [0, --fg-iou ({s.FgIou.ToString(System.Globalization.CultureInfo.InvariantCulture)})]");
        Check(!s.HeadGroupNorm || s.FpnChannels % 32 == 0, "--fpn-channels", s.FpnChannels, "must be a multiple of 32 with GroupNorm heads (--head-groupnorm, --recipe v2)");
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
        f["config.settings.Anchors"] = new("--anchors");
        f["config.model.AnchorSizes"] = new("--anchors");
        f["config.model.AspectRatios"] = new("--anchors");
        f["config.model.Backbone"] = f["config.settings.Backbone"];
        f["config.model.MinSize"] = new("--min-size");
        f["config.model.MaxSize"] = new("--max-size");
        f["config.model.FpnChannels"] = new("--fpn-channels");
        f["config.model.HeadGroupNorm"] = new("--head-groupnorm");
        f["config.model.TrainableBackboneLayers"] = new("--trainable-layers");
        f["config.model.TrainMinSizes"] = new("--scales");
        f["config.settings.Recipe"] = new("--recipe");
        foreach (var (setting, model, option) in new[]
                 {
                     ("Alpha", "Alpha", "--alpha"), ("Gamma", "Gamma", "--gamma"), ("Prior", "PriorProbability", "--prior"), ("BoxLoss", "BoxLoss", "--box-loss"),
                     ("SmoothL1Beta", "SmoothL1Beta", "--smooth-l1-beta"), ("P6FromC5", "P6FromC5", "--p6-from"), ("AnchorSizes", "AnchorSizes", "--anchor-sizes"),
                     ("AspectRatios", "AspectRatios", "--aspect-ratios"), ("FgIou", "FgIouThreshold", "--fg-iou"), ("BgIou", "BgIouThreshold", "--bg-iou"),
                 })
        {
            var field = option == "--p6-from" ? new ResumeField(option, Format: e => e.ValueKind == JsonValueKind.True ? "c5" : "p5") : new ResumeField(option);
            f["config.settings." + setting] = field;
            f["config.model." + model] = field;
        }
        f["options.StepMilestones"] = new("--lr-steps");
        f["options.NormWeightDecay"] = new("--norm-weight-decay");
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
