// Reference: ONNX Runtime running ML.NET's own graphs (ResNetPreprocess.onnx then ResNet18.onnx from
// Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1) on real images (Fashion-MNIST scenes at 224x224).
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Modeling;
using RetinaSharp.Pretrained;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaSharp.Tests.Pretrained;

public class MlNetResNet18Tests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Two 224x224 scenes, (1, 3, 224, 224) RGB in [0, 1] each.</summary>
    private static List<Tensor> Scenes()
    {
        var set = FashionMnistSet.Load();
        var options = new FashionScenesOptions(Path.GetTempPath(), Size: 224, MinObjects: 3);
        var rng = new Random(5);
        var pool = Enumerable.Range(0, set.Count).ToArray();
        return [.. Enumerable.Range(0, 2).Select(_ => ImageIO.ToTensor(FashionScenes.Compose(set, pool, options, rng).Image).unsqueeze(0))];
    }

    private static float[] RunOnnx(InferenceSession session, string input, float[] data)
    {
        var t = new DenseTensor(data, [1, 3, 224, 224]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, t)]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    [Fact]
    public void PooledC5EqualsOnnxRuntimeOnTheSameGraph()
    {
        using var scope = NewDisposeScope();
        using var prep = new InferenceSession(MlNetResNet18.DefaultPreprocessPath);
        using var net = new InferenceSession(MlNetResNet18.DefaultModelPath);
        using var body = new ResNetBody(ResNetDepth.ResNet18Cntk, BackboneNormKind.Frozen);
        Assert.Equal(110, MlNetResNet18.CopyInto(body));
        body.eval();
        var options = BackboneWeights.ImageNet.Configure(new RetinaNetOptions(2));
        var mean = tensor(options.ImageMean.Select(v => (float)v).ToArray()).view(1, 3, 1, 1);
        var std = tensor(options.ImageStd.Select(v => (float)v).ToArray()).view(1, 3, 1, 1);
        using var noGrad = no_grad();
        foreach (var image in Scenes())
        {
            // ONNX Runtime: RGB 0..255 -> BGR minus the mean image -> ResNet-18 -> 7x7 average pool.
            var preprocessed = RunOnnx(prep, "OriginalInput", (image * 255).contiguous().data<float>().ToArray());
            var expected = tensor(RunOnnx(net, "Input247", preprocessed));
            Assert.Equal(512, expected.shape[0]);
            // Ours on the same preprocessed input, channels back in RGB order (conv1 was reordered at import).
            var bgr = tensor(preprocessed, [1, 3, 224, 224]);
            var pooled = body.forward(bgr.flip(1))[2].mean([2L, 3L]).squeeze(0);
            double maxDiff = (pooled - expected).abs().max().item<float>();
            Assert.True(maxDiff < 1e-4, $"pooled C5: max |ours - ONNX Runtime| = {maxDiff} (values up to {expected.abs().max().item<float>()})");

            // The detector's normalisation subtracts the per-channel mean instead of the mean image: close, not equal.
            var perChannel = body.forward((image - mean) / std)[2].mean([2L, 3L]).squeeze(0);
            double cosine = (perChannel * expected).sum().item<float>() / (perChannel.norm().item<float>() * expected.norm().item<float>());
            Assert.True(cosine > 0.99, $"cosine(per-channel mean, mean image) = {cosine}");
            output.WriteLine($"max |ours - ONNX Runtime| = {maxDiff:G3} (values up to {expected.abs().max().item<float>():G3}); per-channel mean vs mean image: cosine {cosine:F5}, max diff {(perChannel - expected).abs().max().item<float>():G3}");
        }
    }

    [Fact]
    public void NormalisationIsThePerChannelAverageOfTheMeanImage()
    {
        // The mean image's channel averages are 103.06 (B), 115.90 (G), 123.15 (R) of 255 (read from ResNetPreprocess.onnx).
        var (mean, std) = MlNetResNet18.ImageNormalization();
        Assert.Equal(123.1516 / 255, mean[0], 4);
        Assert.Equal(115.9029 / 255, mean[1], 4);
        Assert.Equal(103.0626 / 255, mean[2], 4);
        Assert.Equal([1 / 255.0, 1 / 255.0, 1 / 255.0], std);
    }

    [Fact]
    public void OddSidesUseTheGraphsAsymmetricPadding()
    {
        // conv1 pads [3, 3, 2, 2] and the max-pool [1, 1, 0, 0]: a 225-pixel side gives floor((225 + 5 - 7) / 2) + 1 = 112,
        // then floor((112 + 1 - 3) / 2) + 1 = 56 (torchvision's symmetric padding would give 113 and 57).
        using var scope = NewDisposeScope();
        using var body = new ResNetBody(ResNetDepth.ResNet18Cntk);
        body.eval();
        using var noGrad = no_grad();
        var c = body.forward(randn(1, 3, 225, 224));
        Assert.Equal([1L, 128, 28, 28], c[0].shape); // 225 -> 112 -> 56 -> 28 (C3), as for 224
        using var torchvisionLike = new ResNetBody(ResNetDepth.ResNet18);
        torchvisionLike.eval();
        Assert.Equal([1L, 128, 29, 28], torchvisionLike.forward(randn(1, 3, 225, 224))[0].shape); // 225 -> 113 -> 57 -> 29
    }

    [Fact]
    public void GraphPaddingEqualsSymmetricPaddingOnEvenSides()
    {
        // The reason the fast path is exact: with even sides, padding (p, p - 1) and (p, p) read the same windows.
        using var scope = NewDisposeScope();
        var x = randn(1, 4, 10, 12);
        var w = randn(5, 4, 3, 3);
        var asym = nn.functional.conv2d(nn.functional.pad(x, [1, 0, 1, 0]), w, strides: [2, 2]);
        var sym = nn.functional.conv2d(x, w, strides: [2, 2], padding: [1, 1]);
        Assert.Equal(sym.shape, asym.shape);
        Assert.True(sym.allclose(asym, 1e-6, 1e-6));
    }
}
