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
using RetinaSharp.Tests.Data;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Export;

[Collection(OnnxCollection.Name)]
public sealed class OnnxExportTests(OnnxFixture onnx, Xunit.Abstractions.ITestOutputHelper output)
{
    private static string Export(RetinaNet model, OnnxExportOptions options, TempDir dir)
    {
        string path = dir["model.onnx"];
        OnnxExporter.Export(model, path, options with { HeadOutputs = true });
        return path;
    }

    /// <summary>Runs both engines on each image; asserts head outputs and detections agree; returns the detection counts.</summary>
    private long[] AssertSameAsTorchSharp(RetinaNet model, string onnxFile, IEnumerable<RgbImage> images)
    {
        using var ort = new OnnxRuntimeDetector(onnxFile, new OnnxRuntimeDetectorOptions { Device = OnnxDevice.Cpu });
        return AssertSameAsTorchSharp(model, ort, images);
    }

    private long[] AssertSameAsTorchSharp(RetinaNet model, OnnxRuntimeDetector ort, IEnumerable<RgbImage> images)
    {
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
                output.WriteLine($"{image.Width}x{image.Height}: {expected.Count} detections; max |diff| logits {clsDiff:g3}, deltas {boxDiff:g3}, boxes {boxes:g3} px, scores {scores:g3}");
            }
            counts.Add(expected.Count);
        }
        return [.. counts];
    }

    [Fact]
    public void DynamicGraphMatchesTorchSharpOnScenesOfTwoSizes()
    {
        var counts = AssertSameAsTorchSharp(onnx.Model, onnx.Detector, onnx.Images[..2]);
        Assert.All(counts, c => Assert.True(c > 0, "expected detections to compare"));
    }

    [Fact]
    public void DynamicGraphResizesWithTorchvisionsFloat32Scale()
    {
        // A size whose float32 scale (torchvision, DetectionTransform) gives another resized size than float64 would.
        var o = onnx.Model.Options;
        var (h, w) = (from hh in Enumerable.Range(100, 100) from ww in Enumerable.Range(150, 50)
                      let s = Math.Min((double)o.MinSize / Math.Min(hh, ww), (double)o.MaxSize / Math.Max(hh, ww))
                      where DetectionTransform.ResizedSize(hh, ww, o.MinSize, o.MaxSize) != ((long)Math.Floor(hh * s), (long)Math.Floor(ww * s))
                      select (hh, ww)).First();
        var image = RetinaSharp.Data.Augmentation.Resize(onnx.Images[1], [], w, h).Image;
        AssertSameAsTorchSharp(onnx.Model, onnx.Detector, [image]);
    }

    [Fact]
    public void FixedSizeOpset11GraphMatchesTorchSharp()
    {
        using var dir = new TempDir();
        var counts = AssertSameAsTorchSharp(onnx.Model, Export(onnx.Model, new OnnxExportOptions { Opset = 11, FixedSize = (128, 256) }, dir), [onnx.Images[1]]);
        Assert.True(counts[0] > 0);
    }

    [Fact]
    public void FixedSizeGraphAtTheResizedSizeSkipsResizeAndPaddingAndStillMatches()
    {
        // 128x128 with MinSize 128 and SizeDivisible 32: the resize is the identity and there is nothing to pad, so the graph
        // has neither node (one copy of the image less each) and computes the same detections.
        using var dir = new TempDir();
        string file = Export(onnx.Model, new OnnxExportOptions { FixedSize = (128, 128) }, dir);
        var nodes = RetinaSharp.Export.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(file)).Graph.Node.Select(n => n.Name).ToList();
        Assert.DoesNotContain("preprocess/resize", nodes);
        Assert.DoesNotContain("preprocess/pad", nodes);
        Assert.Contains("preprocess/normalize/div_std", nodes);
        var counts = AssertSameAsTorchSharp(onnx.Model, file, [onnx.Images[0]]);
        Assert.True(counts[0] > 0);
        // At another size both are there.
        var other = RetinaSharp.Export.Proto.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(onnx.Model, new OnnxExportOptions { FixedSize = (100, 150) })).Graph.Node.Select(n => n.Name).ToList();
        Assert.Contains("preprocess/resize", other);
        Assert.Contains("preprocess/pad", other);
    }

    [Fact]
    public void NoCandidateAboveThresholdGivesEmptyOutputs()
    {
        using var dir = new TempDir();
        var options = onnx.Model.Options;
        onnx.Model.Reconfigure(options with { ScoreThreshold = 0.999 });
        try
        {
            var counts = AssertSameAsTorchSharp(onnx.Model, Export(onnx.Model, new OnnxExportOptions(), dir), [onnx.Images[0]]);
            Assert.Equal(0, counts[0]);
        }
        finally
        {
            onnx.Model.Reconfigure(options);
        }
    }

    [Fact]
    public void TorchvisionPthMatchesTorchSharp()
    {
        // torchvision's retinanet_resnet50_fpn layout and keys (the parity fixture's deterministic weights, 5 classes,
        // min 160 / max 256), written as a .pth state dict and loaded back as a user's torchvision checkpoint would be.
        using var dir = new TempDir();
        using (var source = new RetinaNet(new RetinaNetOptions(5) { MinSize = 160, MaxSize = 256 }))
        {
            DeterministicWeights.Fill(source);
            RetinaNetCheckpoint.SaveTorchvisionPth(source, dir["retinanet.pth"]);
        }
        using var model = RetinaNetCheckpoint.Load(dir["retinanet.pth"], new RetinaNetOptions(5) { MinSize = 160, MaxSize = 256 });
        model.PrepareForInference(channelsLast: false);
        var counts = AssertSameAsTorchSharp(model, Export(model, new OnnxExportOptions(), dir), [onnx.Images[1]]);
        Assert.True(counts[0] > 0, "expected detections to compare");
    }

    [Fact]
    public void Bfloat16ModelIsRefusedNamingTheOption()
    {
        // Weights do not matter here: the refusal comes before any tensor is written.
        using var model = new RetinaNet(onnx.Model.Options);
        model.PrepareForInference(bfloat16: true, channelsLast: false);
        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(model));
        Assert.Contains("PrepareForInference(bfloat16: true)", e.Message);
        var opset = Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(onnx.Model, new OnnxExportOptions { Opset = 18 }));
        Assert.Contains("OnnxExportOptions.Opset = 18", opset.Message);
    }

    [Fact]
    public void OnnxFileWithoutRetinaSharpMetadataIsRefused()
    {
        // A valid ONNX model (one Identity node) that is not ours: ONNX Runtime loads it, the serving type refuses it.
        using var dir = new TempDir();
        var g = new RetinaSharp.Export.Proto.GraphProto { Name = "other" };
        g.Node.Add(new RetinaSharp.Export.Proto.NodeProto { OpType = "Identity", Name = "id", Input = { "x" }, Output = { "y" } });
        var type = new RetinaSharp.Export.Proto.TypeProto { TensorType = new() { ElemType = 1, Shape = new() { Dim = { new RetinaSharp.Export.Proto.TensorShapeProto.Types.Dimension { DimValue = 1 } } } } };
        g.Input.Add(new RetinaSharp.Export.Proto.ValueInfoProto { Name = "x", Type = type });
        g.Output.Add(new RetinaSharp.Export.Proto.ValueInfoProto { Name = "y", Type = type });
        var m = new RetinaSharp.Export.Proto.ModelProto { IrVersion = 8, Graph = g, OpsetImport = { new RetinaSharp.Export.Proto.OperatorSetIdProto { Version = 17 } } };
        File.WriteAllBytes(dir["other.onnx"], Google.Protobuf.MessageExtensions.ToByteArray(m));
        var e = Assert.Throws<DataFormatException>(() => new OnnxRuntimeDetector(dir["other.onnx"]));
        Assert.Equal(OnnxDetectorMetadata.FormatKey, e.Field);
        Assert.Contains("not written by RetinaSharp's exporter", e.Message);
        File.WriteAllText(dir["text.onnx"], "not a model");
        var bad = Assert.Throws<DataFormatException>(() => new OnnxRuntimeDetector(dir["text.onnx"]));
        Assert.Contains("is not an ONNX model", bad.Message);
    }
}
