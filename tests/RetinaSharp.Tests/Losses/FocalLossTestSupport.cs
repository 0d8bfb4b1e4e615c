using RetinaSharp.Losses;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Losses;

/// <summary>Helpers shared by the focal-loss tests.</summary>
internal static class FocalLossTestSupport
{
    public static readonly FocalLossPath[] BothPaths = [FocalLossPath.Fused, FocalLossPath.Composite];

    public static double[] Values(Tensor t) => t.detach().cpu().to(ScalarType.Float64).flatten().data<double>().ToArray();

    /// <summary>Loss value and d(loss · weights)/d(logits) for one path; the upstream weights exercise backward's multiply.</summary>
    public static (double[] Loss, double[] Grad) LossAndGrad(Func<Tensor, Tensor> loss, Tensor logits, Tensor? upstream = null)
    {
        using var scope = NewDisposeScope();
        var x = logits.detach().clone().requires_grad_(true);
        var l = loss(x);
        if (upstream is null) l.sum().backward();
        else (l * upstream).sum().backward();
        return (Values(l), Values(x.grad!));
    }

    /// <summary>Central finite differences of sum(loss(x) · upstream) in float64.</summary>
    public static double[] FiniteDifferences(Func<Tensor, Tensor> loss, Tensor logits, Tensor upstream, double h = 1e-5)
    {
        using var scope = NewDisposeScope();
        var x = logits.detach().to(ScalarType.Float64).clone();
        var flat = x.view(-1);
        var grad = new double[flat.shape[0]];
        using (no_grad())
            for (int i = 0; i < grad.Length; i++)
            {
                double v = flat[i].item<double>();
                flat[i] = v + h;
                double up = (loss(x) * upstream).sum().item<double>();
                flat[i] = v - h;
                double down = (loss(x) * upstream).sum().item<double>();
                flat[i] = v;
                grad[i] = (up - down) / (2 * h);
            }
        return grad;
    }

    public static void AssertClose(double[] expected, double[] actual, double rel, double abs, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = abs + rel * Math.Abs(expected[i]);
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol,
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tol:G3})");
        }
    }
}
