// The convolution shapes that crash (SIGFPE) or return NaN in libtorch 2.10's oneDNN brgemm kernels on CPUs whose CPUID
// reports no cache sizes: 1x1 convolutions with 1024 and 2048 outputs on channels-last tensors (ResNet-50 layer3/layer4),
// strided convolutions on tiny maps (P6 -> P7 at 2x2 -> 1x1), forward and backward. Each runs through the network in
// the configuration TorchRuntime chose for this machine and is checked against the same network in float64, which
// libtorch computes with its own kernels (oneDNN does not take float64): a reference computed another way.
using RetinaSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

public class ConvolutionFaultShapeTests
{
    private static (RetinaNet F32, RetinaNet F64) Pair(ResNetDepth depth, BackboneNormKind norm, int size)
    {
        var options = new RetinaNetOptions(3) { Backbone = depth, BackboneNorm = norm, TrainableBackboneLayers = 5, MinSize = size, MaxSize = size, FpnChannels = 64 };
        var f32 = new RetinaNet(options);
        DeterministicWeights.Fill(f32);
        var f64 = new RetinaNet(options);
        f64.load_state_dict(f32.state_dict());
        f64.Backbone.to(ScalarType.Float64);
        f64.Head.to(ScalarType.Float64);
        return (f32, f64);
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tol, string what)
    {
        Assert.False(actual.isnan().any().item<bool>(), $"{what}: NaN");
        double scale = Math.Max(1e-12, expected.abs().max().item<double>());
        double err = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
        Assert.True(err <= tol * scale, $"{what}: max |diff| {err:G3} > {tol} x max |ref| {scale:G3}");
    }

    [Theory]
    [InlineData(ResNetDepth.ResNet50)]
    [InlineData(ResNetDepth.ResNet18)]
    public void Channels_last_forward_at_tiny_sizes_matches_float64(ResNetDepth depth)
    {
        using var scope = NewDisposeScope();
        var (f32, f64) = Pair(depth, BackboneNormKind.Frozen, 64);
        using var _1 = f32; using var _2 = f64;
        f32.eval(); f64.eval();
        var x = DeterministicWeights.Image(7, 3, 64, 64).unsqueeze(0).repeat(2, 1, 1, 1);
        using (no_grad())
        {
            var (cls, box) = f32.forward(MemoryLayout.ToChannelsLast(x)); // 1x1 convs to 1024/2048 at 4x4 and 2x2, P7 at 1x1
            var (cls64, box64) = f64.forward(x.to(ScalarType.Float64));
            AssertClose(cls64, cls, 1e-4, "class logits");
            AssertClose(box64, box, 1e-4, "box deltas");
        }
        // The same on a prepared (folded, channels-last where this machine supports it) model.
        f32.PrepareForInference(channelsLast: true);
        Assert.Equal(TorchRuntime.ChannelsLastSupported, f32.ChannelsLast);
        using (no_grad())
        {
            var (cls, box) = f32.forward(x);
            var (cls64, box64) = f64.forward(x.to(ScalarType.Float64));
            AssertClose(cls64, cls, 1e-4, "class logits (prepared)");
            AssertClose(box64, box, 1e-4, "box deltas (prepared)");
        }
    }

    [Theory]
    [InlineData(ResNetDepth.ResNet50)]
    [InlineData(ResNetDepth.ResNet18)]
    public void Backward_through_strided_and_1x1_convolutions_matches_float64(ResNetDepth depth)
    {
        using var scope = NewDisposeScope();
        var (f32, f64) = Pair(depth, BackboneNormKind.Frozen, 32);
        using var _1 = f32; using var _2 = f64;
        f32.train(); f64.train();
        var x = DeterministicWeights.Image(3, 3, 32, 32).unsqueeze(0).repeat(2, 1, 1, 1) + 0.01 * arange(2).reshape(2, 1, 1, 1);
        // 32x32: layer4 strides 2x2 -> 1x1, P6 and P7 are 1x1; channels-last gradients reach every convolution
        var x32 = MemoryLayout.ToChannelsLast(x).requires_grad_(true);
        var x64 = x.to(ScalarType.Float64).requires_grad_(true);
        Tensor Objective(RetinaNet m, Tensor input)
        {
            var (cls, box) = m.forward(input);
            var wc = DeterministicWeights.Image(11, 1, cls.shape[1], cls.shape[2]).to(cls.dtype);
            var wb = DeterministicWeights.Image(12, 1, box.shape[1], box.shape[2]).to(box.dtype);
            return (cls * wc).sum() + (box * wb).sum();
        }
        TorchRuntime.Backward(Objective(f32, x32)); // oneDNN off even while other tests run forward passes
        TorchRuntime.Backward(Objective(f64, x64));
        AssertClose(x64.grad!, x32.grad!, 1e-3, "input gradient");
        var g64 = f64.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        int checkedParams = 0;
        foreach (var (name, p) in f32.named_parameters())
        {
            if (p.grad is null) continue;
            AssertClose(g64[name]!, p.grad, 2e-3, $"gradient of {name}");
            checkedParams++;
        }
        Assert.True(checkedParams > 50, $"only {checkedParams} parameters got gradients");
    }
}
