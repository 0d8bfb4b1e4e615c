using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

public class MemoryLayoutTests
{
    [Fact]
    public void ToChannelsLast_keeps_shape_and_values_and_gives_NHWC_strides()
    {
        using var scope = NewDisposeScope();
        var x = arange(2 * 3 * 4 * 5, dtype: ScalarType.Float32).reshape(2, 3, 4, 5);
        var y = MemoryLayout.ToChannelsLast(x);
        Assert.Equal(new long[] { 2, 3, 4, 5 }, y.shape);
        // (H·W·C, 1, W·C, C) = (60, 1, 15, 3)
        Assert.Equal(new long[] { 60, 1, 15, 3 }, y.stride());
        Assert.True(MemoryLayout.IsChannelsLast(y));
        Assert.False(MemoryLayout.IsChannelsLast(x));
        Assert.Equal(0f, (x - y).abs().max().item<float>());
        // Element (n=1, c=2, h=3, w=4) sits at offset 60 + 2 + 45 + 12 = 119 of the NHWC buffer.
        Assert.Equal(x[1, 2, 3, 4].item<float>(), y.as_strided([120], [1], 0)[119].item<float>());
    }

    [Fact]
    public void ChannelsLast_convolution_equals_the_NCHW_one()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = randn(2, 8, 9, 7);
        var w = randn(16, 8, 3, 3);
        var expected = nn.functional.conv2d(x, w, padding: [1, 1]);
        var actual = nn.functional.conv2d(MemoryLayout.ToChannelsLast(x), MemoryLayout.ToChannelsLast(w), padding: [1, 1]);
        Assert.True(MemoryLayout.IsChannelsLast(actual));
        Assert.True((expected - actual).abs().max().item<float>() < 1e-4f);
    }

    [Fact]
    public void ToChannelsLast_refuses_tensors_that_are_not_4d()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => MemoryLayout.ToChannelsLast(zeros(3, 4, 5)));
        Assert.Contains("[3, 4, 5]", e.Message);
    }
}
