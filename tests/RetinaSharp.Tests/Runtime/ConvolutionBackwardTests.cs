// The convolution backward made of forward convolutions and GEMMs (Runtime/ConvolutionBackward.cs) against libtorch's own
// convolution backward in float64: every stride/padding/kernel form RetinaNet uses (1x1 laterals and bottlenecks, strided
// 1x1 shortcuts, 3x3 head and FPN convolutions, strided 3x3 at even and odd sizes, the 7x7 stem, P6/P7 on tiny maps),
// with and without bias, with and without an input gradient; through the autograd node too.
using RetinaSharp.Runtime;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Runtime;

public class ConvolutionBackwardTests
{
    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(1e-12, expected.abs().max().item<double>());
        double err = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>();
        Assert.True(err <= 1e-5 * scale, $"{what}: max |diff| {err:G3} > 1e-5 x max |ref| {scale:G3}");
    }

    [Theory]
    [InlineData(8, 16, 12, 13, 1, 1, 0)]   // 1x1 lateral / bottleneck
    [InlineData(8, 16, 12, 12, 1, 2, 0)]   // strided 1x1 shortcut, even side
    [InlineData(8, 16, 13, 11, 1, 2, 0)]   // strided 1x1 shortcut, odd sides
    [InlineData(6, 10, 12, 9, 3, 1, 1)]    // 3x3 head / FPN output
    [InlineData(6, 10, 12, 12, 3, 2, 1)]   // strided 3x3 (layer2.0.conv2, P6), even side
    [InlineData(6, 10, 13, 15, 3, 2, 1)]   // strided 3x3, odd sides (the last row/column the forward never reads)
    [InlineData(3, 8, 22, 19, 7, 2, 3)]    // 7x7 stem
    [InlineData(6, 10, 4, 4, 3, 2, 1)]     // P6 -> P7 at 4x4 -> 2x2 (tiny: im2col path)
    [InlineData(6, 10, 2, 2, 3, 2, 1)]     // 2x2 -> 1x1
    [InlineData(6, 10, 1, 1, 3, 2, 1)]     // 1x1 -> 1x1
    [InlineData(6, 10, 5, 5, 3, 1, 0)]     // unpadded 3x3
    [InlineData(64, 27, 8, 8, 3, 1, 1)]    // the classification predictor of 3 classes: dL/dx reads 27 channels
    [InlineData(20, 36, 9, 9, 3, 2, 1)]    // box predictor width, strided, 20 input channels
    public void Gradients_match_libtorch_float64(int c, int o, int h, int w, int k, int stride, int pad)
    {
        using var scope = NewDisposeScope();
        manual_seed(c * 1000 + h * 10 + k);
        var x = randn(2, c, h, w, dtype: ScalarType.Float64);
        var weight = randn(o, c, k, k, dtype: ScalarType.Float64) * 0.2;
        var bias = randn(o, dtype: ScalarType.Float64);
        var x64 = x.clone().requires_grad_(true);
        var w64 = weight.clone().requires_grad_(true);
        var b64 = bias.clone().requires_grad_(true);
        var y64 = nn.functional.conv2d(x64, w64, b64, strides: [stride, stride], padding: [pad, pad]);
        var dy = randn_like(y64);
        var reference = autograd.grad([y64], [x64, w64, b64], [dy]);

        var geometry = new ConvGeometry(stride, stride, pad, pad, InputGrad: true, WeightGrad: true, BiasGrad: true);
        var (dx, dw, db) = ConvolutionBackwardFunction.Gradients(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), dy.to(ScalarType.Float32), geometry);
        AssertClose(reference[0], dx!, "dL/dx");
        AssertClose(reference[1], dw!, "dL/dW");
        AssertClose(reference[2], db!, "dL/db");
    }

    // 3x3 stride-1 convolutions with channel counts that are multiples of 16 take libtorch's own convolution backward
    // (NativeConvolutionGradients: an exported C++ function called through its ABI); the values prove the call.
    [Theory]
    [InlineData(16, 16, 12, 9, 1)]     // FPN output / head at a small level
    [InlineData(64, 64, 16, 16, 1)]    // ResNet-18 layer1 conv at 64 px
    [InlineData(256, 256, 8, 8, 1)]    // head at P5 of a 256-wide FPN
    [InlineData(32, 48, 5, 7, 1)]      // odd sides, O != C
    [InlineData(16, 32, 6, 6, 0)]      // unpadded
    public void Native_gradients_of_3x3_convolutions_match_libtorch_float64(int c, int o, int h, int w, int pad)
    {
        using var scope = NewDisposeScope();
        manual_seed(c * 100 + h);
        var x = randn(2, c, h, w, dtype: ScalarType.Float64);
        var weight = randn(o, c, 3, 3, dtype: ScalarType.Float64) * 0.2;
        var x64 = x.clone().requires_grad_(true);
        var w64 = weight.clone().requires_grad_(true);
        var y64 = nn.functional.conv2d(x64, w64, strides: [1, 1], padding: [pad, pad]);
        var dy = randn_like(y64);
        var reference = autograd.grad([y64], [x64, w64], [dy]);

        foreach (bool bias in new[] { true, false })
        {
            var geometry = new ConvGeometry(1, 1, pad, pad, InputGrad: true, WeightGrad: true, BiasGrad: bias);
            var x32 = x.to(ScalarType.Float32);
            var w32 = weight.to(ScalarType.Float32);
            Assert.True(NativeConvolutionGradients.Covers(x32, w32, geometry, ConvolutionBackwardFunction.TinySide));
            var (dx, dw, db) = ConvolutionBackwardFunction.Gradients(x32, w32, dy.to(ScalarType.Float32), geometry);
            AssertClose(reference[0], dx!, "dL/dx");
            AssertClose(reference[1], dw!, "dL/dW");
            if (bias) AssertClose(dy.sum([0, 2, 3]), db!, "dL/db");
            else Assert.Null(db);
        }
    }

    [Fact]
    public void Native_gradients_cover_only_3x3_stride_1_with_channels_in_multiples_of_16()
    {
        using var scope = NewDisposeScope();
        var x = zeros(2, 32, 8, 8);
        var g = new ConvGeometry(1, 1, 1, 1, InputGrad: true, WeightGrad: true, BiasGrad: false);
        Assert.True(NativeConvolutionGradients.Covers(x, zeros(16, 32, 3, 3), g, 3));
        Assert.False(NativeConvolutionGradients.Covers(x, zeros(27, 32, 3, 3), g, 3));                 // predictor of 3 classes
        Assert.False(NativeConvolutionGradients.Covers(x, zeros(16, 32, 1, 1), g with { PadH = 0, PadW = 0 }, 3)); // 1x1
        Assert.False(NativeConvolutionGradients.Covers(x, zeros(16, 32, 3, 3), g with { StrideH = 2, StrideW = 2 }, 3));
        Assert.False(NativeConvolutionGradients.Covers(x, zeros(16, 32, 3, 3), g with { InputGrad = false }, 3));
        Assert.False(NativeConvolutionGradients.Covers(zeros(2, 32, 2, 8), zeros(16, 32, 3, 3), g, 3));  // tiny map
        Assert.False(NativeConvolutionGradients.Covers(x.to(ScalarType.Float64), zeros(16, 32, 3, 3, dtype: ScalarType.Float64), g, 3));
    }

    [Theory]
    [InlineData(27)]
    [InlineData(100)]
    [InlineData(64)]
    public void Forward_with_any_input_channel_count_matches_float64(int channels)
    {
        // On the CPUs without cache sizes oneDNN reads 17-31, 33-47, ... input channels wrongly; Convolutions pads them.
        using var scope = NewDisposeScope();
        manual_seed(channels);
        using var conv = TorchSharp.torch.nn.Conv2d(channels, 32, 3, padding: 1);
        var x = randn(2, channels, 12, 12);
        Tensor y;
        using (no_grad())
        using (TorchRuntime.NetworkForward())
            y = Convolutions.Forward(conv, x);
        var reference = nn.functional.conv2d(x.to(ScalarType.Float64), conv.weight!.to(ScalarType.Float64), conv.bias!.to(ScalarType.Float64), padding: [1, 1]);
        AssertClose(reference, y, "forward");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_autograd_node_gives_libtorchs_gradients_and_skips_unwanted_ones(bool withBias)
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        var x = randn(2, 5, 9, 10);
        var weight = randn(7, 5, 3, 3) * 0.2;
        var bias = withBias ? randn(7) : null;
        // Reference: libtorch's conv2d backward (float64).
        var w64 = weight.to(ScalarType.Float64).requires_grad_(true);
        var b64 = bias?.to(ScalarType.Float64).requires_grad_(true);
        var y64 = nn.functional.conv2d(x.to(ScalarType.Float64), w64, b64, strides: [2, 2], padding: [1, 1]);
        var dy = randn_like(y64);
        TorchRuntime.Backward((y64 * dy).sum());
        // Ours: x needs no gradient (a frozen stem's input), the weight and bias do.
        var w32 = weight.clone().requires_grad_(true);
        var b32 = bias?.clone().requires_grad_(true);
        var geometry = new ConvGeometry(2, 2, 1, 1, InputGrad: false, WeightGrad: true, BiasGrad: withBias);
        var y = b32 is null ? ConvolutionBackwardFunction.apply(x, w32, geometry) : ConvolutionBackwardFunction.apply(x, w32, geometry, b32);
        AssertClose(y64.detach(), y.detach(), "forward");
        TorchRuntime.Backward((y * dy.to(ScalarType.Float32)).sum());
        AssertClose(w64.grad!, w32.grad!, "weight gradient");
        if (withBias) AssertClose(b64!.grad!, b32!.grad!, "bias gradient");
        Assert.Null(x.grad);
    }
}
