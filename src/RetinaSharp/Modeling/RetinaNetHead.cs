// Reference: RetinaNet paper section 4 ("Classification Subnet", "Box Regression Subnet", "Initialization") as
// torchvision 0.14 RetinaNetClassificationHead / RetinaNetRegressionHead: keys conv.N.0 (conv), conv.N.1 (GroupNorm
// when used), cls_logits, bbox_reg; outputs permuted from (N, A·K, H, W) to (N, H·W·A, K).
using RetinaSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace RetinaSharp.Modeling;

/// <summary>One subnet: four 3x3 conv (+ optional GroupNorm) + ReLU, then a 3x3 conv to A·outputsPerAnchor channels.</summary>
public sealed class RetinaNetSubnet : Module<Tensor, Tensor>
{
    private readonly Sequential conv;
    // Held in an array so that TorchSharp does not register it a second time under the field's name.
    private readonly Conv2d[] _predictor;
    private readonly long _outputsPerAnchor;

    /// <summary>Builds the subnet; convolution weights ~ N(0, 0.01²), biases 0, predictor bias <paramref name="predictorBias"/>.</summary>
    /// <param name="inChannels">Input channels (FPN width).</param>
    /// <param name="anchorsPerLocation">A.</param>
    /// <param name="outputsPerAnchor">K for classification, 4 for boxes.</param>
    /// <param name="predictorName">"cls_logits" or "bbox_reg" (torchvision key).</param>
    /// <param name="predictorBias">Initial predictor bias (-log((1-π)/π) for classification, 0 for boxes).</param>
    /// <param name="groupNorm">GroupNorm(32) after each conv, convs without bias (torchvision v2).</param>
    public RetinaNetSubnet(long inChannels, long anchorsPerLocation, long outputsPerAnchor, string predictorName, double predictorBias, bool groupNorm)
        : base(predictorName == "cls_logits" ? "RetinaNetClassificationHead" : "RetinaNetRegressionHead")
    {
        var blocks = new List<Module<Tensor, Tensor>>();
        for (int i = 0; i < 4; i++)
            blocks.Add(groupNorm
                ? Sequential(Conv2d(inChannels, inChannels, 3, padding: 1, bias: false), GroupNorm(32, inChannels), ReLU(inplace: true))
                : Sequential(Conv2d(inChannels, inChannels, 3, padding: 1), ReLU(inplace: true)));
        conv = Sequential(blocks);
        _predictor = [Conv2d(inChannels, anchorsPerLocation * outputsPerAnchor, 3, padding: 1)];
        _outputsPerAnchor = outputsPerAnchor;
        register_module("conv", conv);
        register_module(predictorName, _predictor[0]);
        using (no_grad())
        {
            foreach (var (_, m) in conv.named_modules())
            {
                if (m is Conv2d c) { init.normal_(c.weight, 0, 0.01); if (c.bias is not null) init.constant_(c.bias, TorchScalars.Zero); }
                // TorchSharp 0.107's GroupNorm leaves its affine parameters uninitialised: set PyTorch's identity.
                if (m is GroupNorm gn) { gn.weight?.fill_(TorchScalars.OneF); gn.bias?.zero_(); }
            }
            init.normal_(_predictor[0].weight, 0, 0.01);
            using var bias = predictorBias.ToScalar();
            init.constant_(_predictor[0].bias!, bias);
        }
    }

    /// <summary>The four 3x3 convolutions, each with its GroupNorm or null (a ReLU follows each), for the ONNX exporter.</summary>
    internal IReadOnlyList<(Conv2d Conv, GroupNorm? Norm)> Blocks =>
        [.. conv.named_children().Select(b => b.module.named_children().Select(l => l.module).ToList())
            .Select(l => ((Conv2d)l[0], l[1] as GroupNorm))];

    /// <summary>The 3x3 predictor convolution (A·outputsPerAnchor channels), for the ONNX exporter.</summary>
    internal Conv2d Predictor => _predictor[0];

    /// <summary>K for classification, 4 for boxes.</summary>
    internal long OutputsPerAnchor => _outputsPerAnchor;

    /// <summary>Input one level's features (N, C, H, W); output (N, H·W·A, outputsPerAnchor), anchor-major within a location.</summary>
    public override Tensor forward(Tensor features)
    {
        using var scope = NewDisposeScope();
        // Layer by layer, releasing each intermediate handle as soon as the next exists (lower peak memory).
        var y = features;
        foreach (var (_, block) in conv.named_children())
            foreach (var (_, layer) in block.named_children())
            {
                var next = layer is Conv2d c ? Convolutions.Forward(c, y) : ((Module<Tensor, Tensor>)layer).forward(y);
                if (!ReferenceEquals(y, features) && !ReferenceEquals(y, next)) y.Dispose();
                y = next;
            }
        var logits = Convolutions.Forward(_predictor[0], y);
        if (!ReferenceEquals(y, features)) y.Dispose();
        y = logits;
        long n = y.shape[0], h = y.shape[2], w = y.shape[3];
        y = y.view(n, -1, _outputsPerAnchor, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, _outputsPerAnchor);
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>The two subnets of RetinaNet shared across pyramid levels (torchvision <c>RetinaNetHead</c>).</summary>
public sealed class RetinaNetHead : Module<Tensor[], (Tensor[] ClassLogits, Tensor[] BoxDeltas)>
{
    private readonly RetinaNetSubnet classification_head;
    private readonly RetinaNetSubnet regression_head;

    /// <summary>Builds both subnets.</summary>
    /// <param name="inChannels">FPN width (256).</param>
    /// <param name="anchorsPerLocation">A (9).</param>
    /// <param name="numClasses">K.</param>
    /// <param name="priorProbability">π of the paper's classification bias initialisation -log((1-π)/π).</param>
    /// <param name="groupNorm">GroupNorm in the subnets (torchvision v2).</param>
    public RetinaNetHead(long inChannels, long anchorsPerLocation, long numClasses, double priorProbability, bool groupNorm) : base("RetinaNetHead")
    {
        classification_head = new RetinaNetSubnet(inChannels, anchorsPerLocation, numClasses, "cls_logits",
            -Math.Log((1 - priorProbability) / priorProbability), groupNorm);
        regression_head = new RetinaNetSubnet(inChannels, anchorsPerLocation, 4, "bbox_reg", 0, groupNorm);
        register_module("classification_head", classification_head);
        register_module("regression_head", regression_head);
    }

    /// <summary>The classification subnet (for the ONNX exporter).</summary>
    internal RetinaNetSubnet Classification => classification_head;

    /// <summary>The box regression subnet (for the ONNX exporter).</summary>
    internal RetinaNetSubnet Regression => regression_head;

    /// <summary>Per level l: class logits (N, H_l·W_l·A, K) and box deltas (N, H_l·W_l·A, 4).</summary>
    public override (Tensor[] ClassLogits, Tensor[] BoxDeltas) forward(Tensor[] features) =>
        ([.. features.Select(classification_head.forward)], [.. features.Select(regression_head.forward)]);
}
