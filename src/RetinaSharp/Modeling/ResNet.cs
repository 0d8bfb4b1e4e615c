// Reference: He et al. 2016 (ResNet) as implemented by torchvision 0.14 models/resnet.py (v1.5: stride on the 3x3
// convolution of the bottleneck), with torchvision's module names so that state_dict keys are
// conv1, bn1, layer1.0.conv1 … layerN.M.downsample.0/1. Used as RetinaNet's backbone.body.
// ResNet18Cntk follows the ONNX graph of ML.NET's Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (a CNTK 2.6 export):
// basic blocks [2, 2, 2, 3] and asymmetric padding (top/left p, bottom/right p - 1) on the stride-2 convolutions and the max-pool.
using RetinaSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace RetinaSharp.Modeling;

/// <summary>Creates the backbone's normalisation layers and reads their per-channel affine form.</summary>
internal static class BackboneNorm
{
    /// <summary>torchvision's batch-norm epsilon (FrozenBatchNorm2d and nn.BatchNorm2d).</summary>
    public const double Eps = 1e-5;
    private static readonly Scalar EpsScalar = Eps.ToScalar();

    /// <summary>The groups of <see cref="BackboneNormKind.GroupNorm"/> (Wu and He 2018; torchvision v2 heads use 32 too).</summary>
    public const int Groups = 32;

    /// <summary>An identity-initialised FrozenBatchNorm2d, a trainable batch norm (<see cref="TrainableBatchNorm2d"/>:
    /// nn.BatchNorm2d's keys and behaviour, weight 1, bias 0, momentum 0.1),
    /// or a GroupNorm of 32 groups (weight 1, bias 0: TorchSharp 0.107 leaves GroupNorm's affine uninitialised).</summary>
    public static Module<Tensor, Tensor> Create(BackboneNormKind kind, long channels)
    {
        switch (kind)
        {
            case BackboneNormKind.Frozen: return new FrozenBatchNorm2d(channels, Eps);
            case BackboneNormKind.BatchNorm: return new TrainableBatchNorm2d(channels, Eps, momentum: 0.1);
            case BackboneNormKind.GroupNorm:
                var gn = GroupNorm(Groups, channels, eps: Eps);
                using (no_grad())
                {
                    gn.weight!.fill_(TorchScalars.OneF);
                    gn.bias!.zero_();
                }
                return gn;
            default: throw new ArgumentException($"unknown backbone norm {kind}", nameof(kind));
        }
    }

    /// <summary>True when the layer is a per-channel affine at inference (frozen or batch norm) and so folds into the convolution.</summary>
    public static bool Foldable(Module<Tensor, Tensor> norm) => norm is FrozenBatchNorm2d or TorchSharp.Modules.BatchNorm;

    /// <summary>
    /// The per-channel (scale, shift) with y = x·scale + shift: for FrozenBatchNorm2d always; for BatchNorm2d the
    /// eval-mode form from its running statistics (weight / sqrt(running_var + eps), bias - running_mean·scale).
    /// </summary>
    public static (Tensor Scale, Tensor Shift) ScaleAndShift(Module<Tensor, Tensor> bn)
    {
        if (bn is FrozenBatchNorm2d f) return f.ScaleAndShift();
        using var scope = NewDisposeScope();
        var b = (BatchNorm)bn;
        var scale = b.weight!.detach() * (b.running_mean is null ? throw new InvalidOperationException("BatchNorm2d without running statistics") : b.running_var!.add(EpsScalar, TorchScalars.One).rsqrt());
        var shift = b.bias!.detach() - b.running_mean * scale;
        return (scale.MoveToOuterDisposeScope(), shift.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// A convolution followed by batch norm (frozen or trainable), with an optional eval-mode path where the normalisation
/// is folded into the convolution (W' = W·scale per output channel, b' = shift): one pass over the output instead of two.
/// For nn.BatchNorm2d the fold uses the running statistics at folding time (its eval-mode behaviour).
/// Not a module: the convolution and the batch norm are registered by the owner under torchvision's names.
/// <paramref name="padEnd"/> below <paramref name="padding"/> pads bottom/right by that many pixels instead (ONNX pads
/// [p, p, padEnd, padEnd]); for an even input side with stride 2 and kernel 2p + 1 that is the same computation as the
/// symmetric padding (the last window never reaches the p-th padded row), so only odd sides take the explicit-pad path.
/// </summary>
internal sealed class ConvBn(Conv2d conv, Module<Tensor, Tensor> bn, long stride, long padding, long? padEnd = null)
{
    private Tensor? _w, _b;
    private readonly long _padEnd = padEnd ?? padding;

    public Conv2d Conv { get; } = conv;
    public Module<Tensor, Tensor> Bn { get; } = bn;
    public long Stride => stride;
    public long Padding => padding;

    /// <summary>Computes (fold = true) or drops the folded weight and bias from the current parameters; the folded
    /// weight is stored channels-last when <paramref name="channelsLast"/>.</summary>
    public void SetFolded(bool fold, ScalarType? dtype, bool channelsLast = false)
    {
        _w?.Dispose(); _b?.Dispose();
        _w = _b = null;
        if (!fold || !BackboneNorm.Foldable(Bn)) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (scale, shift) = BackboneNorm.ScaleAndShift(Bn);
        var w = Conv.weight * scale.reshape(-1, 1, 1, 1);
        var b = shift;
        if (dtype is { } d) { w = w.to(d); b = b.to(d); }
        _w = (channelsLast ? MemoryLayout.ToChannelsLast(w) : w.contiguous()).MoveToOuterDisposeScope();
        _b = b.contiguous().MoveToOuterDisposeScope();
    }

    public Tensor Forward(Tensor x, bool training)
    {
        bool folded = _w is not null && !training;
        if (_padEnd != padding && (x.shape[2] % 2 == 1 || x.shape[3] % 2 == 1))
        {
            using var scope = NewDisposeScope();
            var padded = functional.pad(x, [padding, _padEnd, padding, _padEnd]);
            var y = folded
                ? functional.conv2d(padded, _w!, _b, strides: [stride, stride])
                : Bn.forward(Convolutions.Forward(padded, Conv.weight!, Conv.bias, stride, 0));
            return y.MoveToOuterDisposeScope();
        }
        return folded
            ? functional.conv2d(x, _w!, _b, strides: [stride, stride], padding: [padding, padding])
            : Bn.forward(Convolutions.Forward(Conv, x));
    }
}

/// <summary>One residual block (basic for ResNet-18/34, bottleneck for ResNet-50/101) with frozen or trainable batch norm.</summary>
internal sealed class ResidualBlock : Module<Tensor, Tensor>
{
    private readonly List<ConvBn> _layers = [];
    private readonly Sequential? downsample;  // field name = state_dict key
    private readonly ConvBn? _downsampleUnit;
    private readonly BackboneNormKind _norm;

    public ResidualBlock(long inChannels, long planes, long stride, bool bottleneck, BackboneNormKind norm, bool asymmetricPadding = false) : base(bottleneck ? "Bottleneck" : "BasicBlock")
    {
        _norm = norm;
        long outChannels = bottleneck ? planes * 4 : planes;
        if (bottleneck)
        {
            Add(1, Conv2d(inChannels, planes, 1, bias: false), planes, 1, 0);
            Add(2, Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false), planes, stride, 1);
            Add(3, Conv2d(planes, outChannels, 1, bias: false), outChannels, 1, 0);
        }
        else
        {
            Add(1, Conv2d(inChannels, planes, 3, stride: stride, padding: 1, bias: false), planes, stride, 1, asymmetricPadding && stride == 2 ? 0 : null);
            Add(2, Conv2d(planes, planes, 3, padding: 1, bias: false), planes, 1, 1);
        }
        if (stride != 1 || inChannels != outChannels)
        {
            var conv = Conv2d(inChannels, outChannels, 1, stride: stride, bias: false);
            var bn = BackboneNorm.Create(norm, outChannels);
            downsample = Sequential(conv, bn);
            register_module("downsample", downsample);
            _downsampleUnit = new ConvBn(conv, bn, stride, 0);
        }
        OutChannels = outChannels;
    }

    public long OutChannels { get; }

    /// <summary>2 for a basic block, 3 for a bottleneck.</summary>
    public int Convolutions => _layers.Count;

    /// <summary>True when the shortcut is a strided 1x1 convolution with its normalisation.</summary>
    public bool HasDownsample => _downsampleUnit is not null;

    /// <summary>The convolution + norm units in forward order (ReLU after each but the last), for the ONNX exporter.</summary>
    internal IReadOnlyList<ConvBn> Units => _layers;

    /// <summary>The projection shortcut, or null for the identity (for the ONNX exporter).</summary>
    internal ConvBn? Shortcut => _downsampleUnit;

    internal void SetFolded(bool fold, ScalarType? dtype, bool channelsLast)
    {
        foreach (var u in _layers) u.SetFolded(fold, dtype, channelsLast);
        _downsampleUnit?.SetFolded(fold, dtype, channelsLast);
    }

    private void Add(int i, Conv2d conv, long channels, long stride, long padding, long? padEnd = null)
    {
        var bn = BackboneNorm.Create(_norm, channels);
        register_module($"conv{i}", conv);
        register_module($"bn{i}", bn);
        _layers.Add(new ConvBn(conv, bn, stride, padding, padEnd));
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = x;
        for (int i = 0; i < _layers.Count; i++)
        {
            y = _layers[i].Forward(y, training);
            if (i < _layers.Count - 1) y = functional.relu(y, inplace: true);
        }
        var identity = _downsampleUnit is null ? x : _downsampleUnit.Forward(x, training);
        return functional.relu(y.add_(identity, TorchScalars.One), inplace: true).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The ResNet trunk without its classifier: returns C3, C4, C5 (outputs of layer2, layer3, layer4, strides 8, 16, 32).
/// torchvision equivalent: <c>IntermediateLayerGetter(resnetXX(norm_layer=FrozenBatchNorm2d), return_layers={layer2, layer3, layer4})</c>.
/// </summary>
public sealed class ResNetBody : Module<Tensor, Tensor[]>
{
    // Module fields are registered by TorchSharp under their field names: keep them equal to torchvision's keys.
    private readonly Conv2d conv1;
    private readonly Module<Tensor, Tensor> bn1;
    private readonly Sequential[] _stages;
    private readonly ConvBn _stem;
    private readonly bool _asymmetricPadding;

    /// <summary>Builds the trunk with torchvision's initialisation (Kaiming normal, fan_out; batch norm weight 1, bias 0).</summary>
    /// <param name="depth">18, 34, 50 or 101 layers, or <see cref="ResNetDepth.ResNet18Cntk"/> (ML.NET's ImageNet ResNet-18 graph).</param>
    /// <param name="norm">Frozen batch norm (torchvision's detection default, identity at init; for pretrained weights) or
    /// trainable nn.BatchNorm2d with running statistics (torchvision <c>norm_layer=BatchNorm2d</c>; state_dict adds
    /// <c>num_batches_tracked</c>; for training from scratch), or GroupNorm of 32 groups (keys weight, bias).</param>
    /// <exception cref="ArgumentException">Unknown <paramref name="depth"/> or <paramref name="norm"/>.</exception>
    public ResNetBody(ResNetDepth depth, BackboneNormKind norm = BackboneNormKind.Frozen) : base("ResNetBody")
    {
        (int[] blocks, bool bottleneck) = depth switch
        {
            ResNetDepth.ResNet18 => (new[] { 2, 2, 2, 2 }, false),
            ResNetDepth.ResNet34 => (new[] { 3, 4, 6, 3 }, false),
            ResNetDepth.ResNet50 => (new[] { 3, 4, 6, 3 }, true),
            ResNetDepth.ResNet101 => (new[] { 3, 4, 23, 3 }, true),
            ResNetDepth.ResNet18Cntk => (new[] { 2, 2, 2, 3 }, false),
            _ => throw new ArgumentException($"unknown ResNet depth {depth}", nameof(depth)),
        };
        _asymmetricPadding = depth == ResNetDepth.ResNet18Cntk;
        conv1 = Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = BackboneNorm.Create(norm, 64);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        _stem = new ConvBn(conv1, bn1, 2, 3, _asymmetricPadding ? 2 : null);
        long inCh = 64;
        _stages = new Sequential[4];
        var channels = new long[4];
        for (int s = 0; s < 4; s++)
        {
            long planes = 64L << s;
            var mods = new List<Module<Tensor, Tensor>>();
            for (int b = 0; b < blocks[s]; b++)
            {
                var block = new ResidualBlock(inCh, planes, b == 0 && s > 0 ? 2 : 1, bottleneck, norm, _asymmetricPadding);
                inCh = block.OutChannels;
                mods.Add(block);
            }
            _stages[s] = Sequential(mods);
            channels[s] = inCh;
            register_module($"layer{s + 1}", _stages[s]);
        }
        StageChannels = channels;
        Norm = norm;
        Depth = depth;
        using (no_grad())
            foreach (var (_, m) in named_modules())
                if (m is Conv2d c) init.kaiming_normal_(c.weight, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
    }

    /// <summary>The stem convolution + norm (then ReLU and a 3x3/2 max pool), for the ONNX exporter.</summary>
    internal ConvBn Stem => _stem;

    /// <summary>The residual blocks of layer1..layer4, for the ONNX exporter.</summary>
    internal IReadOnlyList<ResidualBlock[]> Stages => [.. _stages.Select(s => s.named_children().Select(c => (ResidualBlock)c.module).ToArray())];

    /// <summary>The normalisation layer kind of the trunk.</summary>
    public BackboneNormKind Norm { get; }

    /// <summary>The architecture of the trunk.</summary>
    public ResNetDepth Depth { get; }

    /// <summary>
    /// The state_dict prefixes (e.g. <c>layer2.0.conv1</c>, <c>layer2.0.bn1</c>) of each convolution and its normalisation,
    /// in the order the trunk runs them: conv1, then per block conv1, conv2 (conv3), then downsample.0 / downsample.1.
    /// </summary>
    public IReadOnlyList<(string Conv, string Norm, bool Downsample)> ConvolutionNames()
    {
        var list = new List<(string, string, bool)> { ("conv1", "bn1", false) };
        for (int s = 0; s < _stages.Length; s++)
            foreach (var (name, m) in _stages[s].named_children())
            {
                var block = (ResidualBlock)m;
                string p = $"layer{s + 1}.{name}";
                for (int i = 1; i <= block.Convolutions; i++) list.Add(($"{p}.conv{i}", $"{p}.bn{i}", false));
                if (block.HasDownsample) list.Add(($"{p}.downsample.0", $"{p}.downsample.1", true));
            }
        return list;
    }

    /// <summary>Output channels of layer1..layer4 (64/128/256/512 for basic blocks, ×4 for bottlenecks).</summary>
    public IReadOnlyList<long> StageChannels { get; }

    /// <summary>
    /// Folds every batch norm into the convolution before it for inference (eval mode only; training still
    /// runs convolution then batch norm). With <see cref="BackboneNormKind.BatchNorm"/> the fold uses the running
    /// statistics (eval-mode semantics). Folded weights are a snapshot: fold again after loading or training.
    /// </summary>
    /// <param name="fold">true to fold, false to drop the folded copies.</param>
    /// <param name="dtype">Store the folded weights in this dtype (bfloat16 inference), or null for the parameters' own.</param>
    /// <param name="channelsLast">Store the folded weights channels-last (NHWC strides, see <see cref="MemoryLayout"/>).</param>
    /// <remarks>GroupNorm depends on each input's statistics and does not fold: with it the trunk's own parameters are
    /// converted to <paramref name="dtype"/> and channels-last instead (inference only afterwards).</remarks>
    public void SetFoldedBatchNorm(bool fold, ScalarType? dtype = null, bool channelsLast = false)
    {
        if (Norm == BackboneNormKind.GroupNorm)
        {
            if (dtype is { } d) this.to(d);
            if (channelsLast) MemoryLayout.ConvWeightsToChannelsLast(this);
        }
        _stem.SetFolded(fold, dtype, channelsLast);
        foreach (var stage in _stages)
            foreach (var (_, m) in stage.named_children())
                ((ResidualBlock)m).SetFolded(fold, dtype, channelsLast);
    }

    /// <summary>
    /// Freezes the stem and early stages as torchvision's <c>_resnet_fpn_extractor</c>: only parameters of the
    /// top <paramref name="trainableLayers"/> of (layer4, layer3, layer2, layer1, conv1) keep requires_grad (bn1 too when 5).
    /// With <see cref="BackboneNormKind.BatchNorm"/> the batch norms of frozen stages lose requires_grad on weight and bias
    /// but, in train mode, still update their running statistics (use 5 trainable layers when training from scratch).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="trainableLayers"/> outside 0..5.</exception>
    public void SetTrainableLayers(int trainableLayers)
    {
        if (trainableLayers is < 0 or > 5) throw new ArgumentException($"trainableLayers = {trainableLayers}: must be in 0..5", nameof(trainableLayers));
        var train = new[] { "layer4", "layer3", "layer2", "layer1", "conv1" }.Take(trainableLayers).ToList();
        if (trainableLayers == 5) train.Add("bn1");
        foreach (var (name, p) in named_parameters())
            p.requires_grad = train.Any(t => name.StartsWith(t, StringComparison.Ordinal));
    }

    /// <summary>Runs the trunk on x (N, 3, H, W); returns [C3, C4, C5] at strides 8, 16, 32.</summary>
    /// <remarks>Each block's input handle is released as soon as the next output exists (autograd keeps what it
    /// needs), so inference holds about two stage activations at a time instead of all of them.</remarks>
    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var stem = functional.relu(_stem.Forward(x, training), inplace: true);
        // ResNet18Cntk's max-pool pads top/left only (ONNX pads [1, 1, 0, 0]); for even sides that equals padding 1.
        // The input is a ReLU output (>= 0), so zero padding gives the same maxima as the implicit -inf of max_pool2d.
        var y = _asymmetricPadding && (stem.shape[2] % 2 == 1 || stem.shape[3] % 2 == 1)
            ? functional.max_pool2d(functional.pad(stem, [1, 0, 1, 0]), 3, 2)
            : functional.max_pool2d(stem, 3, 2, 1);
        stem.Dispose();
        var outputs = new Tensor[3];
        for (int s = 0; s < 4; s++)
        {
            foreach (var (_, block) in _stages[s].named_children())
            {
                var next = ((ResidualBlock)block).forward(y);
                if (!Array.Exists(outputs, o => ReferenceEquals(o, y))) y.Dispose();
                y = next;
            }
            if (s > 0) outputs[s - 1] = y;
        }
        foreach (var t in outputs) t.MoveToOuterDisposeScope();
        return outputs;
    }
}
