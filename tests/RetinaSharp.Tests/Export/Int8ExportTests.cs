// int8 export (OnnxExportOptions.Int8, RetinaSharp.Quantization): the uint8 parameters of a range by hand, the calibrated
// ranges against TorchSharp's own preprocessing, every convolution running as ONNX Runtime's QLinearConv, the int8 head
// close to float32 on real scenes, and the refusals (opset, a calibration of another architecture, the CLI's options).
using Google.Protobuf;
using RetinaSharp.Cli;
using RetinaSharp.Data;
using RetinaSharp.Export;
using RetinaSharp.Export.Proto;
using RetinaSharp.Modeling;
using RetinaSharp.Quantization;
using RetinaSharp.Serving;
using RetinaSharp.Tests.Data;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Export;

[Collection(OnnxCollection.Name)]
public sealed class Int8ExportTests(OnnxFixture onnx, Xunit.Abstractions.ITestOutputHelper output)
{
    private Int8Calibration Calibrate() => Int8Calibrator.Calibrate(onnx.Model, onnx.Images.Select(ImageIO.ToTensor).ToList());

    [Theory]
    [InlineData(-1f, 3f, 4f / 255, 64)]        // zero point round(1 / (4/255)) = round(63.75)
    [InlineData(0.5f, 2f, 2f / 255, 0)]        // widened to [0, 2]: ReLU-like ranges get zero point 0
    [InlineData(-3f, -1f, 3f / 255, 255)]      // widened to [-3, 0]
    [InlineData(0f, 0f, 1f, 0)]                // one value: scale 1
    public void RangeToUInt8MatchesHandComputedValues(float min, float max, float scale, int zeroPoint)
    {
        var (s, z) = new ActivationRange(min, max).ToUInt8();
        Assert.Equal(scale, s, 1e-7f);
        Assert.Equal(zeroPoint, z);
    }

    [Fact]
    public void CalibrationMeasuresThePreprocessedImagesAndReluFloors()
    {
        var calibration = Calibrate();
        Assert.Equal(onnx.Images.Length, calibration.Images);
        // The first point is the normalised, resized, zero-padded image: TorchSharp's own preprocessing of each image alone.
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var image in onnx.Images)
        {
            using var scope = NewDisposeScope();
            var batch = onnx.Model.Transform.Preprocess([ImageIO.ToTensor(image)]).Images;
            lo = MathF.Min(lo, batch.min().item<float>());
            hi = MathF.Max(hi, batch.max().item<float>());
        }
        var pre = calibration["preprocess"];
        output.WriteLine($"preprocess [{pre.Min}, {pre.Max}], TorchSharp [{lo}, {hi}]; {calibration.Ranges.Count} points");
        Assert.Equal(lo, pre.Min, 1e-4f);
        Assert.Equal(hi, pre.Max, 1e-4f);
        // After a ReLU the floor is 0 exactly (so its zero point is 0 and ONNX Runtime drops the ReLU into the convolution).
        Assert.Equal(0f, calibration["backbone/stem/relu"].Min);
        Assert.True(calibration["backbone/stem/relu"].Max > 0);
        Assert.Equal(0, calibration["backbone/layer4.1/relu"].ToUInt8().ZeroPoint);
        // Every convolution's output and input is a point: stem, 8 blocks (2 units + block output, 3 downsamples), FPN (3 laterals,
        // 2 top-down sums, P3-P7, P6's ReLU), and per level (5) and subnet (2) 4 blocks (conv, relu) + predictor.
        Assert.Equal(2 + 8 * 3 + 3 + 3 + 2 + 5 + 1 + 5 * 2 * (4 * 2 + 1), calibration.Ranges.Count);
    }

    [Fact]
    public void EveryConvolutionRunsAsQLinearConvInOnnxRuntime()
    {
        using var dir = new TempDir();
        var calibration = Calibrate();
        string file = dir["int8.onnx"], optimized = dir["int8.optimized.onnx"];
        OnnxExporter.Export(onnx.Model, file, new OnnxExportOptions { Int8 = calibration });
        var float32 = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(onnx.Model));
        int convolutions = float32.Graph.Node.Count(n => n.OpType == "Conv");
        Assert.Equal(78, convolutions);   // 20 backbone (stem, 8 blocks x 2, 3 downsamples), 8 FPN, 5 levels x 2 subnets x 5
        // What ONNX Runtime makes of the graph (all optimisations, as OnnxRuntimeDetector runs it).
        using (var so = new Microsoft.ML.OnnxRuntime.SessionOptions
               { GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = optimized })
        using (new Microsoft.ML.OnnxRuntime.InferenceSession(file, so)) { }
        var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine(string.Join(", ", ops.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}")));
        Assert.Equal(convolutions, ops.Where(kv => kv.Key.Contains("QLinearConv", StringComparison.Ordinal)).Sum(kv => kv.Value));
        Assert.False(ops.ContainsKey("Conv"), "a float32 convolution is left");
        Assert.Equal(8, ops.GetValueOrDefault("QLinearAdd"));   // the residual additions of ResNet-18's 8 blocks
        using var detector = new OnnxRuntimeDetector(file, new OnnxRuntimeDetectorOptions { Device = OnnxDevice.Cpu });
        Assert.True(detector.IsInt8);
        Assert.StartsWith("int8 static (QDQ)", detector.Precision);
        Assert.False(onnx.Detector.IsInt8);
    }

    [Fact]
    public void Int8HeadStaysCloseToFloat32OnRealScenes()
    {
        using var dir = new TempDir();
        string file = dir["int8.onnx"];
        OnnxExporter.Export(onnx.Model, file, new OnnxExportOptions { Opset = OnnxExportOptions.MinInt8Opset, Int8 = Calibrate(), HeadOutputs = true });   // the oldest int8 opset
        using var int8 = new OnnxRuntimeDetector(file, new OnnxRuntimeDetectorOptions { Device = OnnxDevice.Cpu });
        foreach (var image in onnx.Images[..2])
        {
            using var scope = NewDisposeScope();
            var x = ImageIO.ToTensor(image);
            var (cls, box) = onnx.Detector.HeadOutputs(x);
            var (qcls, qbox) = int8.HeadOutputs(x);
            Assert.Equal(cls.shape, qcls.shape);
            // Relative error of the logits and deltas over the image: the quantisation noise of 78 int8 convolutions. This
            // untrained model's deltas are small (mean |delta| below 0.1), so their relative error is the larger one.
            double clsRel = ((cls - qcls).norm() / cls.norm()).item<float>(), boxRel = ((box - qbox).norm() / box.norm()).item<float>();
            double clsMax = (cls - qcls).abs().max().item<float>(), boxMean = box.abs().mean().item<float>();
            output.WriteLine($"{image.Width}x{image.Height}: logits relative error {clsRel:0.0000} (max |diff| {clsMax:0.000}), deltas {boxRel:0.0000} (mean |delta| {boxMean:0.000})");
            Assert.True(clsRel < 0.03, $"logits relative error {clsRel}");
            Assert.True(boxRel < 0.15, $"box deltas relative error {boxRel}");
            Assert.True(clsRel > 0, "the int8 graph computed exactly what float32 does: it is not quantised");
            // The detections that matter survive: each of the ten best float32 detections has an int8 detection of its class
            // overlapping it at IoU >= 0.9.
            var expected = onnx.Detector.Detect(x);
            var actual = int8.Detect(x);
            var strong = Enumerable.Range(0, (int)Math.Min(10, expected.Count)).Select(i => (long)i).ToArray();
            Assert.Equal(10, strong.Length);
            var iou = RetinaSharp.Geometry.BoxOps.Iou(expected.Boxes, actual.Boxes);
            var expectedLabels = expected.Labels.data<long>().ToArray();
            var actualLabels = actual.Labels.data<long>().ToArray();
            int found = strong.Count(i => Enumerable.Range(0, actualLabels.Length).Any(j => actualLabels[j] == expectedLabels[i] && iou[i, j].item<float>() >= 0.9f));
            output.WriteLine($"  {found} of the {strong.Length} best float32 detections (scores {expected.Scores[0].item<float>():0.000}..{expected.Scores[9].item<float>():0.000}) found by int8 (IoU >= 0.9, same class)");
            Assert.Equal(strong.Length, found);
        }
    }

    [Fact]
    public void ClassLogitsAreQuantisedFromJustBelowTheScoreThreshold()
    {
        // Logits below logit(0.05) - 2 are no candidates: the graph saturates them there and spends its 255 steps above.
        var calibration = Calibrate();
        var measured = calibration["head/classification/p3/cls_logits"];
        float floor = (float)(Math.Log(0.05 / 0.95) - 2);
        Assert.True(measured.Min < floor, $"calibrated minimum {measured.Min} is above the floor {floor}: the test would check nothing");
        var graph = ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(onnx.Model, new OnnxExportOptions { Int8 = calibration }));
        float Scalar(string name) => BitConverter.ToSingle(graph.Graph.Initializer.Single(i => i.Name == name).RawData.ToByteArray());
        byte ZeroPoint(string name) => graph.Graph.Initializer.Single(i => i.Name == name).RawData[0];
        var (scale, zp) = new ActivationRange(floor, measured.Max).ToUInt8();
        Assert.Equal(scale, Scalar("head.classification.p3.cls_logits.scale"));
        Assert.Equal(zp, ZeroPoint("head.classification.p3.cls_logits.zero_point"));
        // Box deltas keep their whole calibrated range.
        var deltas = calibration["head/regression/p3/bbox_reg"].ToUInt8();
        Assert.Equal(deltas.Scale, Scalar("head.regression.p3.bbox_reg.scale"));
    }

    [Fact]
    public void Int8BelowOpset13AndAnotherArchitecturesCalibrationAreRefused()
    {
        var calibration = Calibrate();
        var opset = Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(onnx.Model, new OnnxExportOptions { Opset = 11, Int8 = calibration }));
        Assert.Contains("OnnxExportOptions.Opset = 11", opset.Message);
        Assert.Contains("opset 13", opset.Message);
        // A ResNet-34 has a third block in layer1, which the ResNet-18's calibration never measured.
        using var deeper = new RetinaNet(onnx.Model.Options with { Backbone = ResNetDepth.ResNet34 });
        var other = Assert.Throws<ArgumentException>(() => OnnxExporter.ToBytes(deeper, new OnnxExportOptions { Int8 = calibration }));
        Assert.Contains("another architecture", other.Message);
        Assert.Contains("backbone/layer1.2/", other.Message);
    }

    [Fact]
    public void CliExportsInt8AndDetectSaysSo()
    {
        using var temp = new TempDir();
        string gt = Path.Combine(onnx.CheckpointFolder, "images");   // a folder of images (a dataset file also works)
        string file = temp["int8.onnx"];
        var (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--onnx", file, "--int8", "--calibration", gt, "--calibration-images", "3");
        Assert.True(code == CliApp.Ok, error);
        using (var d = new OnnxRuntimeDetector(file))
            Assert.StartsWith("int8 static (QDQ): uint8 activations per tensor (min/max of 3 calibration images)", d.Precision);
        (code, var printed, error) = OnnxFixture.RunWithOutput("detect", "--weights", file, "--engine", "onnxruntime", Path.Combine(onnx.CheckpointFolder, "images"), "--out", temp["out"]);
        Assert.True(code == CliApp.Ok, error);
        Assert.True(printed.Contains("Engine: ONNX Runtime on CPU", StringComparison.Ordinal) && printed.Contains(", int8, int8.onnx.", StringComparison.Ordinal), printed + error);

        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--onnx", temp["a.onnx"], "--int8");
        Assert.True(code == CliApp.BadInput, error);
        Assert.Contains("--int8 needs --calibration", error);
        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--onnx", temp["b.onnx"], "--calibration", gt);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("only used with --int8", error);
        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--onnx", temp["c.onnx"], "--int8", "--calibration", gt, "--opset", "12");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--opset 12 with --int8", error);
        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--onnx", temp["d.onnx"], "--calibration-images", "5");
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--calibration-images 5: only used with --int8", error);
        Assert.False(File.Exists(temp["a.onnx"]) || File.Exists(temp["b.onnx"]) || File.Exists(temp["c.onnx"]) || File.Exists(temp["d.onnx"]));

        // The ONNX target is checked before anything is written: a bad int8 option leaves no torchvision file either, and
        // the target may not be the weights (which would be replaced) or the torchvision file.
        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--torchvision", temp["tv/m.pth"], "--onnx", temp["tv/m.onnx"],
            "--int8", "--calibration", gt, "--opset", "11");
        Assert.Equal(CliApp.BadInput, code);
        Assert.False(File.Exists(temp["tv/m.pth"]) || File.Exists(temp["tv/m.json"]) || File.Exists(temp["tv/m.onnx"]), "a file was written before the refusal");
        var weightsBefore = File.ReadAllBytes(onnx.Checkpoint);
        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--onnx", onnx.Checkpoint);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("that is the --weights file", error);
        Assert.Equal(weightsBefore, File.ReadAllBytes(onnx.Checkpoint));
        (code, _, error) = OnnxFixture.RunWithOutput("export", "--weights", onnx.Checkpoint, "--torchvision", temp["same.onnx"], "--onnx", temp["same.onnx"]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("--torchvision writes that file too", error);
    }
}
