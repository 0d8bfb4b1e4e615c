using System.Text.Json;
using RetinaSharp.Losses;
using static RetinaSharp.Tests.Losses.FocalLossTestSupport;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Losses;

/// <summary>Values of the sigmoid focal loss: the paper's numbers, identities, and torchvision 0.14's outputs.</summary>
public class FocalLossValueTests
{
    private static Tensor Scalar(double x) => tensor(new[] { x });

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Seed_examples_well_classified_positives_are_down_weighted(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        foreach (var (p, ratio) in new[] { (0.9, 0.01), (0.99, 1e-4) })
        {
            var x = Scalar(Math.Log(p / (1 - p)));            // sigmoid(x) = p
            double fl = FocalLoss.SigmoidFocalLoss(x, Scalar(1), alpha: null, gamma: 2, path: path).item<double>();
            double ce = -Math.Log(p);
            Assert.Equal(ratio, fl / ce, 12);
        }
        double fl09 = FocalLoss.SigmoidFocalLoss(Scalar(Math.Log(9)), Scalar(1), alpha: null, gamma: 2, path: path).item<double>();
        Assert.Equal(0.0010536, fl09, 7);                    // nats
        Assert.Equal(0.00045757, fl09 / Math.Log(10), 8);    // the seed's log10 figure
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Alpha_goes_to_positives_and_one_minus_alpha_to_negatives(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        // x = 0, t = 0: p_t = 0.5, α_t = 0.75, (1 - p_t)^2 = 0.25, CE = ln 2.
        double neg = FocalLoss.SigmoidFocalLoss(Scalar(0), Scalar(0), path: path).item<double>();
        Assert.Equal(0.75 * 0.25 * Math.Log(2), neg, 12);
        Assert.Equal(0.129965, neg, 6);
        double pos = FocalLoss.SigmoidFocalLoss(Scalar(0), Scalar(1), path: path).item<double>();
        Assert.Equal(0.25 * 0.25 * Math.Log(2), pos, 12);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Mean_over_the_ten_element_example(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, 0, 0, 1, 0, 1, 1, 0, 0, 0 });
        var t = tensor(new float[] { 0, 1, 1, 1, 0, 1, 0, 1, 1, 0 });
        float mean = FocalLoss.SigmoidFocalLoss(x, t, alpha: 0.25, gamma: 2, reduction: FocalReduction.Mean, path: path).item<float>();
        Assert.Equal(0.14973487, mean, 1e-7);   // float32: within a float ulp or so of the exact 0.1497348472
        double exact = FocalLoss.SigmoidFocalLoss(x.to(ScalarType.Float64), t.to(ScalarType.Float64), path: path).item<double>();
        Assert.Equal(0.14973484717212768, exact, 1e-15);   // torchvision 0.14 in float64
        float sum = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Sum, path: path).item<float>();
        Assert.Equal(1.4973484717, sum, 1e-6);
        float norm = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Normalized, normalizer: 4, path: path).item<float>();
        Assert.Equal(1.4973484717 / 4, norm, 1e-7);
        // The normaliser is clamped to at least 1.
        float clamped = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Normalized, normalizer: 0, path: path).item<float>();
        Assert.Equal(sum, clamped);
        var none = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.None, path: path);
        Assert.Equal([10L], none.shape);
        Assert.Equal(sum, none.sum().item<float>(), 1e-6);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Gamma_zero_is_alpha_weighted_binary_cross_entropy_value_and_gradient(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = linspace(-9, 9, 37, dtype: ScalarType.Float64).reshape(37, 1);
        var t = (arange(37, dtype: ScalarType.Float64) % 3).eq(0).to(ScalarType.Float64).reshape(37, 1);
        var weight = t * 0.25 + (1 - t) * 0.75;
        foreach (var (alpha, w) in new (double?, Tensor?)[] { (0.25, weight), (null, null) })
        {
            var ours = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, alpha: alpha, gamma: 0, reduction: FocalReduction.None, path: path), x);
            var bce = LossAndGrad(z => nn.functional.binary_cross_entropy_with_logits(z, t, w, reduction: nn.Reduction.None), x);
            AssertClose(bce.Loss, ours.Loss, 1e-13, 1e-15, "loss");
            AssertClose(bce.Grad, ours.Grad, 1e-13, 1e-15, "grad");
        }
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Focal_loss_is_cross_entropy_times_alpha_t_and_the_modulating_factor(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = linspace(-6, 6, 25, dtype: ScalarType.Float64);
        var t = (arange(25) % 2).to(ScalarType.Float64);
        foreach (double gamma in new[] { 0.5, 1, 2, 3.3 })
        {
            var fl = Values(FocalLoss.SigmoidFocalLoss(x, t, alpha: 0.3, gamma: gamma, reduction: FocalReduction.None, path: path));
            var ce = Values(FocalLoss.SigmoidFocalLoss(x, t, alpha: null, gamma: 0, reduction: FocalReduction.None, path: path));
            var xs = Values(x);
            var ts = Values(t);
            for (int i = 0; i < xs.Length; i++)
            {
                double p = 1 / (1 + Math.Exp(-xs[i]));
                double pt = ts[i] == 1 ? p : 1 - p;
                double alphaT = ts[i] == 1 ? 0.3 : 0.7;
                Assert.Equal(alphaT * Math.Pow(1 - pt, gamma), fl[i] / ce[i], 12);
                Assert.True(fl[i] <= ce[i]);
            }
        }
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Matches_torchvision_sigmoid_focal_loss_values_and_gradients(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "losses", "torchvision_sigmoid_focal_loss.json")));
        var root = doc.RootElement;
        long[] shape = root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var x = tensor(root.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray()).reshape(shape);
        var t = tensor(root.GetProperty("targets").EnumerateArray().Select(e => e.GetDouble()).ToArray()).reshape(shape);
        int cases = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            double? alpha = c.GetProperty("alpha").ValueKind == JsonValueKind.Null ? null : c.GetProperty("alpha").GetDouble();
            double gamma = c.GetProperty("gamma").GetDouble();
            var reduction = c.GetProperty("reduction").GetString() switch
            {
                "none" => FocalReduction.None,
                "sum" => FocalReduction.Sum,
                _ => FocalReduction.Mean,
            };
            var ours = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, alpha, gamma, reduction, path: path), x);
            AssertClose(c.GetProperty("loss").EnumerateArray().Select(e => e.GetDouble()).ToArray(), ours.Loss, 1e-10, 1e-14, $"{alpha}/{gamma}/{reduction} loss");
            AssertClose(c.GetProperty("grad").EnumerateArray().Select(e => e.GetDouble()).ToArray(), ours.Grad, 1e-9, 1e-14, $"{alpha}/{gamma}/{reduction} grad");
            cases++;
        }
        Assert.Equal(15, cases);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Per_class_alpha_weights_each_column(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = tensor(new double[] { 0, 0, 0, 0, 0, 0 }).reshape(2, 3);
        var t = tensor(new double[] { 1, 0, 0, 0, 1, 0 }).reshape(2, 3);
        var alphas = tensor(new double[] { 0.1, 0.5, 0.8 });
        var loss = Values(FocalLoss.SigmoidFocalLoss(x, t, alphaPerClass: alphas, reduction: FocalReduction.None, path: path));
        double unit = 0.25 * Math.Log(2);   // (1 - 0.5)^2 · ln 2
        AssertClose([0.1 * unit, 0.5 * unit, 0.2 * unit, 0.9 * unit, 0.5 * unit, 0.2 * unit], loss, 1e-14, 0);
        // The index form weights the same way.
        var fromIdx = Values(FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new long[] { 0, 1 }), alphaPerClass: alphas, reduction: FocalReduction.None, path: path));
        AssertClose(loss, fromIdx, 1e-14, 0);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Index_form_equals_dense_one_hot_targets(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var gen = new TorchSharp.torch.Generator(7);
        var x = randn(9, 5, dtype: ScalarType.Float64, generator: gen) * 3;
        var idx = tensor(new long[] { -1, 0, 4, -1, 2, 2, -1, 3, 1 });
        var dense = zeros(9, 5, dtype: ScalarType.Float64);
        for (int i = 0; i < 9; i++)
            if (idx[i].item<long>() >= 0) dense[i, idx[i].item<long>()] = 1.0;
        var a = LossAndGrad(z => FocalLoss.SigmoidFocalLossFromIndices(z, idx, reduction: FocalReduction.Sum, path: path), x);
        var b = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, dense, reduction: FocalReduction.Sum, path: path), x);
        AssertClose(b.Loss, a.Loss, 1e-14, 0);
        AssertClose(b.Grad, a.Grad, 1e-14, 1e-300);
        // Normalized: the detector's sum divided by the foreground count (6 here).
        double normalized = FocalLoss.SigmoidFocalLossFromIndices(x, idx, normalizer: 6, path: path).item<double>();
        Assert.Equal(b.Loss[0] / 6, normalized, 12);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Index_form_accepts_leading_batch_dimensions(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = linspace(-3, 3, 2 * 4 * 3, dtype: ScalarType.Float32).reshape(2, 4, 3);
        var idx = tensor(new long[] { -1, 2, -2, 0, 1, -1, -1, -2 }).reshape(2, 4);
        var none = FocalLoss.SigmoidFocalLossFromIndices(x, idx, reduction: FocalReduction.None, path: path);
        Assert.Equal(new long[] { 2, 4, 3 }, none.shape);
        Assert.Equal(0f, none[0, 2].abs().sum().item<float>());
        float flat = FocalLoss.SigmoidFocalLossFromIndices(x.reshape(8, 3), idx.reshape(8), reduction: FocalReduction.Sum, path: path).item<float>();
        Assert.Equal(flat, none.sum().item<float>(), 5);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void NaN_logits_give_a_NaN_loss(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 0.5f, float.NaN, -2f, 1f });
        var t = tensor(new float[] { 0, 1, 0, 0 });
        foreach (var r in new[] { FocalReduction.Sum, FocalReduction.Mean, FocalReduction.Normalized })
            Assert.True(float.IsNaN(FocalLoss.SigmoidFocalLoss(x, t, reduction: r, path: path).item<float>()), r.ToString());
        Assert.True(float.IsNaN(FocalLoss.SigmoidFocalLoss(x, t, gamma: 0, alpha: null, path: path).item<float>()));
        Assert.True(float.IsNaN(FocalLoss.SigmoidFocalLoss(x, t, gamma: 0.5, path: path).item<float>()));
        var none = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.None, path: path);
        Assert.True(float.IsNaN(none[1].item<float>()));
        Assert.False(float.IsNaN(none[0].item<float>()));
        var idxLoss = FocalLoss.SigmoidFocalLossFromIndices(x.reshape(2, 2), tensor(new long[] { 1, -1 }), path: path);
        Assert.True(float.IsNaN(idxLoss.item<float>()));
    }

    [Fact]
    public void Empty_input_gives_zero()
    {
        using var scope = NewDisposeScope();
        foreach (var path in BothPaths)
        {
            var x = zeros(0, 4);
            Assert.Equal(0f, FocalLoss.SigmoidFocalLoss(x, zeros(0, 4), path: path).item<float>());
            Assert.Equal(0f, FocalLoss.SigmoidFocalLossFromIndices(x, zeros(0, dtype: ScalarType.Int64), path: path).item<float>());
        }
    }

    [Fact]
    public void Module_takes_dense_targets_or_class_indices()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, -1, 0.5f, 2, 0, -3 }).reshape(2, 3);
        var idx = tensor(new long[] { 2, -1 });
        var dense = tensor(new float[] { 0, 0, 1, 0, 0, 0 }).reshape(2, 3);
        using var module = new FocalLoss(alpha: 0.25, gamma: 2, reduction: FocalReduction.Normalized, normalizer: 1);
        float a = module.forward(x, idx).item<float>();
        float b = module.forward(x, dense).item<float>();
        Assert.Equal(a, b, 6);
        Assert.Equal(FocalLoss.SigmoidFocalLoss(x, dense, reduction: FocalReduction.Sum).item<float>(), a, 6);
        module.Normalizer = 4;
        Assert.Equal(a / 4, module.call(x, idx).item<float>(), 6);
        Assert.Empty(module.parameters());
    }
}
