// FL*, the alternative focal loss of Lin et al. 2017, appendix A: FL* = -log(σ(γ x_t + β)) / γ with x_t = y·x,
// y ∈ {-1, +1}. The paper uses it to show that the exact form of FL is not crucial: it too down-weights
// well-classified examples.
// No torchvision function exists for it; values are checked against the formula itself.

using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Losses;

public sealed partial class FocalLoss
{
    /// <summary>
    /// FL* (paper appendix A): FL* = -log(σ(γ x_t + β)) / γ = softplus(-(γ x_t + β)) / γ, with x_t = x for a positive
    /// and -x for a negative target, optionally weighted by α_t. Composite tensor ops on any device; autograd through the ops.
    /// </summary>
    /// <param name="logits">Any shape; floating dtype.</param>
    /// <param name="targets">Same shape, values exactly 0 or 1.</param>
    /// <param name="gamma">γ > 0 (it divides). Defaults γ = 2, β = 1.</param>
    /// <param name="beta">The shift β.</param>
    /// <param name="alpha">α in [0, 1] for positives, 1 - α for negatives; null (the appendix's form) disables it.</param>
    /// <param name="reduction">None, Sum, Mean or Normalized (sum / max(1, normalizer)).</param>
    /// <param name="normalizer">Divisor of <see cref="FocalReduction.Normalized"/>.</param>
    /// <returns>A scalar tensor, or one shaped like the logits for <see cref="FocalReduction.None"/>.</returns>
    /// <exception cref="ArgumentException">Mismatched shapes, γ &lt;= 0, β not finite, α outside [0, 1], a target other than 0/1, a NaN normaliser.</exception>
    public static Tensor FocalLossStar(Tensor logits, Tensor targets, double gamma = 2.0, double beta = 1.0, double? alpha = null,
        FocalReduction reduction = FocalReduction.Mean, double normalizer = 1.0)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        ValidateScalars(alpha, gamma, normalizer);
        ValidateReduction(reduction);
        if (!(gamma > 0))
            throw new ArgumentException($"gamma must be > 0 for FL* (it divides by gamma), but it is {Fmt(gamma)}.", nameof(gamma));
        if (!double.IsFinite(beta))
            throw new ArgumentException($"beta must be finite, but it is {Fmt(beta)}.", nameof(beta));
        RequireFloating(logits);
        if (!targets.shape.SequenceEqual(logits.shape))
            throw new ArgumentException($"targets must have the shape of logits {Shape(logits)}, but it has {Shape(targets)}.", nameof(targets));

        using var scope = NewDisposeScope();
        var tf = targets.dtype == ScalarType.Bool ? targets.to(logits.dtype) : targets;
        var bad = tf.ne(Zero).logical_and(tf.ne(One));
        if (bad.any().item<bool>())
        {
            long at = bad.flatten().nonzero()[0, 0].item<long>();
            double value = tf.flatten()[at].to(ScalarType.Float64).item<double>();
            throw new ArgumentException($"targets must be 0 or 1, but targets (flat index {at}) is {Fmt(value)}.", nameof(targets));
        }
        var positive = tf.eq(One);
        var z = where(positive, logits, logits.neg());
        using var g = gamma.ToScalar();
        using var b = beta.ToScalar();
        var loss = nn.functional.logsigmoid(z.mul(g).add(b, One)).neg().div(g);
        if (alpha.HasValue)
        {
            using var slope = (2 * alpha.Value - 1).ToScalar();
            using var offset = (1 - alpha.Value).ToScalar();
            loss = loss * positive.to(logits.dtype).mul(slope).add(offset, One);
        }
        return FocalLossComposite.Reduce(loss, reduction, normalizer, logits.numel()).MoveToOuterDisposeScope();
    }
}
