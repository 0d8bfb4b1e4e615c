using RetinaSharp.Losses;
using static RetinaSharp.Tests.Losses.FocalLossTestSupport;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Losses;

/// <summary>Gradients: finite differences, saturation, ignored anchors, fused vs composite.</summary>
public class FocalLossGradientTests
{
    public static TheoryData<FocalLossPath, double> PathsAndGammas()
    {
        var data = new TheoryData<FocalLossPath, double>();
        foreach (var path in BothPaths)
            foreach (double g in new[] { 0.0, 0.3, 1.0, 2.0, 3.3 })
                data.Add(path, g);
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndGammas))]
    public void Analytic_gradient_equals_finite_differences_in_float64(FocalLossPath path, double gamma)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var x = randn(5, 7, dtype: ScalarType.Float64, generator: gen) * 4;
        var t = (rand(5, 7, dtype: ScalarType.Float64, generator: gen) < 0.4).to(ScalarType.Float64);
        var upstream = rand(5, 7, dtype: ScalarType.Float64, generator: gen) + 0.5;
        Func<Tensor, Tensor> loss = z => FocalLoss.SigmoidFocalLoss(z, t, alpha: 0.25, gamma: gamma, reduction: FocalReduction.None, path: path);
        var analytic = LossAndGrad(loss, x, upstream).Grad;
        var numeric = FiniteDifferences(loss, x, upstream);
        AssertClose(numeric, analytic, 1e-6, 5e-9, "grad");

        // Reduced forms and the index form go through the same check with a scalar upstream.
        var idx = tensor(new long[] { 3, -1, -2, 0, 6 });
        Func<Tensor, Tensor> idxLoss = z => FocalLoss.SigmoidFocalLossFromIndices(z, idx, alpha: 0.4, gamma: gamma, normalizer: 2, path: path);
        var one = ones(1, dtype: ScalarType.Float64);
        AssertClose(FiniteDifferences(idxLoss, x, one), LossAndGrad(idxLoss, x).Grad, 1e-6, 5e-9, "index grad");
        Func<Tensor, Tensor> meanLoss = z => FocalLoss.SigmoidFocalLoss(z, t, alpha: null, gamma: gamma, reduction: FocalReduction.Mean, path: path);
        AssertClose(FiniteDifferences(meanLoss, x, one), LossAndGrad(meanLoss, x).Grad, 1e-6, 5e-10, "mean grad");
    }

    [Theory]
    [MemberData(nameof(PathsAndGammas))]
    public void Saturated_logits_give_finite_loss_and_gradient(FocalLossPath path, double gamma)
    {
        using var scope = NewDisposeScope();
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            var x = tensor(new double[] { 1e4, -1e4, 1e4, -1e4, 88, -88, 750, -750, 0 }).to(dtype);
            var t = tensor(new double[] { 1, 1, 0, 0, 1, 0, 0, 1, 1 }).to(dtype);
            var (loss, grad) = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, alpha: 0.25, gamma: gamma, reduction: FocalReduction.None, path: path), x);
            Assert.All(loss, v => Assert.True(double.IsFinite(v), $"loss {v} ({dtype}, γ={gamma})"));
            Assert.All(grad, v => Assert.True(double.IsFinite(v), $"grad {v} ({dtype}, γ={gamma})"));
            // Confident and right: no loss, no gradient. Confident and wrong: loss α_t·|x|, gradient ∓α_t.
            Assert.Equal(0, loss[0], 6);
            Assert.Equal(0.25 * 1e4, loss[1], 1);
            Assert.Equal(0.75 * 1e4, loss[2], 1);
            Assert.Equal(-0.25, grad[1], 6);
            Assert.Equal(0.75, grad[2], 6);
            Assert.Equal(0, grad[3], 6);
        }
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Ignored_anchors_change_nothing(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var kept = randn(6, 4, dtype: ScalarType.Float64, generator: gen);
        var keptIdx = tensor(new long[] { 0, -1, 3, -1, 1, 2 });
        // Ignored rows hold extreme and NaN logits: they must still contribute nothing.
        var ignored = tensor(new double[] { 1e4, -1e4, double.NaN, 5, -3, 2, 1, 0 }).reshape(2, 4);
        var all = cat([kept[..3], ignored[..1], kept[3..], ignored[1..]], 0);
        var allIdx = tensor(new long[] { 0, -1, 3, -2, -1, 1, 2, -2 });
        foreach (var r in new[] { FocalReduction.Sum, FocalReduction.Mean, FocalReduction.Normalized, FocalReduction.None })
        {
            var a = LossAndGrad(z => FocalLoss.SigmoidFocalLossFromIndices(z, keptIdx, reduction: r, normalizer: 3, path: path), kept);
            var b = LossAndGrad(z => FocalLoss.SigmoidFocalLossFromIndices(z, allIdx, reduction: r, normalizer: 3, path: path), all);
            int[] keptRows = [0, 1, 2, 4, 5, 6];
            var bGrad = keptRows.SelectMany(row => b.Grad.Skip(row * 4).Take(4)).ToArray();
            AssertClose(a.Grad, bGrad, 1e-15, 0, $"{r} grad");
            Assert.All(b.Grad.Skip(3 * 4).Take(4).Concat(b.Grad.Skip(7 * 4)), g => Assert.Equal(0.0, g));
            if (r == FocalReduction.None)
            {
                AssertClose(a.Loss, keptRows.SelectMany(row => b.Loss.Skip(row * 4).Take(4)).ToArray(), 1e-15, 0, "loss");
                Assert.All(b.Loss.Skip(3 * 4).Take(4), v => Assert.Equal(0.0, v));
            }
            else
            {
                AssertClose(a.Loss, b.Loss, 1e-14, 0, $"{r} loss");
            }
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 2e-5)]
    [InlineData(ScalarType.Float64, 1e-12)]
    public void Fused_and_composite_paths_agree_on_values_and_gradients(ScalarType dtype, double rel)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        // 3 x 1000 x 13 elements: several kernel blocks, vector tails, both threads busy.
        var x = (randn(3, 1000, 13, generator: gen) * 6).to(dtype);
        var t = (rand(3, 1000, 13, generator: gen) < 0.05).to(dtype);
        var idx = randint(-2, 13, [3, 1000], generator: gen);
        var alphas = rand(13, generator: gen).to(dtype);
        foreach (double gamma in new[] { 0.0, 0.5, 2.0, 2.7 })
            foreach (var r in new[] { FocalReduction.None, FocalReduction.Mean, FocalReduction.Normalized })
            {
                Func<FocalLossPath, Func<Tensor, Tensor>> dense = p => z => FocalLoss.SigmoidFocalLoss(z, t, 0.25, gamma, r, 17, path: p);
                Func<FocalLossPath, Func<Tensor, Tensor>> perClass = p => z => FocalLoss.SigmoidFocalLoss(z, t, null, gamma, r, 17, alphas, p);
                Func<FocalLossPath, Func<Tensor, Tensor>> index = p => z => FocalLoss.SigmoidFocalLossFromIndices(z, idx, 0.25, gamma, r, 17, path: p);
                foreach (var (name, f) in new[] { ("dense", dense), ("perClass", perClass), ("index", index) })
                {
                    var fused = LossAndGrad(f(FocalLossPath.Fused), x);
                    var composite = LossAndGrad(f(FocalLossPath.Composite), x);
                    AssertClose(composite.Loss, fused.Loss, rel, 1e-30, $"{name} γ={gamma} {r} loss");
                    AssertClose(composite.Grad, fused.Grad, rel, 1e-30, $"{name} γ={gamma} {r} grad");
                }
            }
    }

    [Fact]
    public void Fused_result_does_not_depend_on_the_thread_count()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(9);
        var x = randn(700, 80, generator: gen);
        var t = (rand(700, 80, generator: gen) < 0.01).to(ScalarType.Float32);
        int before = get_num_threads();
        try
        {
            set_num_threads(1);
            var one = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, path: FocalLossPath.Fused), x);
            set_num_threads(2);
            var two = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, path: FocalLossPath.Fused), x);
            Assert.Equal(one.Loss, two.Loss);
            Assert.Equal(one.Grad, two.Grad);
        }
        finally
        {
            set_num_threads(before);
        }
    }

    [Fact]
    public void Upstream_gradient_scales_the_saved_gradient_and_no_grad_mode_works()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 0.3f, -1.2f, 2f }).requires_grad_(true);
        var t = tensor(new float[] { 1, 0, 0 });
        var l = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Sum, path: FocalLossPath.Fused);
        (l * 3).backward();
        var g3 = Values(x.grad!);
        x.grad!.zero_();
        FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Sum, path: FocalLossPath.Fused).backward();
        AssertClose(Values(x.grad!).Select(v => v * 3).ToArray(), g3, 1e-6, 0);
        using (no_grad())
        {
            var l2 = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Sum, path: FocalLossPath.Fused);
            Assert.False(l2.requires_grad);
            Assert.Equal(l.item<float>(), l2.item<float>());
        }
    }
}
