using RetinaSharp.Losses;
using static RetinaSharp.Tests.Losses.FocalLossTestSupport;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Losses;

/// <summary>The softmax (multi-class) focal loss and FL* of the paper's appendix A.</summary>
public class SoftmaxAndStarFocalLossTests
{
    [Fact]
    public void Softmax_focal_loss_hand_computed_value()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new double[] { 2, 0, -1, 0.5, 0.5, 3 }).reshape(2, 3);
        var idx = tensor(new long[] { 0, 1 });
        double Z0 = Math.Exp(2) + 1 + Math.Exp(-1), p0 = Math.Exp(2) / Z0;
        double Z1 = 2 * Math.Exp(0.5) + Math.Exp(3), p1 = Math.Exp(0.5) / Z1;
        double fl0 = -Math.Pow(1 - p0, 2) * Math.Log(p0), fl1 = -Math.Pow(1 - p1, 2) * Math.Log(p1);
        var none = Values(FocalLoss.SoftmaxFocalLoss(x, idx, gamma: 2, reduction: FocalReduction.None));
        AssertClose([fl0, fl1], none, 1e-13, 0);
        Assert.Equal((fl0 + fl1) / 2, FocalLoss.SoftmaxFocalLoss(x, idx).item<double>(), 13);
        var weighted = Values(FocalLoss.SoftmaxFocalLoss(x, idx, alphaPerClass: tensor(new double[] { 0.2, 0.7, 0.1 }), reduction: FocalReduction.None));
        AssertClose([0.2 * fl0, 0.7 * fl1], weighted, 1e-13, 0);
        Assert.Equal(0.3 * (fl0 + fl1), FocalLoss.SoftmaxFocalLoss(x, idx, alpha: 0.3, reduction: FocalReduction.Sum).item<double>(), 13);
    }

    [Fact]
    public void Softmax_focal_loss_with_gamma_zero_is_cross_entropy_value_and_gradient()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(2);
        var x = randn(8, 5, dtype: ScalarType.Float64, generator: gen) * 3;
        var idx = tensor(new long[] { 0, 4, 2, 2, 1, 3, 0, 4 });
        var ours = LossAndGrad(z => FocalLoss.SoftmaxFocalLoss(z, idx, alpha: null, gamma: 0, reduction: FocalReduction.None), x);
        var ce = LossAndGrad(z => nn.functional.cross_entropy(z, idx, reduction: nn.Reduction.None), x);
        AssertClose(ce.Loss, ours.Loss, 1e-13, 1e-15);
        AssertClose(ce.Grad, ours.Grad, 1e-13, 1e-15);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.4)]
    [InlineData(2.0)]
    public void Softmax_focal_loss_gradient_equals_finite_differences_and_ignores_ignored(double gamma)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(4);
        var x = randn(6, 4, dtype: ScalarType.Float64, generator: gen) * 2;
        var idx = tensor(new long[] { 0, -2, 3, 1, -2, 2 });
        Func<Tensor, Tensor> f = z => FocalLoss.SoftmaxFocalLoss(z, idx, gamma: gamma, reduction: FocalReduction.Normalized, normalizer: 3);
        var (loss, grad) = LossAndGrad(f, x);
        AssertClose(FiniteDifferences(f, x, ones(1, dtype: ScalarType.Float64)), grad, 1e-6, 5e-9);
        Assert.All(grad.Skip(4).Take(4).Concat(grad.Skip(16).Take(4)), g => Assert.Equal(0.0, g));
        var keep = tensor(new long[] { 0, 2, 3, 5 });
        double kept = FocalLoss.SoftmaxFocalLoss(x.index_select(0, keep), idx.index_select(0, keep), gamma: gamma,
            reduction: FocalReduction.Normalized, normalizer: 3).item<double>();
        Assert.Equal(kept, loss[0], 14);
    }

    [Fact]
    public void Softmax_focal_loss_saturated_is_finite_and_NaN_propagates()
    {
        using var scope = NewDisposeScope();
        foreach (double gamma in new[] { 0.0, 0.5, 2.0 })
        {
            var x = tensor(new float[] { 1e4f, -1e4f, 0, -1e4f, 1e4f, 0 }).reshape(2, 3);
            var (loss, grad) = LossAndGrad(z => FocalLoss.SoftmaxFocalLoss(z, tensor(new long[] { 0, 0 }), gamma: gamma, reduction: FocalReduction.None), x);
            Assert.All(loss.Concat(grad), v => Assert.True(double.IsFinite(v)));
            Assert.Equal(0, loss[0], 6);
            Assert.Equal(2e4, loss[1], 0);
        }
        var nan = FocalLoss.SoftmaxFocalLoss(tensor(new float[] { float.NaN, 0, 1, 2 }).reshape(2, 2), tensor(new long[] { 1, 0 }));
        Assert.True(float.IsNaN(nan.item<float>()));
    }

    [Fact]
    public void Focal_loss_star_values_and_gradient()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new double[] { 1, -0.5, 3, -2 });
        var t = tensor(new double[] { 1, 0, 0, 1 });
        static double Softplus(double v) => Math.Log(1 + Math.Exp(v));
        // x_t = 1, 0.5, -3, -2;  FL* = softplus(-(γ x_t + β)) / γ with γ = 2, β = 1.
        double[] expected = [Softplus(-3) / 2, Softplus(-2) / 2, Softplus(5) / 2, Softplus(3) / 2];
        var none = Values(FocalLoss.FocalLossStar(x, t, gamma: 2, beta: 1, reduction: FocalReduction.None));
        AssertClose(expected, none, 1e-14, 0);
        Assert.Equal(expected.Average(), FocalLoss.FocalLossStar(x, t).item<double>(), 14);
        var weighted = Values(FocalLoss.FocalLossStar(x, t, alpha: 0.25, reduction: FocalReduction.None));
        AssertClose([0.25 * expected[0], 0.75 * expected[1], 0.75 * expected[2], 0.25 * expected[3]], weighted, 1e-14, 0);
        // With γ = 1 and β = 0, FL* is plain binary cross-entropy.
        var bce = Values(nn.functional.binary_cross_entropy_with_logits(x, t, reduction: nn.Reduction.None));
        AssertClose(bce, Values(FocalLoss.FocalLossStar(x, t, gamma: 1, beta: 0, reduction: FocalReduction.None)), 1e-14, 0);
        Func<Tensor, Tensor> f = z => FocalLoss.FocalLossStar(z, t, gamma: 3, beta: 0.5, reduction: FocalReduction.Sum);
        AssertClose(FiniteDifferences(f, x, ones(1, dtype: ScalarType.Float64)), LossAndGrad(f, x).Grad, 1e-6, 5e-9);
        var saturated = LossAndGrad(z => FocalLoss.FocalLossStar(z, tensor(new float[] { 1, 0 }), reduction: FocalReduction.Sum), tensor(new float[] { -1e4f, -1e4f }));
        Assert.All(saturated.Loss.Concat(saturated.Grad), v => Assert.True(double.IsFinite(v)));
    }
}
