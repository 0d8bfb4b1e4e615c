// Reference: torchvision 0.14 retinanet_resnet50_fpn / RetinaNet.__init__ defaults and the paper
// (Lin et al. 2017, "Focal Loss for Dense Object Detection", sections 4 and 5.1).
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RetinaSharp.Modeling;

/// <summary>The ResNet depth of the backbone (He et al. 2016; torchvision <c>resnet18</c> … <c>resnet101</c>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ResNetDepth>))]
public enum ResNetDepth
{
    /// <summary>ResNet-18: basic blocks [2, 2, 2, 2], C5 has 512 channels.</summary>
    ResNet18,
    /// <summary>ResNet-34: basic blocks [3, 4, 6, 3], C5 has 512 channels.</summary>
    ResNet34,
    /// <summary>ResNet-50: bottleneck blocks [3, 4, 6, 3], C5 has 2048 channels.</summary>
    ResNet50,
    /// <summary>ResNet-101: bottleneck blocks [3, 4, 23, 3], C5 has 2048 channels.</summary>
    ResNet101,
    /// <summary>The ImageNet ResNet-18 that ML.NET ships (NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>, a CNTK 2.6
    /// export): basic blocks [2, 2, 2, 3] (layer4 has a third block), stride-2 3x3 convolutions and the max-pool padded
    /// top/left by 1 and bottom/right by 0, conv1 by 3 and 2; C5 has 512 channels. Same state_dict keys as torchvision's
    /// resnet18 plus <c>layer4.2.*</c>. Weights: <see cref="Pretrained.MlNetResNet18"/>.</summary>
    ResNet18Cntk,
}

/// <summary>The normalisation layers of the ResNet backbone.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<BackboneNormKind>))]
public enum BackboneNormKind
{
    /// <summary>torchvision's FrozenBatchNorm2d (fixed statistics and affine, identity at init): the default, for
    /// pretrained weights; state_dict keys weight, bias, running_mean, running_var.</summary>
    Frozen,
    /// <summary>Trainable nn.BatchNorm2d with running statistics (batch statistics in train mode, running ones in eval
    /// mode), for training from scratch; state_dict adds num_batches_tracked (torchvision resnet with norm_layer=BatchNorm2d).</summary>
    BatchNorm,
    /// <summary>GroupNorm with 32 groups (Wu and He 2018), trainable, independent of the batch size; for training from
    /// scratch with small batches. state_dict keys weight and bias. Does not fold into the convolutions for inference.</summary>
    GroupNorm,
}

/// <summary>The box regression loss over foreground anchors (torchvision <c>_box_loss</c> types).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<BoxLossKind>))]
public enum BoxLossKind
{
    /// <summary>L1 on encoded deltas, summed (torchvision v1 default, "l1").</summary>
    L1,
    /// <summary>Smooth L1 on encoded deltas with <see cref="RetinaNetOptions.SmoothL1Beta"/>, summed (the paper; "smooth_l1").</summary>
    SmoothL1,
    /// <summary>1 - GIoU between decoded and ground-truth boxes, summed (torchvision v2, "giou").</summary>
    GIoU,
}

/// <summary>How the classification and box losses are normalised (issue 4: torchvision's choice, detectron2's as an option).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LossNormalizerKind>))]
public enum LossNormalizerKind
{
    /// <summary>Per image: loss sums divided by that image's foreground anchor count (at least 1), then averaged over
    /// the images (torchvision 0.14 <c>RetinaNetHead.compute_loss</c>; the default).</summary>
    PerImage,
    /// <summary>Whole batch: loss sums over all images divided by a running average of the batch's foreground count,
    /// <c>n ← m·n + (1 - m)·max(#fg, 1)</c>, n starting at 100 (detectron2 <c>RetinaNet.losses</c>);
    /// see <see cref="RetinaNet.RunningLossNormalizer"/> and <see cref="RetinaNetOptions.LossNormalizerMomentum"/>.</summary>
    RunningAverage,
}

/// <summary>
/// Every setting of a <see cref="RetinaNet"/>, flat, with the paper's / torchvision v1's defaults. Stored as JSON
/// beside the weights by <see cref="RetinaNetCheckpoint"/>. Validate with <see cref="Validate"/> (the model constructor does).
/// </summary>
/// <param name="NumClasses">K, the number of object classes (no background class; sigmoid outputs). COCO: 91 slots in torchvision's checkpoint.</param>
public sealed record RetinaNetOptions(int NumClasses)
{
    /// <summary>The backbone depth. Default ResNet-50.</summary>
    public ResNetDepth Backbone { get; init; } = ResNetDepth.ResNet50;
    /// <summary>How many ResNet stages get gradients, counted from the top (layer4, layer3, layer2, layer1, conv1); 0..5. Default 3 (torchvision).</summary>
    public int TrainableBackboneLayers { get; init; } = 3;
    /// <summary>The backbone's normalisation layers. Default <see cref="BackboneNormKind.Frozen"/> (torchvision, pretrained
    /// weights); <see cref="BackboneNormKind.BatchNorm"/> for training from scratch (with TrainableBackboneLayers = 5: frozen
    /// stages keep updating their running statistics in train mode).</summary>
    public BackboneNormKind BackboneNorm { get; init; } = BackboneNormKind.Frozen;
    /// <summary>P6 from C5 (the paper, torchvision v2) instead of from P5 (torchvision v1, the default).</summary>
    public bool P6FromC5 { get; init; }
    /// <summary>FPN and head width in channels. Default 256.</summary>
    public int FpnChannels { get; init; } = 256;
    /// <summary>Target length in pixels of the shorter image side after resizing. Default 800.</summary>
    public int MinSize { get; init; } = 800;
    /// <summary>Upper bound in pixels of the longer side after resizing. Default 1333.</summary>
    public int MaxSize { get; init; } = 1333;
    /// <summary>The padded batch height and width are multiples of this (pixels). Default 32; 128 aligns P7 exactly.</summary>
    public int SizeDivisible { get; init; } = 32;
    /// <summary>Per-channel RGB mean subtracted from images in [0, 1]. Default ImageNet.</summary>
    public double[] ImageMean { get; init; } = [0.485, 0.456, 0.406];
    /// <summary>Per-channel RGB standard deviation images are divided by. Default ImageNet.</summary>
    public double[] ImageStd { get; init; } = [0.229, 0.224, 0.225];
    /// <summary>Anchor sizes per level P3..P7 in pixels (each level its own list), or null for torchvision's default (32·2^(i/3) …).</summary>
    public int[][]? AnchorSizes { get; init; }
    /// <summary>Anchor aspect ratios (height / width), shared by all levels. Default 0.5, 1, 2.</summary>
    public double[] AspectRatios { get; init; } = [0.5, 1.0, 2.0];
    /// <summary>Inference: minimum sigmoid score of a candidate. Default 0.05.</summary>
    public double ScoreThreshold { get; init; } = 0.05;
    /// <summary>Inference: class-aware NMS IoU threshold. Default 0.5.</summary>
    public double NmsThreshold { get; init; } = 0.5;
    /// <summary>Inference: detections kept per image. Default 100 (the paper); torchvision uses 300.</summary>
    public int DetectionsPerImage { get; init; } = 100;
    /// <summary>Inference: candidates kept per level before NMS. Default 1000.</summary>
    public int TopkCandidates { get; init; } = 1000;
    /// <summary>Training: anchors with IoU at least this are foreground. Default 0.5.</summary>
    public double FgIouThreshold { get; init; } = 0.5;
    /// <summary>Training: anchors with IoU below this are background; between the two, ignored. Default 0.4.</summary>
    public double BgIouThreshold { get; init; } = 0.4;
    /// <summary>Focal loss α (weight of positives), or null for none. Default 0.25.</summary>
    public double? Alpha { get; init; } = 0.25;
    /// <summary>Focal loss γ. Default 2.</summary>
    public double Gamma { get; init; } = 2.0;
    /// <summary>π: the classification bias starts at -log((1 - π) / π). Default 0.01.</summary>
    public double PriorProbability { get; init; } = 0.01;
    /// <summary>The box regression loss. Default L1 (torchvision v1).</summary>
    public BoxLossKind BoxLoss { get; init; } = BoxLossKind.L1;
    /// <summary>β of the smooth L1 box loss (used with <see cref="BoxLossKind.SmoothL1"/>). Default 1.0 (torchvision); detectron2 uses 0.1.</summary>
    public double SmoothL1Beta { get; init; } = 1.0;
    /// <summary>GroupNorm (32 groups) after each head convolution (torchvision v2). Default false.</summary>
    public bool HeadGroupNorm { get; init; }
    /// <summary>How the losses are normalised. Default <see cref="LossNormalizerKind.PerImage"/> (torchvision).</summary>
    public LossNormalizerKind LossNormalizer { get; init; } = LossNormalizerKind.PerImage;
    /// <summary>Momentum m in [0, 1) of the <see cref="LossNormalizerKind.RunningAverage"/> normaliser
    /// (n ← m·n + (1 - m)·max(#fg, 1)). Default 0.9 (detectron2). Unused with <see cref="LossNormalizerKind.PerImage"/>.</summary>
    public double LossNormalizerMomentum { get; init; } = 0.9;

    /// <summary>The anchor sizes actually used: <see cref="AnchorSizes"/> or torchvision's default
    /// (x, int(x·2^(1/3)), int(x·2^(2/3))) for x in 32, 64, 128, 256, 512.</summary>
    public int[][] EffectiveAnchorSizes() =>
        AnchorSizes ?? [.. new[] { 32, 64, 128, 256, 512 }.Select(x => new[] { x, (int)(x * Math.Pow(2, 1.0 / 3)), (int)(x * Math.Pow(2, 2.0 / 3)) })];

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and its value.</exception>
    public void Validate()
    {
        static void Fail(string field, object? value, string why) =>
            throw new ArgumentException($"RetinaNetOptions.{field} = {value}: {why}", field);
        if (NumClasses < 1) Fail(nameof(NumClasses), NumClasses, "must be at least 1");
        if (TrainableBackboneLayers is < 0 or > 5) Fail(nameof(TrainableBackboneLayers), TrainableBackboneLayers, "must be in 0..5");
        if (!Enum.IsDefined(BackboneNorm)) Fail(nameof(BackboneNorm), (int)BackboneNorm, "must be Frozen, BatchNorm or GroupNorm");
        if (FpnChannels < 1 || (HeadGroupNorm && FpnChannels % 32 != 0)) Fail(nameof(FpnChannels), FpnChannels, "must be positive (a multiple of 32 with HeadGroupNorm)");
        if (MinSize < 1) Fail(nameof(MinSize), MinSize, "must be positive");
        if (MaxSize < MinSize) Fail(nameof(MaxSize), MaxSize, $"must be at least MinSize ({MinSize})");
        if (SizeDivisible < 1) Fail(nameof(SizeDivisible), SizeDivisible, "must be positive");
        if (ImageMean is not { Length: 3 }) Fail(nameof(ImageMean), ImageMean?.Length, "must have 3 values (RGB)");
        if (ImageStd is not { Length: 3 } || ImageStd.Any(s => !(s > 0))) Fail(nameof(ImageStd), ImageStd is null ? null : string.Join(",", ImageStd), "must have 3 positive values");
        var sizes = EffectiveAnchorSizes();
        if (sizes.Length != 5 || sizes.Any(s => s.Length == 0 || s.Length != sizes[0].Length || s.Any(v => v <= 0)))
            Fail(nameof(AnchorSizes), sizes.Length, "must list 5 levels with the same positive number of sizes each");
        if (AspectRatios is not { Length: > 0 } || AspectRatios.Any(r => !(r > 0))) Fail(nameof(AspectRatios), AspectRatios?.Length, "must be non-empty and positive");
        if (ScoreThreshold is < 0 or >= 1 || double.IsNaN(ScoreThreshold)) Fail(nameof(ScoreThreshold), ScoreThreshold, "must be in [0, 1)");
        if (NmsThreshold is < 0 or > 1 || double.IsNaN(NmsThreshold)) Fail(nameof(NmsThreshold), NmsThreshold, "must be in [0, 1]");
        if (DetectionsPerImage < 1) Fail(nameof(DetectionsPerImage), DetectionsPerImage, "must be positive");
        if (TopkCandidates < 1) Fail(nameof(TopkCandidates), TopkCandidates, "must be positive");
        if (!(BgIouThreshold <= FgIouThreshold) || BgIouThreshold < 0 || FgIouThreshold > 1) Fail(nameof(BgIouThreshold), BgIouThreshold, $"must satisfy 0 <= BgIouThreshold <= FgIouThreshold ({FgIouThreshold}) <= 1");
        if (Alpha is { } a && !(a is >= 0 and <= 1)) Fail(nameof(Alpha), a, "must be in [0, 1] or null");
        if (!(Gamma >= 0)) Fail(nameof(Gamma), Gamma, "must be non-negative");
        if (!(PriorProbability is > 0 and < 1)) Fail(nameof(PriorProbability), PriorProbability, "must be in (0, 1)");
        if (!(SmoothL1Beta >= 0)) Fail(nameof(SmoothL1Beta), SmoothL1Beta, "must be non-negative");
        if (!Enum.IsDefined(LossNormalizer)) Fail(nameof(LossNormalizer), (int)LossNormalizer, "must be PerImage or RunningAverage");
        if (!(LossNormalizerMomentum is >= 0 and < 1)) Fail(nameof(LossNormalizerMomentum), LossNormalizerMomentum, "must be in [0, 1)");
    }

    /// <summary>The anchors per feature-map location A = sizes per level × aspect ratios.</summary>
    public int AnchorsPerLocation => EffectiveAnchorSizes()[0].Length * AspectRatios.Length;

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>Serialises to indented JSON (enums as names).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses JSON written by <see cref="ToJson"/> and validates it.</summary>
    /// <exception cref="JsonException">Malformed JSON.</exception>
    /// <exception cref="ArgumentException">A field is out of range.</exception>
    public static RetinaNetOptions FromJson(string json)
    {
        var o = JsonSerializer.Deserialize<RetinaNetOptions>(json, JsonOptions) ?? throw new JsonException("options JSON is null");
        o.Validate();
        return o;
    }
}
