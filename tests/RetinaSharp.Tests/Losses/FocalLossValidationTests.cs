using RetinaSharp.Losses;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Losses;

/// <summary>Bad input raises an ArgumentException naming the argument and the offending value.</summary>
public class FocalLossValidationTests
{
    private static void AssertBad(string param, string valueText, Action call)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(param, e.ParamName);
        Assert.Contains(valueText, e.Message);
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Dense_form_rejects_bad_arguments(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = zeros(2, 3);
        var t = zeros(2, 3);
        AssertBad("targets", "(2, 4)", () => FocalLoss.SigmoidFocalLoss(x, zeros(2, 4), path: path));
        AssertBad("gamma", "-0.5", () => FocalLoss.SigmoidFocalLoss(x, t, gamma: -0.5, path: path));
        AssertBad("gamma", "NaN", () => FocalLoss.SigmoidFocalLoss(x, t, gamma: double.NaN, path: path));
        AssertBad("alpha", "1.5", () => FocalLoss.SigmoidFocalLoss(x, t, alpha: 1.5, path: path));
        AssertBad("alpha", "-0.1", () => FocalLoss.SigmoidFocalLoss(x, t, alpha: -0.1, path: path));
        AssertBad("normalizer", "NaN", () => FocalLoss.SigmoidFocalLoss(x, t, normalizer: double.NaN, path: path));
        AssertBad("targets", "0.5", () => FocalLoss.SigmoidFocalLoss(x, tensor(new float[] { 0, 1, 0, 0.5f, 1, 0 }).reshape(2, 3), path: path));
        AssertBad("targets", "flat index 4", () => FocalLoss.SigmoidFocalLoss(x, tensor(new float[] { 0, 1, 0, 1, 2, 0 }).reshape(2, 3), path: path));
        AssertBad("targets", "NaN", () => FocalLoss.SigmoidFocalLoss(x, tensor(new float[] { 0, 1, 0, 1, 0, float.NaN }).reshape(2, 3), path: path));
        AssertBad("alphaPerClass", "(2)", () => FocalLoss.SigmoidFocalLoss(x, t, alphaPerClass: tensor(new float[] { 0.1f, 0.2f }), path: path));
        AssertBad("alphaPerClass", "alphaPerClass[2]", () => FocalLoss.SigmoidFocalLoss(x, t, alphaPerClass: tensor(new float[] { 0.1f, 0.2f, 1.2f }), path: path));
        AssertBad("logits", "Int64", () => FocalLoss.SigmoidFocalLoss(zeros(2, 3, dtype: ScalarType.Int64), t, path: path));
        AssertBad("reduction", "7", () => FocalLoss.SigmoidFocalLoss(x, t, reduction: (FocalReduction)7, path: path));
    }

    [Theory]
    [InlineData(FocalLossPath.Fused)]
    [InlineData(FocalLossPath.Composite)]
    public void Index_form_rejects_bad_arguments(FocalLossPath path)
    {
        using var scope = NewDisposeScope();
        var x = zeros(3, 4);
        AssertBad("classIndices", "(2)", () => FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new long[] { 0, 1 }), path: path));
        AssertBad("classIndices", "classIndices[1] is 4", () => FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new long[] { 0, 4, 1 }), path: path));
        AssertBad("classIndices", "classIndices[2] is -3", () => FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new long[] { 0, -2, -3 }), path: path));
        AssertBad("classIndices", "Float32", () => FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new float[] { 0, 1, 2 }), path: path));
        AssertBad("gamma", "-1", () => FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new long[] { 0, 1, 2 }), gamma: -1, path: path));
        AssertBad("alpha", "2", () => FocalLoss.SigmoidFocalLossFromIndices(x, tensor(new long[] { 0, 1, 2 }), alpha: 2, path: path));
    }

    [Fact]
    public void Fused_path_refuses_inputs_it_cannot_run()
    {
        using var scope = NewDisposeScope();
        AssertBad("logits", "Float16", () => FocalLoss.SigmoidFocalLoss(zeros(2, dtype: ScalarType.Float16), zeros(2), path: FocalLossPath.Fused));
        // Auto falls back to the composite path for float16 and still computes the right value.
        var half = FocalLoss.SigmoidFocalLoss(zeros(3, 4, dtype: ScalarType.Float16), zeros(3, 4), reduction: FocalReduction.Sum);
        Assert.Equal(ScalarType.Float16, half.dtype);
        Assert.Equal(12 * 0.75 * 0.25 * Math.Log(2), half.to(ScalarType.Float32).item<float>(), 2);
    }

    [Fact]
    public void Fused_path_copies_non_contiguous_logits_and_routes_the_gradient_back()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var t = (rand(7, 5, generator: gen) < 0.3).to(ScalarType.Float32);
        var baseLogits = randn(5, 7, generator: gen);
        var results = new List<(double[] Loss, double[] Grad)>();
        foreach (var path in FocalLossTestSupport.BothPaths)
        {
            var leaf = baseLogits.clone().requires_grad_(true);
            var x = leaf.t();   // (7, 5), not contiguous
            Assert.False(x.is_contiguous());
            var loss = FocalLoss.SigmoidFocalLoss(x, t, reduction: FocalReduction.Sum, path: path);
            loss.backward();
            results.Add((FocalLossTestSupport.Values(loss), FocalLossTestSupport.Values(leaf.grad!)));
        }
        FocalLossTestSupport.AssertClose(results[1].Loss, results[0].Loss, 2e-6, 0);
        FocalLossTestSupport.AssertClose(results[1].Grad, results[0].Grad, 2e-6, 1e-12);
    }

    [Fact]
    public void Module_softmax_and_star_reject_bad_arguments()
    {
        using var scope = NewDisposeScope();
        AssertBad("gamma", "-2", () => new FocalLoss(gamma: -2));
        AssertBad("alpha", "1.01", () => new FocalLoss(alpha: 1.01));
        AssertBad("alphaPerClass", "alphaPerClass[1]", () => new FocalLoss(alphaPerClass: [0.5, -0.5]));
        using var m = new FocalLoss();
        AssertBad("normalizer", "NaN", () => m.Normalizer = double.NaN);
        AssertBad("targets", "(2, 2)", () => m.forward(zeros(2, 3), zeros(2, 2)));
        var x = zeros(3, 4);
        AssertBad("classIndices", "classIndices[0] is -1", () => FocalLoss.SoftmaxFocalLoss(x, tensor(new long[] { -1, 0, 1 })));
        AssertBad("classIndices", "classIndices[2] is 4", () => FocalLoss.SoftmaxFocalLoss(x, tensor(new long[] { 0, -2, 4 })));
        AssertBad("logits", "(3, 1)", () => FocalLoss.SoftmaxFocalLoss(zeros(3, 1), tensor(new long[] { 0, 0, 0 })));
        AssertBad("gamma", "0", () => FocalLoss.FocalLossStar(x, zeros(3, 4), gamma: 0));
        AssertBad("targets", "3", () => FocalLoss.FocalLossStar(x, full(3, 4, 3f)));
        AssertBad("beta", "Infinity", () => FocalLoss.FocalLossStar(x, zeros(3, 4), beta: double.PositiveInfinity));
    }
}
