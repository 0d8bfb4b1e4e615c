// Reference: Lin et al. 2017, "Focal Loss for Dense Object Detection" (sections 3-5), with torchvision 0.14
// models/detection/retinanet.py as the numerical reference: module tree and state_dict keys of
// retinanet_resnet50_fpn (backbone.body.*, backbone.fpn.*, head.*), loss normalisation of RetinaNet.compute_loss
// (per image: focal loss over non-ignored anchors / max(1, #fg), box loss over fg / max(1, #fg); mean over images),
// inference of RetinaNet.postprocess_detections followed by GeneralizedRCNNTransform.postprocess.
// Optional loss normalisation of detectron2 RetinaNet.losses: batch sums / running average of max(1, #fg in batch).
using RetinaSharp.Geometry;
using RetinaSharp.Losses;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace RetinaSharp.Modeling;

/// <summary>The two training losses of RetinaNet (torchvision's "classification" and "bbox_regression"), scalars.</summary>
/// <param name="Classification">Focal loss, normalised per image by its foreground anchor count, averaged over images
/// (or, with <see cref="LossNormalizerKind.RunningAverage"/>, the batch sum over the running normaliser).</param>
/// <param name="BoxRegression">Box loss over foreground anchors, normalised the same way.</param>
public sealed record RetinaNetLosses(Tensor Classification, Tensor BoxRegression)
{
    /// <summary>Classification + BoxRegression (the quantity to minimise).</summary>
    public Tensor Total => Classification.add(BoxRegression, TorchScalars.One);
}

/// <summary>ResNet + FPN backbone as torchvision's <c>BackboneWithFPN</c> (children "body" and "fpn").</summary>
public sealed class ResNetFpnBackbone : Module<Tensor, Tensor[]>
{
    private readonly ResNetBody body;
    private readonly FeaturePyramidNetwork fpn;

    /// <summary>Builds the ResNet trunk (with <paramref name="norm"/> batch norm) and the FPN on C3-C5.</summary>
    public ResNetFpnBackbone(ResNetDepth depth, long fpnChannels, bool p6FromC5, BackboneNormKind norm = BackboneNormKind.Frozen) : base("BackboneWithFPN")
    {
        body = new ResNetBody(depth, norm);
        fpn = new FeaturePyramidNetwork([.. body.StageChannels.Skip(1)], fpnChannels, p6FromC5);
        register_module("body", body);
        register_module("fpn", fpn);
    }

    /// <summary>The ResNet trunk.</summary>
    public ResNetBody Body => body;
    /// <summary>The feature pyramid.</summary>
    public FeaturePyramidNetwork Fpn => fpn;

    /// <summary>Input (N, 3, H, W) normalised; output [P3 … P7].</summary>
    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var c = body.forward(x);
        var p = fpn.forward(c);
        foreach (var t in p) t.MoveToOuterDisposeScope();
        return p;
    }
}

/// <summary>
/// The RetinaNet detector: ResNet-FPN backbone, classification and box subnets, anchors, focal-loss training and
/// inference. Parameter names equal torchvision's RetinaNet state_dict keys. <c>forward</c> maps a preprocessed
/// batch (N, 3, H, W) to the concatenated head outputs ((N, ΣHWA, K) logits, (N, ΣHWA, 4) deltas).
/// </summary>
public sealed class RetinaNet : Module<Tensor, (Tensor ClassLogits, Tensor BoxDeltas)>
{
    private readonly ResNetFpnBackbone backbone;
    private readonly RetinaNetHead head;
    // Non-module helpers: kept out of the module tree (no registration).
    private DetectionTransform _transform;
    private AnchorGenerator _anchorGenerator;
    private readonly BoxCoder _boxCoder = new(1, 1, 1, 1);
    private Matcher _matcher;
    private ScalarType? _inferenceDtype;
    private bool _channelsLast;
    // Training state of LossNormalizerKind.RunningAverage: a plain double, so it is not in the state_dict.
    private double _runningLossNormalizer = InitialRunningLossNormalizer;

    /// <summary>The starting value of <see cref="RunningLossNormalizer"/>: 100 (detectron2's <c>loss_normalizer</c>).</summary>
    public const double InitialRunningLossNormalizer = 100;

    /// <summary>
    /// The running foreground-anchor count n of <see cref="LossNormalizerKind.RunningAverage"/> (detectron2
    /// <c>RetinaNet.loss_normalizer</c>): starts at <see cref="InitialRunningLossNormalizer"/>; each
    /// <see cref="ComputeLossesFromHeadOutputs"/> call in training mode sets n ← m·n + (1 - m)·max(#fg in batch, 1),
    /// m = <see cref="RetinaNetOptions.LossNormalizerMomentum"/>. It is training state, not a weight: it is not in the
    /// state_dict (whose keys stay torchvision's), so a trainer saves and restores it beside its checkpoint through
    /// this property. Unused with <see cref="LossNormalizerKind.PerImage"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Set to a value that is not finite and positive.</exception>
    public double RunningLossNormalizer
    {
        get => _runningLossNormalizer;
        set
        {
            if (!(double.IsFinite(value) && value > 0))
                throw new ArgumentException($"RunningLossNormalizer = {value}: must be finite and positive", nameof(value));
            _runningLossNormalizer = value;
        }
    }

    /// <summary>Builds the model with the paper's initialisation (heads N(0, 0.01²), prior bias) and torchvision's
    /// (ResNet Kaiming normal, FPN Kaiming uniform). Load weights with <see cref="RetinaNetCheckpoint"/>.</summary>
    /// <exception cref="ArgumentException">An option is out of range (see <see cref="RetinaNetOptions.Validate"/>).</exception>
    public RetinaNet(RetinaNetOptions options) : base("RetinaNet")
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _ = TorchRuntime.OneDnn; // the process's libtorch configuration is decided before the first network exists
        backbone = new ResNetFpnBackbone(options.Backbone, options.FpnChannels, options.P6FromC5, options.BackboneNorm);
        head = new RetinaNetHead(options.FpnChannels, options.AnchorsPerLocation, options.NumClasses, options.PriorProbability, options.HeadGroupNorm);
        register_module("backbone", backbone);
        register_module("head", head);
        backbone.Body.SetTrainableLayers(options.TrainableBackboneLayers);
        (_transform, _anchorGenerator, _matcher) = Helpers(options);
    }

    private static (DetectionTransform, AnchorGenerator, Matcher) Helpers(RetinaNetOptions o) =>
        (new DetectionTransform(o), new AnchorGenerator([.. o.EffectiveAnchorSizes().Select(l => l.Select(v => (double)v).ToArray())], o.AspectRatios),
         new Matcher(o.FgIouThreshold, o.BgIouThreshold, allowLowQualityMatches: true));

    /// <summary>The current configuration (architecture fixed at construction; the rest see <see cref="Reconfigure"/>).</summary>
    public RetinaNetOptions Options { get; private set; }

    /// <summary>
    /// The device the parameters live on (move the model with <c>to(device)</c>, PyTorch's <c>model.to(device)</c>).
    /// <see cref="Detect"/> and <see cref="ComputeLosses"/> move images and targets there; detections come back on it.
    /// </summary>
    public Device Device => parameters().FirstOrDefault()?.device ?? CPU;

    // The images on the model's device: a caller's CPU tensors (ImageIO.ToTensor) follow a model moved to a GPU.
    private List<Tensor> OnModelDevice(IReadOnlyList<Tensor> images)
    {
        var device = Device;
        return images.Select(i => i is null || (i.device_type == device.type && i.device_index == device.index) ? i! : i.to(device)).ToList();
    }

    /// <summary>
    /// Replaces the settings that do not change the weights: transform sizes, mean/std, anchor sizes (same count per
    /// level), inference thresholds, matching thresholds, focal α/γ, box loss, loss normaliser
    /// (kind and momentum; <see cref="RunningLossNormalizer"/> keeps its value), trainable backbone layers.
    /// </summary>
    /// <exception cref="ArgumentException">An option is invalid, or NumClasses, Backbone, BackboneNorm, P6FromC5, FpnChannels,
    /// HeadGroupNorm or the anchors per location differ.</exception>
    public void Reconfigure(RetinaNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var o = Options;
        if (options.NumClasses != o.NumClasses || options.Backbone != o.Backbone || options.BackboneNorm != o.BackboneNorm || options.P6FromC5 != o.P6FromC5 ||
            options.FpnChannels != o.FpnChannels || options.HeadGroupNorm != o.HeadGroupNorm || options.AnchorsPerLocation != o.AnchorsPerLocation)
            throw new ArgumentException("Reconfigure cannot change NumClasses, Backbone, BackboneNorm, P6FromC5, FpnChannels, HeadGroupNorm or the anchors per location; build a new RetinaNet", nameof(options));
        Options = options;
        (_transform, _anchorGenerator, _matcher) = Helpers(options);
        if (options.TrainableBackboneLayers != o.TrainableBackboneLayers) backbone.Body.SetTrainableLayers(options.TrainableBackboneLayers);
    }
    /// <summary>The ResNet-FPN backbone (state_dict prefix "backbone.").</summary>
    public ResNetFpnBackbone Backbone => backbone;
    /// <summary>The two subnets (state_dict prefix "head.").</summary>
    public RetinaNetHead Head => head;
    /// <summary>The resize / normalise / pad transform.</summary>
    public DetectionTransform Transform => _transform;

    /// <summary>
    /// Switches to eval mode and speeds up inference: folds every batch norm of the backbone into its
    /// convolution (same results up to float rounding; trainable BatchNorm folds its running statistics), optionally runs
    /// the network in bfloat16 (outputs stay float32; post-processing runs in float32), and optionally keeps activations
    /// channels-last (NHWC strides; same values up to float rounding). The folded weights are a snapshot of the current
    /// parameters: call again after loading weights. bfloat16 and channels-last replace the FPN and head parameters, so the
    /// model is then for inference only (reload a checkpoint to train). Training-mode calls (<see cref="ComputeLosses"/>
    /// after <c>train()</c>) never use the folded path.
    /// </summary>
    /// <param name="foldBatchNorm">Fold frozen batch norm into the convolutions (forced on with bfloat16 or channels-last).</param>
    /// <param name="bfloat16">Run convolutions in bfloat16 (AVX512-BF16 CPUs gain most).</param>
    /// <param name="channelsLast">Run the network channels-last (<see cref="MemoryLayout"/>; PyTorch's
    /// <c>model.to(memory_format=torch.channels_last)</c>); ignored (NCHW) where <see cref="TorchRuntime.ChannelsLastSupported"/>
    /// is false (CPUs that report no cache sizes, see <see cref="Runtime.OneDnnPolicy"/>). On by default: measured 0.70x torchvision's network time in
    /// float32 and 0.26x with bfloat16 at 800x800, against 0.81x and 0.60x without it (docs/benchmarks.md, inference).</param>
    public void PrepareForInference(bool foldBatchNorm = true, bool bfloat16 = false, bool channelsLast = true)
    {
        eval();
        // Channels-last reaches oneDNN's brgemm kernels, which crash on CPUs that report no cache sizes (TorchRuntime).
        channelsLast &= TorchRuntime.ChannelsLastSupported;
        var dtype = bfloat16 ? ScalarType.BFloat16 : (ScalarType?)null;
        backbone.Body.SetFoldedBatchNorm(foldBatchNorm || bfloat16 || channelsLast, dtype, channelsLast);
        if (bfloat16)
        {
            backbone.Fpn.to(ScalarType.BFloat16);
            head.to(ScalarType.BFloat16);
        }
        if (channelsLast)
        {
            MemoryLayout.ConvWeightsToChannelsLast(backbone.Fpn);
            MemoryLayout.ConvWeightsToChannelsLast(head);
        }
        _inferenceDtype = dtype;
        _channelsLast = channelsLast;
    }

    /// <summary>True after <see cref="PrepareForInference"/>(channelsLast: true) on a machine where channels-last is
    /// supported (<see cref="TorchRuntime.ChannelsLastSupported"/>): eval-mode forwards run channels-last.</summary>
    public bool ChannelsLast => _channelsLast;

    /// <summary>The dtype inference runs in: null = float32, or bfloat16 after <see cref="PrepareForInference"/>(bfloat16: true).</summary>
    public ScalarType? InferenceDtype => _inferenceDtype;

    /// <summary>
    /// Head outputs per pyramid level for a preprocessed batch (N, 3, H, W): class logits (N, H_l·W_l·A, K),
    /// box deltas (N, H_l·W_l·A, 4), and the feature sizes (H_l, W_l) of P3..P7.
    /// </summary>
    public (Tensor[] ClassLogits, Tensor[] BoxDeltas, (long H, long W)[] FeatureSizes) HeadOutputsPerLevel(Tensor batch)
    {
        using var scope = NewDisposeScope();
        if (_inferenceDtype is { } d && !training) batch = batch.to(d);
        if (_channelsLast && !training) batch = MemoryLayout.ToChannelsLast(batch);
        else if (!TorchRuntime.ChannelsLastSupported && MemoryLayout.IsChannelsLast(batch)) batch = batch.contiguous();
        Tensor[] features, cls, box;
        using (TorchRuntime.NetworkForward())
        {
            features = backbone.forward(batch);
            (cls, box) = head.forward(features);
        }
        var sizes = features.Select(f => (f.shape[2], f.shape[3])).ToArray();
        if (_inferenceDtype is not null && !training)
        {
            cls = [.. cls.Select(c => c.to(ScalarType.Float32))];
            box = [.. box.Select(b => b.to(ScalarType.Float32))];
        }
        foreach (var t in cls.Concat(box)) t.MoveToOuterDisposeScope();
        return (cls, box, sizes);
    }

    /// <summary>Concatenated head outputs for a preprocessed batch (N, 3, H, W): ((N, ΣHWA, K), (N, ΣHWA, 4)); torchvision's head_outputs.</summary>
    public override (Tensor ClassLogits, Tensor BoxDeltas) forward(Tensor batch)
    {
        using var scope = NewDisposeScope();
        var (cls, box, _) = HeadOutputsPerLevel(batch);
        return (cat(cls, 1).MoveToOuterDisposeScope(), cat(box, 1).MoveToOuterDisposeScope());
    }

    /// <summary>Anchors per level (H_l·W_l·A, 4) XYXY pixels of the padded batch frame.</summary>
    public Tensor[] AnchorsPerLevel((long H, long W) paddedSize, IReadOnlyList<(long H, long W)> featureSizes, Device? device = null) =>
        _anchorGenerator.AnchorsPerLevel(paddedSize, featureSizes, device);

    /// <summary>
    /// The training losses for a batch (torchvision <c>RetinaNet.forward</c> in training mode). Images are resized
    /// and normalised as in inference, except that in training mode (<c>train()</c>) each image's shorter side is drawn
    /// from <see cref="RetinaNetOptions.TrainMinSizes"/> when given (multi-scale training); target boxes are scaled with them.
    /// </summary>
    /// <param name="images">Each (C, H, W), C = 1 or 3, floating point in [0, 1] (float64/float16 are converted to float32; uint8 is rejected, see <see cref="DetectionTransform.CheckImage"/>); sizes may differ.</param>
    /// <param name="targets">One per image: boxes (G, 4) XYXY in that image's pixels (G may be 0), labels (G) in 0..K-1.</param>
    /// <exception cref="ArgumentException">Counts differ, a bad image (wrong shape or dtype, NaN/Inf values), boxes not (G, 4), degenerate boxes (x2 ≤ x1 or y2 ≤ y1), labels out of range.</exception>
    public RetinaNetLosses ComputeLosses(IReadOnlyList<Tensor> images, IReadOnlyList<DetectionTarget> targets)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(targets);
        if (images.Count != targets.Count)
            throw new ArgumentException($"images has {images.Count} entries but targets has {targets.Count}", nameof(targets));
        using var scope = NewDisposeScope();
        for (int i = 0; i < targets.Count; i++) CheckTarget(targets[i], i);
        var batch = _transform.Preprocess(OnModelDevice(images), training);
        var (cls, box) = forward(batch.Images);
        var anchorsLevels = AnchorsPerLevel(batch.PaddedSize, FeatureSizes(batch.PaddedSize), batch.Images.device);
        var anchors = cat(anchorsLevels, 0);
        var resizedTargets = new List<DetectionTarget>();
        for (int i = 0; i < targets.Count; i++)
            resizedTargets.Add(targets[i] with { Boxes = DetectionTransform.ScaleBoxes(targets[i].Boxes.to(batch.Images.device), batch.OriginalSizes[i], batch.ImageSizes[i]) });
        var losses = ComputeLossesFromHeadOutputs(cls, box, anchors, resizedTargets);
        return new RetinaNetLosses(losses.Classification.MoveToOuterDisposeScope(), losses.BoxRegression.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The losses from head outputs and targets already in the resized frame (torchvision
    /// <c>RetinaNetHead.compute_loss</c> after matching). With <see cref="LossNormalizerKind.RunningAverage"/>
    /// (detectron2 <c>RetinaNet.losses</c>) both losses are the batch's sums divided by the updated
    /// <see cref="RunningLossNormalizer"/>; the update is stored only in training mode (in eval mode the losses use the
    /// value the update would give, and <see cref="RunningLossNormalizer"/> is left unchanged).
    /// </summary>
    /// <param name="classLogits">(N, ΣHWA, K).</param>
    /// <param name="boxDeltas">(N, ΣHWA, 4).</param>
    /// <param name="anchors">(ΣHWA, 4) XYXY pixels, the same for every image of the batch.</param>
    /// <param name="targets">Per image, boxes in the resized frame.</param>
    public RetinaNetLosses ComputeLossesFromHeadOutputs(Tensor classLogits, Tensor boxDeltas, Tensor anchors, IReadOnlyList<DetectionTarget> targets)
    {
        using var scope = NewDisposeScope();
        long n = classLogits.shape[0];
        bool perImage = Options.LossNormalizer == LossNormalizerKind.PerImage;
        var clsLosses = new List<Tensor>();
        var boxLosses = new List<Tensor>();
        long batchFg = 0;
        for (int i = 0; i < n; i++)
        {
            var matched = MatchAnchors(targets[i], anchors);
            var fgMask = matched.ge(TorchScalars.Zero);
            long numFg = fgMask.sum().item<long>();
            batchFg += numFg;
            double normalizer = perImage ? Math.Max(1, numFg) : 1.0;   // RunningAverage: plain sums here
            var labels = targets[i].Labels.to(ScalarType.Int64).to(matched.device);
            var classIndices = numFg == 0 ? matched : where(fgMask, labels[matched.clamp_min(TorchScalars.Zero)], matched);
            clsLosses.Add(FocalLoss.SigmoidFocalLossFromIndices(classLogits[i], classIndices, Options.Alpha, Options.Gamma,
                FocalReduction.Normalized, normalizer));
            var fg = nonzero(fgMask).squeeze(1);
            var gt = targets[i].Boxes.to(anchors.device)[matched[fg]];
            var pred = boxDeltas[i][fg];
            var fgAnchors = anchors[fg];
            Tensor boxSum = Options.BoxLoss switch
            {
                BoxLossKind.L1 => functional.l1_loss(pred, _boxCoder.Encode(gt, fgAnchors), reduction: Reduction.Sum),
                BoxLossKind.SmoothL1 => functional.smooth_l1_loss(pred, _boxCoder.Encode(gt, fgAnchors), reduction: Reduction.Sum, beta: Options.SmoothL1Beta),
                _ => BoxOps.GeneralizedIouLoss(_boxCoder.Decode(pred, fgAnchors), gt).sum(),
            };
            using var perImageDivisor = normalizer.ToScalar();
            boxLosses.Add(boxSum.div(perImageDivisor));
        }
        double divisor = n;
        if (!perImage)
        {
            double m = Options.LossNormalizerMomentum;
            divisor = m * _runningLossNormalizer + (1 - m) * Math.Max(1, batchFg);
            if (training) _runningLossNormalizer = divisor;
        }
        using var d = divisor.ToScalar();
        var clsLoss = stack(clsLosses).sum().div(d);
        var boxLoss = stack(boxLosses).sum().div(d);
        return new RetinaNetLosses(clsLoss.MoveToOuterDisposeScope(), boxLoss.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Per anchor: the index of the matched ground-truth box, -1 background, -2 ignored (torchvision
    /// <c>Matcher(fg, bg, allow_low_quality_matches=True)</c> on IoU(gt, anchors)); all -1 for an image without boxes.
    /// Crowd boxes (<see cref="DetectionTarget.IsCrowd"/>) are not matched; non-foreground anchors overlapping one by at
    /// least <see cref="RetinaNetOptions.BgIouThreshold"/> are ignored.
    /// </summary>
    /// <returns>(ΣHWA) int64; indices refer to <paramref name="target"/>'s boxes.</returns>
    public Tensor MatchAnchors(DetectionTarget target, Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var boxes = target.Boxes.to(anchors.device);
        long a = anchors.shape[0];
        if (boxes.shape[0] == 0) return full(a, TorchScalars.MinusOne, dtype: ScalarType.Int64, device: anchors.device).MoveToOuterDisposeScope();
        if (target.IsCrowd is null || !target.IsCrowd.any().item<bool>())
            return _matcher.Match(BoxOps.Iou(boxes, anchors)).MoveToOuterDisposeScope();
        var crowd = target.IsCrowd.to(ScalarType.Bool).to(anchors.device);
        var keepIdx = nonzero(crowd.logical_not()).squeeze(1);
        Tensor matched;
        if (keepIdx.shape[0] == 0)
            matched = full(a, TorchScalars.MinusOne, dtype: ScalarType.Int64, device: anchors.device);
        else
        {
            var raw = _matcher.Match(BoxOps.Iou(boxes[keepIdx], anchors));   // indices into the non-crowd boxes
            matched = where(raw.ge(TorchScalars.Zero), keepIdx[raw.clamp_min(TorchScalars.Zero)], raw);
        }
        var crowdIou = BoxOps.Iou(boxes[nonzero(crowd).squeeze(1)], anchors).max(0).values;
        using var bg = Options.BgIouThreshold.ToScalar();
        matched = where(matched.lt(TorchScalars.Zero).logical_and(crowdIou.ge(bg)), full_like(matched, TorchScalars.MinusTwo), matched);
        return matched.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Detects objects (torchvision <c>RetinaNet.forward</c> in eval mode): per level scores above
    /// <see cref="RetinaNetOptions.ScoreThreshold"/>, top <see cref="RetinaNetOptions.TopkCandidates"/>, decode, clip, class-aware NMS,
    /// best <see cref="RetinaNetOptions.DetectionsPerImage"/>; boxes mapped back to each input image's pixels. Runs without gradients.
    /// </summary>
    /// <param name="images">Each (C, H, W), C = 1 or 3, floating point in [0, 1] (float64/float16 are converted to float32; uint8 is rejected, see <see cref="DetectionTransform.CheckImage"/>); sizes may differ.</param>
    /// <returns>One <see cref="Detections"/> per image, sorted by decreasing score.</returns>
    /// <exception cref="ArgumentException">An empty list or a bad image: wrong shape, not floating point, or containing NaN/Inf (named as <c>images[i]</c>).</exception>
    public IReadOnlyList<Detections> Detect(IReadOnlyList<Tensor> images)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        ArgumentNullException.ThrowIfNull(images);
        var batch = _transform.Preprocess(OnModelDevice(images));
        var (cls, box, sizes) = HeadOutputsPerLevel(batch.Images);
        var anchors = AnchorsPerLevel(batch.PaddedSize, sizes, batch.Images.device);
        var post = new RetinaNetPostProcessor(_boxCoder, Options.ScoreThreshold, Options.TopkCandidates, Options.NmsThreshold, Options.DetectionsPerImage);
        var result = new List<Detections>();
        for (int i = 0; i < images.Count; i++)
        {
            var d = post.Process([.. cls.Select(c => c[i])], [.. box.Select(b => b[i])], anchors, batch.ImageSizes[i]);
            var boxes = DetectionTransform.ScaleBoxes(d.Boxes, batch.ImageSizes[i], batch.OriginalSizes[i]);
            result.Add(new Detections(boxes.MoveToOuterDisposeScope(), d.Scores.MoveToOuterDisposeScope(), d.Labels.MoveToOuterDisposeScope()));
        }
        return result;
    }

    /// <summary>
    /// As <see cref="Detect(IReadOnlyList{Tensor})"/>, but each image's detections are those it gets alone
    /// (<c>Detect([image])</c>): images share a forward pass only with images of the same padded size
    /// (<see cref="DetectionTransform.PaddedSize"/>), one pass per size, at most <paramref name="images"/>.Count passes. In a
    /// padded batch (torchvision's way) a smaller image's features also see the zero padding up to the largest image: its
    /// convolutions near the right and bottom edges read other values, and GroupNorm heads (<see cref="RetinaNetOptions.HeadGroupNorm"/>)
    /// take their statistics over the padding too, which moves every score. `retina detect`, `retina eval` and
    /// <see cref="Inference.Detector"/> use this, so a result never depends on which images were batched with it.
    /// </summary>
    /// <param name="images">As for <see cref="Detect(IReadOnlyList{Tensor})"/>.</param>
    /// <returns>One <see cref="Detections"/> per image, in order.</returns>
    /// <exception cref="ArgumentException">As for <see cref="Detect(IReadOnlyList{Tensor})"/>.</exception>
    public IReadOnlyList<Detections> DetectIndependently(IReadOnlyList<Tensor> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        // Shapes that are not (C, H, W) get their own pass, where Detect names them.
        var keys = images.Select((im, i) => im is not null && im.dim() == 3 && im.shape[1] > 0 && im.shape[2] > 0
            ? _transform.PaddedSize(im.shape[1], im.shape[2]) : (-1 - i, -1L)).ToArray();
        var groups = Enumerable.Range(0, images.Count).GroupBy(i => keys[i]).ToList();
        if (groups.Count <= 1) return Detect(images);
        var result = new Detections[images.Count];
        foreach (var g in groups)
        {
            int[] idx = [.. g];
            var found = Detect([.. idx.Select(i => images[i])]);
            for (int j = 0; j < idx.Length; j++) result[idx[j]] = found[j];
        }
        return result;
    }

    /// <summary>Feature sizes of P3..P7 for a padded input size: each level halves with rounding up (conv stride 2, pad 1 / pool 3x3 pad 1).</summary>
    public static (long H, long W)[] FeatureSizes((long H, long W) paddedSize)
    {
        static long Half(long v) => (v - 1) / 2 + 1;
        var sizes = new (long, long)[5];
        long h = paddedSize.H, w = paddedSize.W;
        for (int i = 0; i < 3; i++) { h = Half(h); w = Half(w); }   // conv1, maxpool, layer2 → stride 8
        for (int l = 0; l < 5; l++) { sizes[l] = (h, w); h = Half(h); w = Half(w); }
        return sizes;
    }

    private void CheckTarget(DetectionTarget t, int i)
    {
        if (t is null) throw new ArgumentException($"targets[{i}] is null", "targets");
        if (t.Boxes.dim() != 2 || t.Boxes.shape[1] != 4)
            throw new ArgumentException($"targets[{i}].Boxes: expected (G, 4), got shape [{string.Join(", ", t.Boxes.shape)}]", "targets");
        if (t.Labels.dim() != 1 || t.Labels.shape[0] != t.Boxes.shape[0])
            throw new ArgumentException($"targets[{i}].Labels: expected ({t.Boxes.shape[0]}), got shape [{string.Join(", ", t.Labels.shape)}]", "targets");
        if (t.Boxes.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        var b = t.Boxes.to(ScalarType.Float32);
        var bad = nonzero(b[.., 2].le(b[.., 0]).logical_or(b[.., 3].le(b[.., 1])).logical_or(b.isfinite().all(1).logical_not()));
        if (bad.shape[0] > 0)
        {
            long j = bad[0, 0].item<long>();
            var v = b[j].data<float>().ToArray();
            throw new ArgumentException($"targets[{i}].Boxes[{j}] = [{string.Join(", ", v)}]: degenerate box (needs x2 > x1 and y2 > y1, finite)", "targets");
        }
        var lab = t.Labels.to(ScalarType.Int64);
        long min = lab.min().item<long>(), max = lab.max().item<long>();
        if (min < 0 || max >= Options.NumClasses)
            throw new ArgumentException($"targets[{i}].Labels: value {(min < 0 ? min : max)} outside 0..{Options.NumClasses - 1}", "targets");
    }
}
