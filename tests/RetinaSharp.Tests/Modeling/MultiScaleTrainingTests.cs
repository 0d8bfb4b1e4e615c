using RetinaSharp.Modeling;
using RetinaSharp.Tests.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

/// <summary>
/// Multi-scale training (RetinaNetOptions.TrainMinSizes, `retina train --scales`): in training mode the transform draws each
/// image's shorter side (torchvision's min_size tuple), so the padded batch changes with the draw; inference keeps MinSize.
/// </summary>
[Collection(TorchRngCollection.Name)]
public class MultiScaleTrainingTests
{
    [Fact]
    public void Training_batches_take_the_size_of_the_drawn_scale_and_inference_keeps_min_size()
    {
        using var scope = NewDisposeScope();
        // A 64x96 image: the float32 scales 64/64, 96/64 and 128/64 are exact, so the resized sizes are 64x96, 96x144, 128x192,
        // padded to multiples of 32: 64x96, 96x160, 128x192.
        var transform = new DetectionTransform(new RetinaNetOptions(1) { MinSize = 64, MaxSize = 1000, TrainMinSizes = [64, 96, 128] });
        var image = rand(3, 64, 96);
        manual_seed(0);
        var seen = new Dictionary<(long, long), int>();
        for (int i = 0; i < 30; i++)
        {
            var batch = transform.Preprocess([image], training: true);
            var expectedPadded = batch.ImageSizes[0] switch
            {
                (64, 96) => (64L, 96L),
                (96, 144) => (96L, 160L),
                (128, 192) => (128L, 192L),
                var other => throw new Xunit.Sdk.XunitException($"unexpected resized size {other}"),
            };
            Assert.Equal(expectedPadded, batch.PaddedSize);
            seen[batch.PaddedSize] = seen.GetValueOrDefault(batch.PaddedSize) + 1;
        }
        Assert.Equal(3, seen.Count); // every scale was drawn
        for (int i = 0; i < 5; i++)
            Assert.Equal((64L, 96L), transform.Preprocess([image]).PaddedSize); // inference: MinSize
    }

    [Fact]
    public void Each_image_of_a_batch_draws_its_own_scale()
    {
        using var scope = NewDisposeScope();
        var transform = new DetectionTransform(new RetinaNetOptions(1) { MinSize = 64, MaxSize = 1000, TrainMinSizes = [64, 128] });
        manual_seed(3);
        var mixed = 0;
        for (int i = 0; i < 20; i++)
        {
            var batch = transform.Preprocess([rand(3, 64, 64), rand(3, 64, 64)], training: true);
            if (batch.ImageSizes[0] != batch.ImageSizes[1]) mixed++;
            Assert.Equal(batch.ImageSizes.Max(s => s.H), batch.PaddedSize.H);
        }
        Assert.InRange(mixed, 1, 19);
    }

    [Fact]
    public void ComputeLosses_in_training_mode_trains_at_the_drawn_scale()
    {
        using var scope = NewDisposeScope();
        // B's only training scale is A's inference size: in training mode both compute the same losses, in eval mode B runs at 128 px.
        var small = new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, FpnChannels = 32, MinSize = 64, MaxSize = 128 };
        manual_seed(7);
        using var a = new RetinaNet(small);
        manual_seed(7);
        using var b = new RetinaNet(small with { MinSize = 128, TrainMinSizes = [64] });
        manual_seed(1);
        var image = rand(3, 64, 64);
        var target = new DetectionTarget(tensor(new float[,] { { 8, 8, 40, 36 } }), tensor(new long[] { 1 }));
        a.train(); b.train();
        var la = a.ComputeLosses([image], [target]);
        var lb = b.ComputeLosses([image], [target]);
        Assert.Equal(la.Classification.item<float>(), lb.Classification.item<float>());
        Assert.Equal(la.BoxRegression.item<float>(), lb.BoxRegression.item<float>());
        a.eval(); b.eval();
        using (no_grad())
            Assert.NotEqual(a.ComputeLosses([image], [target]).Classification.item<float>(), b.ComputeLosses([image], [target]).Classification.item<float>());
    }

    [Theory]
    [InlineData(new int[0])]
    [InlineData(new[] { 64, 0 })]
    [InlineData(new[] { 64, 2000 })]
    public void Bad_training_scales_are_refused_naming_the_field(int[] scales)
    {
        var e = Assert.Throws<ArgumentException>(() => new RetinaNetOptions(1) { MinSize = 64, MaxSize = 1333, TrainMinSizes = scales }.Validate());
        Assert.Equal("TrainMinSizes", e.ParamName);
        Assert.Contains("1..MaxSize (1333)", e.Message);
    }
}
