using FsCheck.Xunit;
using RetinaSharp.Losses;
using static RetinaSharp.Tests.Losses.FocalLossTestSupport;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Losses;

/// <summary>Properties over random shapes, γ, α and targets (FsCheck).</summary>
public class FocalLossPropertyTests
{
    private static readonly double[] Gammas = [0, 0.25, 0.5, 1, 1.5, 2, 3, 5];

    private static (Tensor X, Tensor T, Tensor Idx, double Gamma, double? Alpha) Case(int seed, byte rows, byte cols, byte gammaPick, bool useAlpha, ScalarType dtype)
    {
        var gen = new Generator((ulong)(uint)seed);
        long n = 1 + rows % 40, c = 1 + cols % 23;
        var x = (randn(n, c, generator: gen, dtype: ScalarType.Float64) * 8).to(dtype);
        var t = (rand(n, c, generator: gen) < 0.2).to(dtype);
        var idx = randint(-2, c, [n], generator: gen);
        double? alpha = useAlpha ? rand(1, generator: gen, dtype: ScalarType.Float64).item<double>() : null;
        return (x, t, idx, Gammas[gammaPick % Gammas.Length], alpha);
    }

    [Property(MaxTest = 40)]
    public void Fused_and_composite_agree_for_random_shapes(int seed, byte rows, byte cols, byte gammaPick, bool useAlpha, bool float64)
    {
        using var scope = NewDisposeScope();
        var dtype = float64 ? ScalarType.Float64 : ScalarType.Float32;
        double rel = float64 ? 1e-12 : 2e-5;
        var (x, t, idx, gamma, alpha) = Case(seed, rows, cols, gammaPick, useAlpha, dtype);
        foreach (var r in new[] { FocalReduction.None, FocalReduction.Sum })
        {
            var fd = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, alpha, gamma, r, path: FocalLossPath.Fused), x);
            var cd = LossAndGrad(z => FocalLoss.SigmoidFocalLoss(z, t, alpha, gamma, r, path: FocalLossPath.Composite), x);
            AssertClose(cd.Loss, fd.Loss, rel, 1e-30, "dense loss");
            AssertClose(cd.Grad, fd.Grad, rel, 1e-30, "dense grad");
            var fi = LossAndGrad(z => FocalLoss.SigmoidFocalLossFromIndices(z, idx, alpha, gamma, r, path: FocalLossPath.Fused), x);
            var ci = LossAndGrad(z => FocalLoss.SigmoidFocalLossFromIndices(z, idx, alpha, gamma, r, path: FocalLossPath.Composite), x);
            AssertClose(ci.Loss, fi.Loss, rel, 1e-30, "index loss");
            AssertClose(ci.Grad, fi.Grad, rel, 1e-30, "index grad");
        }
    }

    [Property(MaxTest = 40)]
    public void Focal_loss_never_exceeds_cross_entropy_and_is_non_negative(int seed, byte rows, byte cols, byte gammaPick)
    {
        using var scope = NewDisposeScope();
        var (x, t, _, gamma, _) = Case(seed, rows, cols, gammaPick, false, ScalarType.Float64);
        var fl = Values(FocalLoss.SigmoidFocalLoss(x, t, alpha: null, gamma: gamma, reduction: FocalReduction.None));
        var ce = Values(FocalLoss.SigmoidFocalLoss(x, t, alpha: null, gamma: 0, reduction: FocalReduction.None));
        // Reference CE = max(-x_t, 0) + log1p(exp(-|x_t|)) in scalar float64 (torch's BCE uses log(1 + e), less
        // accurate for tiny losses, so it is not the reference here).
        var xs = Values(x);
        var ts = Values(t);
        var reference = xs.Select((v, i) =>
        {
            double z = ts[i] == 1 ? v : -v, e = Math.Exp(-Math.Abs(z));
            double u = 1 + e, log1p = u == 1 ? e : Math.Log(u) * e / (u - 1);   // Goldberg's accurate log1p
            return Math.Max(-z, 0) + log1p;
        }).ToArray();
        AssertClose(reference, ce, 1e-12, 1e-300, "CE");
        for (int i = 0; i < fl.Length; i++)
        {
            Assert.True(fl[i] >= 0);
            Assert.True(fl[i] <= ce[i], $"FL {fl[i]} > CE {ce[i]}");
        }
    }

    [Property(MaxTest = 30)]
    public void Larger_gamma_never_increases_the_loss(int seed, byte rows, byte cols, byte gammaPick)
    {
        using var scope = NewDisposeScope();
        var (x, t, _, gamma, _) = Case(seed, rows, cols, gammaPick, true, ScalarType.Float64);
        var lo = Values(FocalLoss.SigmoidFocalLoss(x, t, gamma: gamma, reduction: FocalReduction.None));
        var hi = Values(FocalLoss.SigmoidFocalLoss(x, t, gamma: gamma + 0.5, reduction: FocalReduction.None));
        for (int i = 0; i < lo.Length; i++)
            Assert.True(hi[i] <= lo[i] * (1 + 1e-12) + 1e-300);
    }
}
