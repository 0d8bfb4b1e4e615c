// Parity with torchvision 0.14 retinanet_resnet50_fpn: fixtures written by scripts/make_model_fixtures.py.
using System.Text.Json;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

/// <summary>One ResNet-50-FPN RetinaNet with the fixture weights, shared by the parity tests (building it takes seconds).</summary>
public sealed class ParityModelFixture : IDisposable
{
    public ParityModelFixture()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "model");
        Meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "retinanet_r50_fpn.json"))).RootElement;
        Model = new RetinaNet(new RetinaNetOptions(Meta.GetProperty("num_classes").GetInt32())
        {
            MinSize = Meta.GetProperty("min_size").GetInt32(),
            MaxSize = Meta.GetProperty("max_size").GetInt32(),
        });
        DeterministicWeights.Fill(Model);
        Model.eval();
        var shapes = Meta.GetProperty("image_shapes").EnumerateArray().Select(s => s.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();
        Images = [.. shapes.Select((s, i) => DeterministicWeights.Image(i, s[0], s[1], s[2]))];
        Dir = dir;
    }

    public string Dir { get; }
    public JsonElement Meta { get; }
    public RetinaNet Model { get; }
    public Tensor[] Images { get; }

    public Tensor ReadF32(string name, string shapeKey)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, name));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        var shape = Meta.GetProperty(shapeKey).EnumerateArray().Select(v => v.GetInt64()).ToArray();
        return tensor(values).reshape(shape);
    }

    public void Dispose()
    {
        Model.Dispose();
        foreach (var i in Images) i.Dispose();
    }
}

public sealed class RetinaNetParityTests(ParityModelFixture f) : IClassFixture<ParityModelFixture>
{
    private static void AssertClose(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        var diff = (expected - actual).abs();
        var tol = expected.abs() * rtol + atol;
        var excess = (diff - tol).max().item<float>();
        Assert.True(excess <= 0, $"{what}: max |diff| {diff.max().item<float>()} exceeds tolerance (atol {atol}, rtol {rtol})");
    }

    [Fact]
    public void StateDictKeysAndShapesEqualTorchvision()
    {
        var expected = f.Meta.GetProperty("state_dict").EnumerateArray()
            .Select(e => $"{e[0].GetString()} [{string.Join(",", e[1].EnumerateArray().Select(v => v.GetInt64()))}]").ToList();
        var ours = f.Model.state_dict().Select(kv => $"{kv.Key} [{string.Join(",", kv.Value.shape)}]").ToList();
        Assert.Equal(354 - 53, expected.Count);   // torchvision's 354 minus 53 num_batches_tracked of BatchNorm2d
        // TorchSharp lists parameters before buffers, so compare as sorted lists.
        Assert.Equal(expected.Order(StringComparer.Ordinal), ours.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TransformMatchesTorchvision()
    {
        using var scope = NewDisposeScope();
        var batch = f.Model.Transform.Preprocess(f.Images);
        var sizes = f.Meta.GetProperty("image_sizes").EnumerateArray().Select(s => (s[0].GetInt64(), s[1].GetInt64())).ToArray();
        Assert.Equal(sizes, batch.ImageSizes.ToArray());
        // libtorch 2.10 and 1.13 bilinear kernels differ in the last bits (~3e-5 on values up to 2.6).
        AssertClose(f.ReadF32("batch.bin", "batch_shape"), batch.Images, 1e-4, 1e-5, "preprocessed batch");
    }

    [Fact]
    public void HeadOutputsMatchTorchvision()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (cls, box) = f.Model.forward(f.ReadF32("batch.bin", "batch_shape"));
        AssertClose(f.ReadF32("head_cls.bin", "head_cls_shape"), cls, 1e-4, 1e-4, "class logits");
        AssertClose(f.ReadF32("head_box.bin", "head_box_shape"), box, 1e-4, 1e-4, "box deltas");
    }

    /// <summary>Frozen batch norm folded into the convolutions (the fast inference path) keeps the parity tolerance.</summary>
    [Fact]
    public void FoldedBatchNormHeadOutputsMatchTorchvision()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        f.Model.Backbone.Body.SetFoldedBatchNorm(true);
        try
        {
            var (cls, box) = f.Model.forward(f.ReadF32("batch.bin", "batch_shape"));
            AssertClose(f.ReadF32("head_cls.bin", "head_cls_shape"), cls, 1e-4, 1e-4, "class logits (folded BN)");
            AssertClose(f.ReadF32("head_box.bin", "head_box_shape"), box, 1e-4, 1e-4, "box deltas (folded BN)");
        }
        finally { f.Model.Backbone.Body.SetFoldedBatchNorm(false); }
    }

    private List<DetectionTarget> Targets(string set) =>
        [.. f.Meta.GetProperty("targets").GetProperty(set).EnumerateArray().Select(t =>
        {
            var boxes = t.GetProperty("boxes").EnumerateArray().SelectMany(b => b.EnumerateArray().Select(v => v.GetSingle())).ToArray();
            var labels = t.GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray();
            return new DetectionTarget(tensor(boxes).reshape(-1, 4), tensor(labels));
        })];

    private void AssertLosses(RetinaNetLosses losses, string key)
    {
        var expected = f.Meta.GetProperty("losses").GetProperty(key);
        double cls = losses.Classification.item<float>(), box = losses.BoxRegression.item<float>();
        double ec = expected.GetProperty("classification").GetDouble(), eb = expected.GetProperty("bbox_regression").GetDouble();
        Assert.True(Math.Abs(cls - ec) <= 1e-5 * Math.Abs(ec), $"{key}: classification {cls} vs torchvision {ec}");
        Assert.True(Math.Abs(box - eb) <= 1e-5 * Math.Abs(eb), $"{key}: box {box} vs torchvision {eb}");
    }

    /// <summary>End to end: resize of images and boxes, forward, matching, losses (the second image has no boxes).</summary>
    [Fact]
    public void ComputeLossesMatchesTorchvision()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        AssertLosses(f.Model.ComputeLosses(f.Images, Targets("one_empty")), "one_empty/l1");
    }

    /// <summary>Every target set and box loss, from torchvision's own head outputs (no forward pass: fast).</summary>
    [Theory]
    [InlineData("one_empty", "l1", BoxLossKind.L1)]
    [InlineData("one_empty", "smooth_l1", BoxLossKind.SmoothL1)]
    [InlineData("one_empty", "giou", BoxLossKind.GIoU)]
    [InlineData("both", "l1", BoxLossKind.L1)]
    [InlineData("both", "smooth_l1", BoxLossKind.SmoothL1)]
    [InlineData("both", "giou", BoxLossKind.GIoU)]
    public void LossesFromHeadOutputsMatchTorchvision(string set, string lossName, BoxLossKind kind)
    {
        using var scope = NewDisposeScope();
        var model = f.Model;
        var batch = f.ReadF32("batch.bin", "batch_shape");
        (long, long) padded = (batch.shape[2], batch.shape[3]);
        var anchors = cat(model.AnchorsPerLevel(padded, RetinaNet.FeatureSizes(padded)), 0);
        var sizes = f.Meta.GetProperty("image_sizes").EnumerateArray().Select(s => (s[0].GetInt64(), s[1].GetInt64())).ToArray();
        var targets = Targets(set).Select((t, i) => t with
        {
            Boxes = DetectionTransform.ScaleBoxes(t.Boxes, (f.Images[i].shape[1], f.Images[i].shape[2]), sizes[i]),
        }).ToList();
        var original = model.Options;
        model.Reconfigure(original with { BoxLoss = kind });
        try
        {
            var losses = model.ComputeLossesFromHeadOutputs(f.ReadF32("head_cls.bin", "head_cls_shape"), f.ReadF32("head_box.bin", "head_box_shape"), anchors, targets);
            AssertLosses(losses, $"{set}/{lossName}");
        }
        finally { model.Reconfigure(original); }
    }

    [Fact]
    public void DetectionsMatchTorchvision()
    {
        using var scope = NewDisposeScope();
        var dets = f.Model.Detect(f.Images);
        var expected = f.Meta.GetProperty("detections").EnumerateArray().ToArray();
        Assert.Equal(expected.Length, dets.Count);
        for (int i = 0; i < dets.Count; i++)
        {
            var labels = expected[i].GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray();
            var scores = expected[i].GetProperty("scores").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var boxes = expected[i].GetProperty("boxes").EnumerateArray().SelectMany(b => b.EnumerateArray().Select(v => v.GetSingle())).ToArray();
            Assert.Equal(labels.Length, (int)dets[i].Count);
            Assert.Equal(labels, dets[i].Labels.data<long>().ToArray());
            AssertClose(tensor(scores), dets[i].Scores, 1e-5, 1e-4, $"image {i} scores");
            AssertClose(tensor(boxes).reshape(-1, 4), dets[i].Boxes, 1e-3, 0, $"image {i} boxes");
        }
    }

    /// <summary>Channels-last inference (folded batch norm, NHWC activations) keeps the parity tolerances of head outputs
    /// and detections; it runs on its own model because it replaces the FPN and head parameters.</summary>
    [Fact]
    public void ChannelsLastInferenceMatchesTorchvision()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(f.Model.Options);
        DeterministicWeights.Fill(model);
        model.PrepareForInference(channelsLast: true);
        // Channels-last where this machine's oneDNN handles it (TorchRuntime); NCHW elsewhere, same tolerances.
        Assert.Equal(TorchRuntime.ChannelsLastSupported, model.ChannelsLast);
        using (no_grad())
        {
            var (cls, box) = model.forward(f.ReadF32("batch.bin", "batch_shape"));
            AssertClose(f.ReadF32("head_cls.bin", "head_cls_shape"), cls, 1e-4, 1e-4, "class logits (channels-last)");
            AssertClose(f.ReadF32("head_box.bin", "head_box_shape"), box, 1e-4, 1e-4, "box deltas (channels-last)");
        }
        var dets = model.Detect(f.Images);
        var expected = f.Meta.GetProperty("detections").EnumerateArray().ToArray();
        for (int i = 0; i < dets.Count; i++)
        {
            var labels = expected[i].GetProperty("labels").EnumerateArray().Select(v => v.GetInt64()).ToArray();
            var boxes = expected[i].GetProperty("boxes").EnumerateArray().SelectMany(b => b.EnumerateArray().Select(v => v.GetSingle())).ToArray();
            Assert.Equal(labels, dets[i].Labels.data<long>().ToArray());
            AssertClose(tensor(boxes).reshape(-1, 4), dets[i].Boxes, 1e-3, 0, $"image {i} boxes (channels-last)");
        }
    }
}
