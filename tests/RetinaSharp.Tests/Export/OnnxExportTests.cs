// ONNX export (RetinaSharp.Export) run by ONNX Runtime (RetinaSharp.Serving) against the TorchSharp model on the same
// weights and real images (Fashion-MNIST scenes built from data/fashion-mnist): head outputs within 1e-4, detections
// equal (boxes within 1e-3 px, scores within 1e-4, same labels), for a small demo-like model and a torchvision .pth.
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Export;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Serving;
using RetinaSharp.Tests.Modeling;
using RetinaSharp.Tests.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Export;

/// <summary>Scenes of real Fashion-MNIST photographs: a 128x128 scene and a 128x256 one (two scenes side by side).</summary>
public sealed class OnnxSceneFixture
{
    public OnnxSceneFixture()
    {
        var set = FashionMnistSet.Load();
        var (_, val) = FashionScenes.SplitGlyphs(set.Count, 0);
        var options = new FashionScenesOptions("unused", Size: 128, Seed: 0);
        var a = FashionScenes.Compose(set, val, options, new Random(11)).Image;
        var b = FashionScenes.Compose(set, val, options, new Random(12)).Image;
        var wide = new byte[128 * 256 * 3];
        for (int y = 0; y < 128; y++)
        {
            Array.Copy(a.Pixels, y * 128 * 3, wide, y * 256 * 3, 128 * 3);
            Array.Copy(b.Pixels, y * 128 * 3, wide, y * 256 * 3 + 128 * 3, 128 * 3);
        }
        Images = [a, new RgbImage(wide, 256, 128)];
    }

    public RgbImage[] Images { get; }
}

public sealed class OnnxExportTests(OnnxSceneFixture scenes) : IClassFixture<OnnxSceneFixture>
{
    /// <summary>The demo's architecture, small: ResNet-18, trainable BatchNorm, GroupNorm heads; deterministic weights.</summary>
    internal static RetinaNet SmallModel(double scoreThreshold = 0.05)
    {
        var model = new RetinaNet(new RetinaNetOptions(10)
        {
            Backbone = ResNetDepth.ResNet18, BackboneNorm = BackboneNormKind.BatchNorm, HeadGroupNorm = true, FpnChannels = 64,
            MinSize = 128, MaxSize = 200, ScoreThreshold = scoreThreshold,
        });
        using var noGrad = no_grad();
        foreach (var (key, t) in model.state_dict())
        {
            if (key.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            var (scale, offset) = DeterministicWeights.KindScaleOffset(key, t.shape);
            using var src = tensor(DeterministicWeights.Values(key, t.shape, scale, offset)).reshape(t.shape);
            t.copy_(src);
        }
        model.PrepareForInference(channelsLast: false);
        return model;
    }

    private static string Export(RetinaNet model, OnnxExportOptions options)
    {
        string path = Path.Combine(TempDir.Create(), "model.onnx");
        OnnxExporter.Export(model, path, options with { HeadOutputs = true });
        return path;
    }

    /// <summary>Runs both engines on each image; asserts head outputs and detections agree; returns the detection counts.</summary>
    private static long[] AssertSameAsTorchSharp(RetinaNet model, string onnx, IEnumerable<RgbImage> images)
    {
        using var ort = new OnnxRuntimeDetector(onnx, new OnnxRuntimeDetectorOptions { Device = OnnxDevice.Cpu });
        Assert.Equal(OnnxRuntimeDetector.CpuProvider, ort.ExecutionProvider);
        var counts = new List<long>();
        foreach (var image in images)
        {
            using var scope = NewDisposeScope();
            var x = ImageIO.ToTensor(image);
            var batch = model.Transform.Preprocess([x]);
            var (cls, box) = model.forward(batch.Images);
            var (ortCls, ortBox) = ort.HeadOutputs(x);
            Assert.Equal(cls[0].shape, ortCls.shape);
            double clsDiff = (cls[0] - ortCls).abs().max().item<float>(), boxDiff = (box[0] - ortBox).abs().max().item<float>();
            Assert.True(clsDiff <= 1e-4, $"class logits differ by {clsDiff}");
            Assert.True(boxDiff <= 1e-4, $"box deltas differ by {boxDiff}");

            var expected = model.Detect([x])[0];
            var actual = ort.Detect(x);
            Assert.Equal(expected.Count, actual.Count);
            Assert.Equal(expected.Labels.data<long>().ToArray(), actual.Labels.data<long>().ToArray());
            if (expected.Count > 0)
            {
                double boxes = (expected.Boxes - actual.Boxes).abs().max().item<float>(), scores = (expected.Scores - actual.Scores).abs().max().item<float>();
                Assert.True(boxes <= 1e-3, $"boxes differ by {boxes} px");
                Assert.True(scores <= 1e-4, $"scores differ by {scores}");
            }
            counts.Add(expected.Count);
        }
        return [.. counts];
    }

    [Fact]
    public void DynamicGraphMatchesTorchSharpOnScenesOfTwoSizes()
    {
        using var model = SmallModel();
        var counts = AssertSameAsTorchSharp(model, Export(model, new OnnxExportOptions { Opset = 17 }), scenes.Images);
        Assert.All(counts, c => Assert.True(c > 0, "expected detections to compare"));
    }

    [Fact]
    public void FixedSizeOpset11GraphMatchesTorchSharp()
    {
        using var model = SmallModel();
        var counts = AssertSameAsTorchSharp(model, Export(model, new OnnxExportOptions { Opset = 11, FixedSize = (128, 256) }), [scenes.Images[1]]);
        Assert.True(counts[0] > 0);
    }

    [Fact]
    public void NoCandidateAboveThresholdGivesEmptyOutputs()
    {
        using var model = SmallModel(scoreThreshold: 0.999);
        var counts = AssertSameAsTorchSharp(model, Export(model, new OnnxExportOptions()), [scenes.Images[0]]);
        Assert.Equal(0, counts[0]);
    }
}
