// Reference: He et al. 2016 (ResNet) as implemented by torchvision 0.14 models/resnet.py (v1.5: stride on the 3x3
// convolution of the bottleneck), with torchvision's module names so that state_dict keys are
// conv1, bn1, layer1.0.conv1 … layerN.M.downsample.0/1. Used as RetinaNet's backbone.body.
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

    /// <summary>An identity-initialised FrozenBatchNorm2d, or a trainable batch norm (<see cref="TrainableBatchNorm2d"/>,
    /// nn.BatchNorm2d's keys and behaviour: weight 1, bias 0, momentum 0.1).</summary>
    public static Module<Tensor, Tensor> Create(BackboneNormKind kind, long channels) => kind switch
    {
        BackboneNormKind.Frozen => new FrozenBatchNorm2d(channels, Eps),
        BackboneNormKind.BatchNorm => new TrainableBatchNorm2d(channels, Eps, momentum: 0.1),
        _ => throw new ArgumentException($"unknown backbone norm {kind}", nameof(kind)),
    };

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
/// </summary>
internal sealed class ConvBn(Conv2d conv, Module<Tensor, Tensor> bn, long stride, long padding)
{
    private Tensor? _w, _b;

    public Conv2d Conv { get; } = conv;
    public Module<Tensor, Tensor> Bn { get; } = bn;

    /// <summary>Computes (fold = true) or drops the folded weight and bias from the current parameters; the folded
    /// weight is stored channels-last when <paramref name="channelsLast"/>.</summary>
    public void SetFolded(bool fold, ScalarType? dtype, bool channelsLast = false)
    {
        _w?.Dispose(); _b?.Dispose();
        _w = _b = null;
        if (!fold) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (scale, shift) = BackboneNorm.ScaleAndShift(Bn);
        var w = Conv.weight * scale.reshape(-1, 1, 1, 1);
        var b = shift;
        if (dtype is { } d) { w = w.to(d); b = b.to(d); }
        _w = (channelsLast ? MemoryLayout.ToChannelsLast(w) : w.contiguous()).MoveToOuterDisposeScope();
        _b = b.contiguous().MoveToOuterDisposeScope();
    }

    public Tensor Forward(Tensor x, bool training) =>
        _w is not null && !training
            ? functional.conv2d(x, _w, _b, strides: [stride, stride], padding: [padding, padding])
            : Bn.forward(Conv.forward(x));
}

/// <summary>One residual block (basic for ResNet-18/34, bottleneck for ResNet-50/101) with frozen or trainable batch norm.</summary>
internal sealed class ResidualBlock : Module<Tensor, Tensor>
{
    private readonly List<ConvBn> _layers = [];
    private readonly Sequential? downsample;  // field name = state_dict key
    private readonly ConvBn? _downsampleUnit;
    private readonly BackboneNormKind _norm;

    public ResidualBlock(long inChannels, long planes, long stride, bool bottleneck, BackboneNormKind norm) : base(bottleneck ? "Bottleneck" : "BasicBlock")
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
            Add(1, Conv2d(inChannels, planes, 3, stride: stride, padding: 1, bias: false), planes, stride, 1);
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

    internal void SetFolded(bool fold, ScalarType? dtype, bool channelsLast)
    {
        foreach (var u in _layers) u.SetFolded(fold, dtype, channelsLast);
        _downsampleUnit?.SetFolded(fold, dtype, channelsLast);
    }

    private void Add(int i, Conv2d conv, long channels, long stride, long padding)
    {
        var bn = BackboneNorm.Create(_norm, channels);
        register_module($"conv{i}", conv);
        register_module($"bn{i}", bn);
        _layers.Add(new ConvBn(conv, bn, stride, padding));
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

    /// <summary>Builds the trunk with torchvision's initialisation (Kaiming normal, fan_out; batch norm weight 1, bias 0).</summary>
    /// <param name="depth">18, 34, 50 or 101 layers.</param>
    /// <param name="norm">Frozen batch norm (torchvision's detection default, identity at init; for pretrained weights) or
    /// trainable nn.BatchNorm2d with running statistics (torchvision <c>norm_layer=BatchNorm2d</c>; state_dict adds
    /// <c>num_batches_tracked</c>; for training from scratch).</param>
    /// <exception cref="ArgumentException">Unknown <paramref name="depth"/> or <paramref name="norm"/>.</exception>
    public ResNetBody(ResNetDepth depth, BackboneNormKind norm = BackboneNormKind.Frozen) : base("ResNetBody")
    {
        (int[] blocks, bool bottleneck) = depth switch
        {
            ResNetDepth.ResNet18 => (new[] { 2, 2, 2, 2 }, false),
            ResNetDepth.ResNet34 => (new[] { 3, 4, 6, 3 }, false),
            ResNetDepth.ResNet50 => (new[] { 3, 4, 6, 3 }, true),
            ResNetDepth.ResNet101 => (new[] { 3, 4, 23, 3 }, true),
            _ => throw new ArgumentException($"unknown ResNet depth {depth}", nameof(depth)),
        };
        conv1 = Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = BackboneNorm.Create(norm, 64);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        _stem = new ConvBn(conv1, bn1, 2, 3);
        long inCh = 64;
        _stages = new Sequential[4];
        var channels = new long[4];
        for (int s = 0; s < 4; s++)
        {
            long planes = 64L << s;
            var mods = new List<Module<Tensor, Tensor>>();
            for (int b = 0; b < blocks[s]; b++)
            {
                var block = new ResidualBlock(inCh, planes, b == 0 && s > 0 ? 2 : 1, bottleneck, norm);
                inCh = block.OutChannels;
                mods.Add(block);
            }
            _stages[s] = Sequential(mods);
            channels[s] = inCh;
            register_module($"layer{s + 1}", _stages[s]);
        }
        StageChannels = channels;
        Norm = norm;
        using (no_grad())
            foreach (var (_, m) in named_modules())
                if (m is Conv2d c) init.kaiming_normal_(c.weight, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
    }

    /// <summary>The normalisation layer kind of the trunk.</summary>
    public BackboneNormKind Norm { get; }

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
    public void SetFoldedBatchNorm(bool fold, ScalarType? dtype = null, bool channelsLast = false)
    {
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
        var y = functional.max_pool2d(stem, 3, 2, 1);
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
