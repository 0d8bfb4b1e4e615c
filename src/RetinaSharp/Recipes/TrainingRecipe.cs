// Named training recipes: the whole configuration of a published or shipped run in one value, so the CLI
// (`retina train --recipe`, `retina demo`), the benchmarks and C# users start from the same numbers instead of
// copying them. Sources: the RetinaNet paper (Lin et al. 2017, section 5.1 "Optimization"), torchvision 0.14's
// `retinanet_resnet50_fpn_v2` and the recipe it was trained with (pytorch/vision pull request 5756:
// AdamW 1e-4, weight decay 0.05 and none on norm layers, 26 epochs with steps at 16 and 22, multiscale data),
// and RetinaSharp's own demo (measured on Fashion-MNIST scenes, see the README).
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using RetinaSharp.Pretrained;
using RetinaSharp.Training;

namespace RetinaSharp.Recipes;

/// <summary>
/// A complete training configuration: the model (<see cref="Model"/>), the optimiser and schedule
/// (<see cref="Training"/>), the data augmentation and the batch size. Recipes are plain immutable records:
/// change a part with <c>with</c> (<c>TrainingRecipe.Paper with { BatchSize = 8 }</c>).
/// </summary>
/// <example>
/// <code>
/// var recipe = TrainingRecipe.TorchvisionV2;
/// using var model = new RetinaNet(recipe.ModelOptions(dataset.Categories.Count));
/// var options = recipe.TrainingFor(iterations: 5000);
/// </code>
/// </example>
public sealed record TrainingRecipe
{
    /// <summary>The name the CLI's <c>--recipe</c> takes ("paper", "v2", "demo").</summary>
    public required string Name { get; init; }

    /// <summary>One line saying what the recipe is and where its numbers come from.</summary>
    public required string Description { get; init; }

    /// <summary>The model settings; <see cref="RetinaNetOptions.NumClasses"/> is a placeholder that
    /// <see cref="ModelOptions"/> replaces with the data's class count.</summary>
    public required RetinaNetOptions Model { get; init; }

    /// <summary>The optimiser, learning-rate schedule and run length of the recipe (its own run length: the paper's
    /// 90 000 iterations, torchvision's 26 epochs); <see cref="TrainingFor"/> gives the same recipe for another length.</summary>
    public required TrainingOptions Training { get; init; }

    /// <summary>The training-time augmentation of the data loader. Default: horizontal flip with probability 0.5 (the paper).</summary>
    public AugmentationOptions Augmentation { get; init; } = new(HorizontalFlip: true);

    /// <summary>Where the backbone's weights start from (<see cref="Pretrained.BackboneWeights.LoadInto"/> after building the
    /// model). Default random; <see cref="Model"/> already holds the normalisation and freezing that go with it
    /// (<see cref="Pretrained.BackboneWeights.Configure"/>).</summary>
    public BackboneWeights BackboneWeights { get; init; } = BackboneWeights.Random;

    /// <summary>Images per iteration the recipe was designed for (the learning rate goes with it). Default 16 (the paper).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>The model settings for data with <paramref name="numClasses"/> classes.</summary>
    /// <param name="numClasses">K, the number of object classes (at least 1).</param>
    /// <exception cref="ArgumentException"><paramref name="numClasses"/> is below 1 or another field is invalid (<see cref="RetinaNetOptions.Validate"/>).</exception>
    public RetinaNetOptions ModelOptions(int numClasses)
    {
        var o = Model with { NumClasses = numClasses };
        o.Validate();
        return o;
    }

    /// <summary>
    /// The recipe's model for <paramref name="numClasses"/> classes with the backbone started from <paramref name="weights"/>
    /// (<see cref="BackboneWeights.Configure"/> checks the combination). A recipe's normalisation and trainable stages describe
    /// a pretrained start, as torchvision's recipes do (the paper: frozen BN, 3 stages; v2: trainable BN, 3 stages); from random
    /// weights Configure's rules apply instead (batch norm unless the recipe asks for a trainable norm, all 5 stages trained).
    /// Values given win. Weights other than the recipe's own drop the recipe's weight-specific image mean/std and CNTK backbone.
    /// </summary>
    /// <param name="numClasses">K, the number of object classes.</param>
    /// <param name="weights">Where the backbone starts from.</param>
    /// <param name="backbone">The depth asked for, or null (the weights', else the recipe's).</param>
    /// <param name="norm">The normalisation asked for, or null (see above).</param>
    /// <param name="trainableLayers">Trainable stages asked for, or null (see above).</param>
    /// <exception cref="ArgumentException">A refused combination (the message says what to pass instead) or an invalid value.</exception>
    public RetinaNetOptions ModelFor(int numClasses, BackboneWeights weights, ResNetDepth? backbone = null, BackboneNormKind? norm = null, int? trainableLayers = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var o = Model with { NumClasses = numClasses };
        if (weights.Kind != BackboneWeights.Kind)
        {
            var defaults = new RetinaNetOptions(numClasses);
            o = o with
            {
                ImageMean = defaults.ImageMean, ImageStd = defaults.ImageStd,
                Backbone = o.Backbone == ResNetDepth.ResNet18Cntk ? ResNetDepth.ResNet18 : o.Backbone,
            };
        }
        norm ??= weights.IsPretrained ? o.BackboneNorm : (o.BackboneNorm == BackboneNormKind.Frozen ? null : o.BackboneNorm);
        trainableLayers ??= weights.IsPretrained ? o.TrainableBackboneLayers : null;
        return weights.Configure(o, backbone, norm, trainableLayers);
    }

    /// <summary>
    /// The recipe's training options for a run of <paramref name="iterations"/> instead of its own length: the
    /// same optimiser and schedule shape (decay points are fractions of the run), the warm-up kept to at most a
    /// fifth of the run so that a short run is not all warm-up.
    /// </summary>
    /// <param name="iterations">The run length in iterations (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="iterations"/> is below 1.</exception>
    public TrainingOptions TrainingFor(long iterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        return Training with
        {
            Iterations = iterations,
            Epochs = null,
            WarmupIterations = Math.Min(Training.WarmupIterations, Math.Max(1, iterations / 5)),
        };
    }

    /// <summary>torchvision's default anchor sizes scaled by <paramref name="factor"/>: per level P3..P7,
    /// (x, int(x·2^(1/3)), int(x·2^(2/3))) for x = 32·factor, 64·factor, ... 512·factor pixels.</summary>
    internal static int[][] OctaveAnchorSizes(double factor) =>
        [.. new[] { 32, 64, 128, 256, 512 }.Select(b => (int)(b * factor)).Select(x => new[] { x, (int)(x * Math.Pow(2, 1.0 / 3)), (int)(x * Math.Pow(2, 2.0 / 3)) })];

    /// <summary>
    /// The paper's recipe (section 5.1) as torchvision v1 builds it: ResNet-50-FPN with frozen batch norm and the
    /// top 3 stages trained, P6 from P5, L1 box loss, 800/1333 px, focal α 0.25 γ 2, prior 0.01; SGD momentum 0.9,
    /// weight decay 1e-4, LR 0.01 for 16 images, 500-iteration warm-up from LR/1000, x0.1 at 2/3 and 8/9 of
    /// 90 000 iterations, horizontal flip. These are the defaults of <see cref="RetinaNetOptions"/>,
    /// <see cref="TrainingOptions"/> and `retina train`; they assume an ImageNet-trained backbone.
    /// </summary>
    public static TrainingRecipe Paper { get; } = new()
    {
        Name = "paper",
        Description = "the paper (section 5.1): ResNet-50-FPN, frozen BN, 3 trained stages, SGD 0.01 per 16 images, 90k iterations, steps at 2/3 and 8/9, 800 px, flip",
        Model = new RetinaNetOptions(91),
        Training = new TrainingOptions { Iterations = 90000 },
    };

    /// <summary>
    /// torchvision's <c>retinanet_resnet50_fpn_v2</c> and its training recipe (pytorch/vision #5756): GroupNorm
    /// (32 groups) in the heads, GIoU box loss, P6/P7 from C5, trainable batch norm in the backbone (torchvision's v2
    /// builds <c>resnet50</c> without FrozenBatchNorm2d) with the top 3 stages trained; AdamW LR 1e-4 for 16 images,
    /// weight decay 0.05 and none on the norm layers' weights (<see cref="TrainingOptions.NormWeightDecay"/> 0), 26 epochs
    /// with x0.1 at epochs 16 and 22, torchvision's 1000-iteration linear warm-up from LR/1000, horizontal flip, and
    /// multi-scale training with the shorter side drawn per image from 480, 512, ... 800 px (max 1333; inference at 800).
    /// torchvision's reference scripts resize with <c>RandomShortestSize</c> in the data pipeline and then the model's
    /// transform resizes every image back to 800 px; here the sizes go to <see cref="RetinaNetOptions.TrainMinSizes"/>, so
    /// the network really sees them. The 41.5 COCO AP of torchvision's weights came from an ImageNet-trained backbone.
    /// </summary>
    public static TrainingRecipe TorchvisionV2 { get; } = new()
    {
        Name = "v2",
        Description = "torchvision retinanet_resnet50_fpn_v2: GroupNorm heads, GIoU box loss, P6/P7 from C5, trainable BN, AdamW 1e-4, weight decay 0.05 (0 on norm layers), 26 epochs with steps at 16 and 22, shorter side 480..800 px",
        Model = new RetinaNetOptions(91)
        {
            HeadGroupNorm = true, BoxLoss = BoxLossKind.GIoU, P6FromC5 = true, BackboneNorm = BackboneNormKind.BatchNorm,
            TrainMinSizes = [.. Enumerable.Range(0, 11).Select(i => 480 + 32 * i)],
        },
        Training = new TrainingOptions
        {
            Epochs = 26, Optimizer = OptimizerKind.AdamW, BaseLearningRate = 1e-4, WeightDecay = 0.05, NormWeightDecay = 0,
            WarmupIterations = 1000, WarmupFactor = 1e-3, Decay = LearningRateDecay.Step, StepMilestones = [16.0 / 26, 22.0 / 26],
        },
    };

    /// <summary>
    /// The recipe of `retina demo` (Fashion-MNIST scenes of <paramref name="imageSize"/> px). Pretrained (the default):
    /// ML.NET's ImageNet ResNet-18 (<see cref="MlNetResNet18"/>) with frozen batch norm and every stage trained (the glyphs
    /// on textured backgrounds are far from ImageNet photos; measured, see the README), its own image normalisation.
    /// From scratch (<paramref name="pretrained"/> false, for the comparison): torchvision's ResNet-18 with trainable batch
    /// norm and every stage trained. Both: GroupNorm heads, FPN width 64 (32 for the quick run), input
    /// <paramref name="imageSize"/> px, anchors one octave smaller than the paper's (16..256 px on P3..P7, the glyphs are 15
    /// to 112 px); AdamW rather than the paper's SGD (on the scenes at 128 px, batch 8, after 20 steps the loss was 1.645
    /// with AdamW 5e-4 and 1.720 with SGD 0.02), LR 5e-4, weight decay 0.05, 100-iteration warm-up (4 for the quick run),
    /// cosine decay to 0 (on the demo's scenes, seed 0, 2585 iterations: AP 0.611 against 0.593 for x0.1 at 2/3 and 8/9 in
    /// 2298 iterations and 0.575 with LR 1e-3; 10 000 scenes instead of 2000 gave 0.617), gradient norm clipped at 1, batch 8
    /// (4 quick), horizontal flip. The demo chooses the run
    /// length by timing a few steps (<see cref="TrainingOptions.Iterations"/> here is a nominal 1000).
    /// </summary>
    /// <param name="imageSize">The scene side in pixels (the input size: min and max size).</param>
    /// <param name="quick">The quick smoke run's smaller model and batch.</param>
    /// <param name="pretrained">Start from ML.NET's ImageNet ResNet-18 (true) or from random weights.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="imageSize"/> is below 1.</exception>
    /// <exception cref="FileNotFoundException">Pretrained, and the package's files are not beside the program.</exception>
    public static TrainingRecipe Demo(int imageSize = 128, bool quick = false, bool pretrained = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(imageSize, 1);
        var weights = pretrained ? BackboneWeights.ImageNet : BackboneWeights.Random;
        var model = weights.Configure(new RetinaNetOptions(10)
        {
            MinSize = imageSize, MaxSize = imageSize, FpnChannels = quick ? 32 : 64, HeadGroupNorm = true,
            SizeDivisible = 32, AnchorSizes = OctaveAnchorSizes(0.5),
        }, backbone: ResNetDepth.ResNet18, trainableLayers: 5);
        return new TrainingRecipe
        {
            Name = "demo",
            Description = pretrained
                ? "retina demo: ImageNet ResNet-18-FPN (ML.NET) with frozen BN, all stages trained, GroupNorm heads, anchors 16..256 px, AdamW 5e-4, gradient clip 1"
                : "retina demo from scratch: ResNet-18-FPN with trainable BN, GroupNorm heads, anchors 16..256 px, AdamW 5e-4, gradient clip 1",
            Model = model,
            BackboneWeights = weights,
            Training = new TrainingOptions
            {
                Iterations = 1000, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.05, BaseLearningRate = 5e-4,
                WarmupIterations = quick ? 4 : 100, WarmupFactor = 0.001, Decay = LearningRateDecay.Cosine, GradientClipNorm = 1,
            },
            BatchSize = quick ? 4 : 8,
        };
    }

    /// <summary>The names <see cref="Named"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["paper", "v2", "demo"];

    /// <summary>The recipe called <paramref name="name"/> (case-insensitive; "torchvision-v2" is also accepted for "v2").</summary>
    /// <exception cref="ArgumentException">An unknown name; the message lists the known ones.</exception>
    public static TrainingRecipe Named(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "paper" => Paper,
            "v2" or "torchvision-v2" => TorchvisionV2,
            "demo" => Demo(),
            _ => throw new ArgumentException($"unknown recipe '{name}' (known: {string.Join(", ", Names)})", nameof(name)),
        };
    }
}
