// detectron2's running-average loss normaliser (RetinaNet.losses): n <- 0.9·n + 0.1·max(#fg in batch, 1), n0 = 100,
// losses = batch sums / n; checked by hand against focal sums computed directly on the model's own head outputs.
using RetinaSharp.Losses;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Modeling;

public sealed class LossNormalizerTests
{
    private static RetinaNetOptions Tiny() =>
        new(3) { Backbone = ResNetDepth.ResNet18, FpnChannels = 64, MinSize = 64, MaxSize = 96 };

    private static void AssertRel(double expected, double actual, double rel, string what) =>
        Assert.True(Math.Abs(expected - actual) <= rel * Math.Abs(expected) + 1e-9, $"{what}: expected {expected}, got {actual}");

    /// <summary>Per image: the foreground count, the focal-loss sum over non-ignored anchors (directly from
    /// FocalLoss.SigmoidFocalLossFromIndices) and the box-loss sum (the PerImage loss of that image alone × max(1, #fg)).</summary>
    private static (long Fg, double FocalSum, double BoxSum) Pieces(RetinaNet model, Tensor cls, Tensor box, Tensor anchors, DetectionTarget t)
    {
        using var scope = NewDisposeScope();
        var matched = model.MatchAnchors(t, anchors);
        var fg = matched.ge(0);
        long numFg = fg.sum().item<long>();
        var idx = numFg == 0 ? matched : where(fg, t.Labels[matched.clamp_min(0)], matched);
        double focal = FocalLoss.SigmoidFocalLossFromIndices(cls, idx, 0.25, 2.0, FocalReduction.Sum).item<float>();
        var single = model.ComputeLossesFromHeadOutputs(cls.unsqueeze(0), box.unsqueeze(0), anchors, [t]);
        double norm = Math.Max(1, numFg);
        AssertRel(focal, single.Classification.item<float>() * norm, 1e-5, "PerImage classification × max(1, #fg)");
        return (numFg, focal, single.BoxRegression.item<float>() * norm);
    }

    [Fact]
    public void RunningAverageDividesBatchSumsByTheUpdatedNormaliser()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNet(Tiny());
        model.train();
        Assert.Equal(LossNormalizerKind.PerImage, model.Options.LossNormalizer);
        Assert.Equal(100.0, model.RunningLossNormalizer);
        var keysBefore = model.state_dict().Keys.ToList();

        manual_seed(7);
        var batch = model.Transform.Preprocess([rand(3, 64, 64), rand(3, 64, 64)]);
        Tensor cls, box;
        using (no_grad()) (cls, box) = model.forward(batch.Images);
        var anchors = cat(model.AnchorsPerLevel(batch.PaddedSize, RetinaNet.FeatureSizes(batch.PaddedSize)), 0);
        var withBoxes = new DetectionTarget(tensor(new[] { 8f, 8, 40, 40, 30, 20, 62, 52 }).reshape(2, 4), tensor(new[] { 0L, 2L }));
        var empty = DetectionTarget.Empty();
        DetectionTarget[] targets = [withBoxes, empty];

        var p0 = Pieces(model, cls[0], box[0], anchors, withBoxes);
        var p1 = Pieces(model, cls[1], box[1], anchors, empty);
        Assert.True(p0.Fg >= 2);   // both boxes get at least their best anchor (low-quality matches)
        Assert.Equal(0, p1.Fg);
        Assert.Equal(0.0, p1.BoxSum);
        Assert.Equal(100.0, model.RunningLossNormalizer);   // PerImage never touches it

        model.Reconfigure(model.Options with { LossNormalizer = LossNormalizerKind.RunningAverage });
        // First call: n1 = 0.9·100 + 0.1·max(F, 1) with F = the batch's foreground count.
        var l1 = model.ComputeLossesFromHeadOutputs(cls, box, anchors, targets);
        double n1 = 0.9 * 100 + 0.1 * Math.Max(p0.Fg + p1.Fg, 1);
        AssertRel(n1, model.RunningLossNormalizer, 1e-12, "normaliser after one call");
        AssertRel((p0.FocalSum + p1.FocalSum) / n1, l1.Classification.item<float>(), 1e-5, "classification, call 1");
        AssertRel((p0.BoxSum + p1.BoxSum) / n1, l1.BoxRegression.item<float>(), 1e-5, "box, call 1");

        // Second call, a batch without foreground: n2 = 0.9·n1 + 0.1·max(0, 1).
        var l2 = model.ComputeLossesFromHeadOutputs(cls[1..2], box[1..2], anchors, [empty]);
        double n2 = 0.9 * n1 + 0.1;
        AssertRel(n2, model.RunningLossNormalizer, 1e-12, "normaliser after two calls");
        AssertRel(p1.FocalSum / n2, l2.Classification.item<float>(), 1e-5, "classification, call 2");
        Assert.Equal(0f, l2.BoxRegression.item<float>());

        // Eval mode: the losses use the would-be update, the stored value stays.
        model.eval();
        var l3 = model.ComputeLossesFromHeadOutputs(cls, box, anchors, targets);
        double n3 = 0.9 * n2 + 0.1 * Math.Max(p0.Fg, 1);
        AssertRel(n2, model.RunningLossNormalizer, 1e-12, "normaliser after an eval call");
        AssertRel((p0.FocalSum + p1.FocalSum) / n3, l3.Classification.item<float>(), 1e-5, "classification, eval");

        // Training state, not a weight: the state_dict keys are unchanged (still torchvision's).
        Assert.Equal(keysBefore, model.state_dict().Keys.ToList());
        Assert.DoesNotContain(keysBefore, k => k.Contains("normal", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void RunningLossNormalizerIsSettableAndRejectsNonPositiveValues()
    {
        using var model = new RetinaNet(Tiny() with { LossNormalizer = LossNormalizerKind.RunningAverage });
        model.RunningLossNormalizer = 12.5;   // e.g. restored from a trainer checkpoint
        Assert.Equal(12.5, model.RunningLossNormalizer);
        foreach (var bad in new[] { 0.0, -1.0, double.NaN, double.PositiveInfinity })
            Assert.Contains("RunningLossNormalizer", Assert.Throws<ArgumentException>(() => model.RunningLossNormalizer = bad).Message);
        Assert.Equal(12.5, model.RunningLossNormalizer);
        Assert.Equal(100.0, RetinaNet.InitialRunningLossNormalizer);
    }

    [Fact]
    public void LossNormalizerOptionsRoundTripThroughJsonAndValidate()
    {
        var d = new RetinaNetOptions(3);
        Assert.Equal(LossNormalizerKind.PerImage, d.LossNormalizer);
        Assert.Equal(0.9, d.LossNormalizerMomentum);
        var o = d with { LossNormalizer = LossNormalizerKind.RunningAverage, LossNormalizerMomentum = 0.75 };
        string json = o.ToJson();
        Assert.Contains("\"LossNormalizer\": \"RunningAverage\"", json);
        Assert.Contains("\"LossNormalizerMomentum\": 0.75", json);
        var back = RetinaNetOptions.FromJson(json);
        Assert.Equal(LossNormalizerKind.RunningAverage, back.LossNormalizer);
        Assert.Equal(0.75, back.LossNormalizerMomentum);
        (d with { LossNormalizerMomentum = 0 }).Validate();
        foreach (var bad in new[] { 1.0, -0.1, 1.5, double.NaN })
            Assert.Contains("LossNormalizerMomentum", Assert.Throws<ArgumentException>(() => (d with { LossNormalizerMomentum = bad }).Validate()).Message);
        Assert.Contains("LossNormalizer", Assert.Throws<ArgumentException>(() => (d with { LossNormalizer = (LossNormalizerKind)5 }).Validate()).Message);
    }
}
