// Reference: Lin et al. 2017 (FPN) and RetinaNet paper section 4 (P3-P7), as torchvision 0.14 ops/feature_pyramid_network.py
// (FeaturePyramidNetwork + LastLevelP6P7): keys inner_blocks.N.0, layer_blocks.N.0, extra_blocks.p6/p7;
// nearest-neighbour top-down upsampling to the lateral's size; P6 from P5 (in == out channels, v1) or from C5.
using RetinaSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace RetinaSharp.Modeling;

/// <summary>P6 = conv3x3/2 of P5 or C5; P7 = conv3x3/2 of relu(P6). torchvision <c>LastLevelP6P7</c>.</summary>
internal sealed class LastLevelP6P7 : Module<Tensor, Tensor, (Tensor P6, Tensor P7)>
{
    private readonly Conv2d p6;
    private readonly Conv2d p7;

    public LastLevelP6P7(long inChannels, long outChannels, bool fromC5) : base("LastLevelP6P7")
    {
        p6 = Conv2d(inChannels, outChannels, 3, stride: 2, padding: 1);
        p7 = Conv2d(outChannels, outChannels, 3, stride: 2, padding: 1);
        FromC5 = fromC5;
        register_module("p6", p6);
        register_module("p7", p7);
        using (no_grad())
            foreach (var c in new[] { p6, p7 })
            {
                init.kaiming_uniform_(c.weight, a: 1);
                init.constant_(c.bias!, TorchScalars.Zero);
            }
    }

    public bool FromC5 { get; }

    /// <summary>The P6 and P7 convolutions (3x3, stride 2, padding 1), for the ONNX exporter.</summary>
    internal (Conv2d P6, Conv2d P7) Convs => (p6, p7);

    /// <summary>Input: P5 and C5; output P6, P7.</summary>
    public override (Tensor P6, Tensor P7) forward(Tensor p5, Tensor c5)
    {
        var x6 = Convolutions.Forward(p6, FromC5 ? c5 : p5);
        using var r = functional.relu(x6);
        return (x6, Convolutions.Forward(p7, r));
    }
}

/// <summary>
/// The feature pyramid of RetinaNet: input [C3, C4, C5], output [P3, P4, P5, P6, P7], each with
/// <see cref="OutChannels"/> channels, at strides 8 … 128.
/// </summary>
public sealed class FeaturePyramidNetwork : Module<Tensor[], Tensor[]>
{
    private readonly ModuleList<Sequential> inner_blocks;
    private readonly ModuleList<Sequential> layer_blocks;
    private readonly LastLevelP6P7 extra_blocks;

    /// <summary>Builds the FPN with torchvision's initialisation (Kaiming uniform a=1, zero bias).</summary>
    /// <param name="inChannels">Channels of C3, C4, C5.</param>
    /// <param name="outChannels">Pyramid width (256).</param>
    /// <param name="p6FromC5">Take P6 from C5 (paper, torchvision v2) instead of P5 (torchvision v1).</param>
    /// <exception cref="ArgumentException"><paramref name="inChannels"/> does not have 3 entries.</exception>
    public FeaturePyramidNetwork(IReadOnlyList<long> inChannels, long outChannels, bool p6FromC5) : base("FeaturePyramidNetwork")
    {
        if (inChannels.Count != 3) throw new ArgumentException($"inChannels has {inChannels.Count} entries: expected 3 (C3, C4, C5)", nameof(inChannels));
        inner_blocks = new ModuleList<Sequential>([.. inChannels.Select(c => Sequential(Conv2d(c, outChannels, 1)))]);
        layer_blocks = new ModuleList<Sequential>([.. inChannels.Select(_ => Sequential(Conv2d(outChannels, outChannels, 3, padding: 1)))]);
        extra_blocks = new LastLevelP6P7(p6FromC5 ? inChannels[2] : outChannels, outChannels, p6FromC5);
        register_module("inner_blocks", inner_blocks);
        register_module("layer_blocks", layer_blocks);
        register_module("extra_blocks", extra_blocks);
        using (no_grad())
            foreach (var seq in inner_blocks.Concat(layer_blocks))
                foreach (var (_, m) in seq.named_modules())
                    if (m is Conv2d c) { init.kaiming_uniform_(c.weight, a: 1); init.constant_(c.bias!, TorchScalars.Zero); }
        OutChannels = outChannels;
    }

    /// <summary>Channels of every output level.</summary>
    public long OutChannels { get; }

    /// <summary>The lateral 1x1 convolution of C3, C4, C5 (index 0..2), for the ONNX exporter.</summary>
    internal Conv2d Lateral(int i) => (Conv2d)inner_blocks[i].named_children().Single().module;

    /// <summary>The 3x3 output convolution of P3, P4, P5 (index 0..2), for the ONNX exporter.</summary>
    internal Conv2d Output(int i) => (Conv2d)layer_blocks[i].named_children().Single().module;

    /// <summary>P6 from C5 (true) or P5, and its two convolutions, for the ONNX exporter.</summary>
    internal (bool FromC5, Conv2d P6, Conv2d P7) Extra => (extra_blocks.FromC5, extra_blocks.Convs.P6, extra_blocks.Convs.P7);

    /// <summary>Input [C3, C4, C5] (N, C_i, H_i, W_i); output [P3 … P7] (N, OutChannels, H_l, W_l).</summary>
    /// <exception cref="ArgumentException">Not 3 inputs.</exception>
    public override Tensor[] forward(Tensor[] c)
    {
        if (c.Length != 3) throw new ArgumentException($"expected [C3, C4, C5], got {c.Length} tensors", nameof(c));
        using var scope = NewDisposeScope();
        var results = new Tensor[5];
        var last = Convolutions.Forward(Lateral(2), c[2]);
        results[2] = Convolutions.Forward(Output(2), last);
        for (int i = 1; i >= 0; i--)
        {
            var lateral = Convolutions.Forward(Lateral(i), c[i]);
            var topDown = functional.interpolate(last, size: [lateral.shape[2], lateral.shape[3]], mode: InterpolationMode.Nearest);
            last = lateral.add(topDown, TorchScalars.One);
            results[i] = Convolutions.Forward(Output(i), last);
        }
        var (p6, p7) = extra_blocks.forward(results[2], c[2]);
        results[3] = p6;
        results[4] = p7;
        foreach (var r in results) r.MoveToOuterDisposeScope();
        return results;
    }
}
