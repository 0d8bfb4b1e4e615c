// Reference: He et al. 2016 (ResNet) as implemented by torchvision 0.14 models/resnet.py (v1.5: stride on the 3x3
// convolution of the bottleneck), with torchvision's module names so that state_dict keys are
// conv1, bn1, layer1.0.conv1 … layerN.M.downsample.0/1. Used as RetinaNet's backbone.body.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace RetinaSharp.Modeling;

/// <summary>One residual block (basic for ResNet-18/34, bottleneck for ResNet-50/101) with frozen batch norm.</summary>
internal sealed class ResidualBlock : Module<Tensor, Tensor>
{
    private readonly List<(Conv2d Conv, FrozenBatchNorm2d Bn)> _layers = [];
    private readonly Sequential? downsample;  // field name = state_dict key

    public ResidualBlock(long inChannels, long planes, long stride, bool bottleneck) : base(bottleneck ? "Bottleneck" : "BasicBlock")
    {
        long outChannels = bottleneck ? planes * 4 : planes;
        if (bottleneck)
        {
            Add(1, Conv2d(inChannels, planes, 1, bias: false), planes);
            Add(2, Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false), planes);
            Add(3, Conv2d(planes, outChannels, 1, bias: false), outChannels);
        }
        else
        {
            Add(1, Conv2d(inChannels, planes, 3, stride: stride, padding: 1, bias: false), planes);
            Add(2, Conv2d(planes, planes, 3, padding: 1, bias: false), planes);
        }
        if (stride != 1 || inChannels != outChannels)
        {
            downsample = Sequential(Conv2d(inChannels, outChannels, 1, stride: stride, bias: false), new FrozenBatchNorm2d(outChannels));
            register_module("downsample", downsample);
        }
        OutChannels = outChannels;
    }

    public long OutChannels { get; }

    internal IReadOnlyList<(Conv2d Conv, FrozenBatchNorm2d Bn)> ConvBnPairs => _layers;
    internal Sequential? Downsample => downsample;

    private void Add(int i, Conv2d conv, long channels)
    {
        var bn = new FrozenBatchNorm2d(channels);
        register_module($"conv{i}", conv);
        register_module($"bn{i}", bn);
        _layers.Add((conv, bn));
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = x;
        for (int i = 0; i < _layers.Count; i++)
        {
            y = _layers[i].Bn.forward(_layers[i].Conv.forward(y));
            if (i < _layers.Count - 1) y = functional.relu(y, inplace: true);
        }
        var identity = downsample is null ? x : downsample.forward(x);
        return functional.relu(y.add_(identity), inplace: true).MoveToOuterDisposeScope();
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
    private readonly FrozenBatchNorm2d bn1;
    private readonly Sequential[] _stages;

    /// <summary>Builds the trunk with torchvision's initialisation (Kaiming normal, fan_out) and identity frozen BN.</summary>
    /// <param name="depth">18, 34, 50 or 101 layers.</param>
    public ResNetBody(ResNetDepth depth) : base("ResNetBody")
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
        bn1 = new FrozenBatchNorm2d(64);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        long inCh = 64;
        _stages = new Sequential[4];
        var channels = new long[4];
        for (int s = 0; s < 4; s++)
        {
            long planes = 64L << s;
            var mods = new List<Module<Tensor, Tensor>>();
            for (int b = 0; b < blocks[s]; b++)
            {
                var block = new ResidualBlock(inCh, planes, b == 0 && s > 0 ? 2 : 1, bottleneck);
                inCh = block.OutChannels;
                mods.Add(block);
            }
            _stages[s] = Sequential(mods);
            channels[s] = inCh;
            register_module($"layer{s + 1}", _stages[s]);
        }
        StageChannels = channels;
        using (no_grad())
            foreach (var (_, m) in named_modules())
                if (m is Conv2d c) init.kaiming_normal_(c.weight, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
    }

    /// <summary>Output channels of layer1..layer4 (64/128/256/512 for basic blocks, ×4 for bottlenecks).</summary>
    public IReadOnlyList<long> StageChannels { get; }

    internal Conv2d Conv1 => conv1;
    internal FrozenBatchNorm2d Bn1 => bn1;
    internal IReadOnlyList<Sequential> Stages => _stages;

    /// <summary>
    /// Freezes the stem and early stages as torchvision's <c>_resnet_fpn_extractor</c>: only parameters of the
    /// top <paramref name="trainableLayers"/> of (layer4, layer3, layer2, layer1, conv1) keep requires_grad (bn1 too when 5).
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
    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = functional.relu(bn1.forward(conv1.forward(x)), inplace: true);
        y = functional.max_pool2d(y, 3, 2, 1);
        y = _stages[0].forward(y);
        var c3 = _stages[1].forward(y);
        var c4 = _stages[2].forward(c3);
        var c5 = _stages[3].forward(c4);
        return [c3.MoveToOuterDisposeScope(), c4.MoveToOuterDisposeScope(), c5.MoveToOuterDisposeScope()];
    }
}
