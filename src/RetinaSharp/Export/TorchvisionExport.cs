// Reference: torchvision 0.14 detection models (retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2, resnet_fpn_backbone /
// BackboneWithFPN, RetinaNetHead(norm_layer=partial(GroupNorm, 32)), LastLevelP6P7, AnchorGenerator, RetinaNet keyword
// arguments) as documented; the state_dict is written as a PyTorch .pth zip through TorchSharp.PyBridge.
using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace RetinaSharp.Export;

/// <summary>
/// Writes a RetinaNet as a torchvision 0.14 state_dict (<c>.pth</c>) plus a JSON of the constructor arguments that
/// rebuild the same model in torchvision, so that <c>model.load_state_dict(torch.load(pth), strict=True)</c> succeeds and
/// the model gives the same detections. Used to scale training out on PyTorch DDP (docs/scale-out.md); the result
/// comes back through <see cref="RetinaNetCheckpoint.Load"/>.
/// </summary>
public static class TorchvisionExport
{
    /// <summary>Version of the JSON layout written by <see cref="Export"/> (field <c>format</c>).</summary>
    public const string JsonFormat = "retinasharp-torchvision-export/1";

    /// <summary>
    /// The reasons torchvision 0.14 cannot hold <paramref name="options"/>'s architecture, each naming the option and what
    /// to change; empty when it can.
    /// </summary>
    /// <param name="options">The model's settings.</param>
    public static IReadOnlyList<string> Unsupported(RetinaNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var why = new List<string>();
        if (options.Backbone == ResNetDepth.ResNet18Cntk)
            why.Add("Backbone = ResNet18Cntk (ML.NET's CNTK ResNet-18: a third block in layer4 and asymmetric stride-2 padding) has no torchvision resnet; " +
                    "train with --backbone resnet18/resnet34/resnet50/resnet101 to export");
        if (options.P6FromC5 && C5Channels(options.Backbone) == options.FpnChannels)
            why.Add($"P6FromC5 = true with C5 channels equal to FpnChannels ({options.FpnChannels}): torchvision's LastLevelP6P7 then takes P5 instead; use another FpnChannels or P6FromC5 = false");
        if (options.AnchorSizes is { } sizes && sizes.Any(s => s.Length != sizes[0].Length))
            why.Add("AnchorSizes: torchvision's RetinaNet head needs the same number of anchors at every level");
        return why;
    }

    /// <summary>
    /// Writes the state_dict of <paramref name="model"/> to <paramref name="pthPath"/> and the constructor arguments
    /// (plus the class names of <paramref name="categories"/>) to <paramref name="jsonPath"/>, both atomically. Keys and shapes are those of
    /// torchvision's RetinaNet; every backbone normalisation layer carries a <c>num_batches_tracked</c> entry (0 for
    /// frozen statistics) so that the file loads with <c>strict=True</c> both into FrozenBatchNorm2d backbones (which drop
    /// it) and into the nn.BatchNorm2d backbones torchvision builds when no pretrained weights are given. A trainable
    /// BatchNorm backbone is written with its running statistics, which is what torchvision's FrozenBatchNorm2d (and
    /// BatchNorm2d in eval mode) computes with.
    /// </summary>
    /// <param name="model">The model (any device; weights are copied to the CPU).</param>
    /// <param name="pthPath">Destination <c>.pth</c>.</param>
    /// <param name="jsonPath">Destination JSON (see docs/scale-out.md for its fields).</param>
    /// <param name="categories">The category (dataset id and name) of each label 0..K-1, or null for none.</param>
    /// <returns>The JSON written.</returns>
    /// <exception cref="NotSupportedException">torchvision cannot express the model; the message lists each option (<see cref="Unsupported"/>).</exception>
    /// <exception cref="ArgumentException"><paramref name="categories"/> has another count than the model's classes.</exception>
    /// <exception cref="IOException">A destination cannot be written.</exception>
    public static JsonObject Export(RetinaNet model, string pthPath, string jsonPath, IReadOnlyList<Data.CocoCategory>? categories = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(pthPath);
        ArgumentException.ThrowIfNullOrEmpty(jsonPath);
        var o = model.Options;
        var why = Unsupported(o);
        if (why.Count > 0) throw new NotSupportedException("torchvision 0.14 cannot hold this model: " + string.Join("; ", why));
        if (categories != null && categories.Count != o.NumClasses)
            throw new ArgumentException($"{categories.Count} categories for a model of {o.NumClasses} classes", nameof(categories));
        var json = Arguments(o, categories);
        using (var scope = NewDisposeScope())
        {
            var sd = StateDict(model);
            AtomicFile.Write(pthPath, s => PyTorchPickler.PickleStateDict(s, sd, leaveOpen: true));
        }
        AtomicFile.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return json;
    }

    /// <summary>The state_dict as written to the <c>.pth</c>: CPU float tensors in the model's key order, plus an int64
    /// scalar <c>num_batches_tracked</c> after each backbone normalisation layer that lacks one (frozen statistics).</summary>
    /// <param name="model">The model.</param>
    /// <returns>Fresh tensors in the caller's dispose scope.</returns>
    public static System.Collections.Specialized.OrderedDictionary StateDict(RetinaNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var own = model.state_dict();
        var result = new System.Collections.Specialized.OrderedDictionary();
        bool frozenBackbone = model.Options.BackboneNorm == BackboneNormKind.Frozen;
        foreach (var (key, t) in own)
        {
            result[key] = t.detach().to(CPU).to_type(t.dtype == ScalarType.Int64 ? ScalarType.Int64 : ScalarType.Float32).contiguous().clone();
            if (frozenBackbone && key.StartsWith("backbone.body.", StringComparison.Ordinal) && key.EndsWith(".running_var", StringComparison.Ordinal))
            {
                string nbt = key[..^"running_var".Length] + "num_batches_tracked";
                if (!own.ContainsKey(nbt)) result[nbt] = tensor(0L);
            }
        }
        return result;
    }

    /// <summary>The JSON of constructor arguments for <paramref name="o"/> (snake_case names as torchvision's).</summary>
    /// <param name="o">The model's settings.</param>
    /// <param name="categories">The category of each label, or null.</param>
    public static JsonObject Arguments(RetinaNetOptions o, IReadOnlyList<Data.CocoCategory>? categories)
    {
        ArgumentNullException.ThrowIfNull(o);
        string backboneName = o.Backbone switch
        {
            ResNetDepth.ResNet18 => "resnet18",
            ResNetDepth.ResNet34 => "resnet34",
            ResNetDepth.ResNet50 => "resnet50",
            ResNetDepth.ResNet101 => "resnet101",
            _ => throw new NotSupportedException($"Backbone = {o.Backbone} has no torchvision resnet"),
        };
        // The stock builder that yields exactly this architecture (weights=None, num_classes=K, **kwargs), when one does.
        string? builder = null;
        if (o.Backbone == ResNetDepth.ResNet50 && o.FpnChannels == 256 && o.BackboneNorm != BackboneNormKind.GroupNorm && o.AnchorsPerLocation == 9)
        {
            if (!o.HeadGroupNorm && !o.P6FromC5) builder = "retinanet_resnet50_fpn";
            else if (o.HeadGroupNorm && o.P6FromC5) builder = "retinanet_resnet50_fpn_v2";
        }
        var notes = new JsonArray();
        if (o.Alpha != 0.25 || o.Gamma != 2.0)
            notes.Add($"focal loss alpha = {o.Alpha?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, gamma = {o.Gamma.ToString(System.Globalization.CultureInfo.InvariantCulture)}: torchvision's head trains with alpha 0.25, gamma 2 (inference is unaffected)");
        if (o.BoxLoss == BoxLossKind.SmoothL1 && o.SmoothL1Beta != 1.0)
            notes.Add($"smooth L1 beta = {o.SmoothL1Beta.ToString(System.Globalization.CultureInfo.InvariantCulture)}: torchvision's smooth_l1 box loss uses beta 1.0 (inference is unaffected)");
        if (o.LossNormalizer != LossNormalizerKind.PerImage)
            notes.Add("LossNormalizer = RunningAverage: torchvision normalises the losses per image (inference is unaffected)");
        var sizes = new JsonArray();
        foreach (var level in o.EffectiveAnchorSizes()) sizes.Add(new JsonArray([.. level.Select(v => (JsonNode)v)]));
        var json = new JsonObject
        {
            ["format"] = JsonFormat,
            ["torchvision_builder"] = builder,
            ["backbone_name"] = backboneName,
            ["backbone_norm"] = o.BackboneNorm == BackboneNormKind.GroupNorm ? "GroupNorm32" : "FrozenBatchNorm2d",
            ["trainable_backbone_layers"] = o.TrainableBackboneLayers,
            ["returned_layers"] = new JsonArray(2, 3, 4),
            ["fpn_out_channels"] = o.FpnChannels,
            ["extra_blocks"] = new JsonObject { ["type"] = "LastLevelP6P7", ["in_channels"] = o.P6FromC5 ? C5Channels(o.Backbone) : o.FpnChannels, ["out_channels"] = o.FpnChannels },
            ["head_norm"] = o.HeadGroupNorm ? "GroupNorm32" : null,
            ["box_loss_type"] = o.BoxLoss switch { BoxLossKind.L1 => "l1", BoxLossKind.SmoothL1 => "smooth_l1", _ => "giou" },
            ["num_classes"] = o.NumClasses,
            ["min_size"] = o.MinSize,
            ["max_size"] = o.MaxSize,
            ["size_divisible"] = o.SizeDivisible,
            ["image_mean"] = new JsonArray([.. o.ImageMean.Select(v => (JsonNode)v)]),
            ["image_std"] = new JsonArray([.. o.ImageStd.Select(v => (JsonNode)v)]),
            ["anchor_sizes"] = sizes,
            ["aspect_ratios"] = new JsonArray([.. o.AspectRatios.Select(v => (JsonNode)v)]),
            ["score_thresh"] = o.ScoreThreshold,
            ["nms_thresh"] = o.NmsThreshold,
            ["detections_per_img"] = o.DetectionsPerImage,
            ["fg_iou_thresh"] = o.FgIouThreshold,
            ["bg_iou_thresh"] = o.BgIouThreshold,
            ["topk_candidates"] = o.TopkCandidates,
            ["class_names"] = categories == null ? null : new JsonArray([.. categories.Select(c => (JsonNode)c.Name)]),
            ["category_ids"] = categories == null ? null : new JsonArray([.. categories.Select(c => (JsonNode)c.Id)]),
            ["training_differences"] = notes,
        };
        return json;
    }

    /// <summary>Channels of C5 for a backbone depth.</summary>
    internal static int C5Channels(ResNetDepth depth) => depth is ResNetDepth.ResNet50 or ResNetDepth.ResNet101 ? 2048 : 512;
}
