// The multi-class (softmax) focal loss: Lin et al. 2017 define FL(p_t) = -α_t (1 - p_t)^γ log(p_t) for any
// estimated probability of the true class (section 3.2, and section 5.1 notes a softmax variant works too).
// No torchvision function exists for it; values are checked against the formula itself.

using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Losses;

public sealed partial class FocalLoss
{
    /// <summary>
    /// Softmax focal loss over C mutually exclusive classes: FL = -α_t (1 - p_t)^γ log(p_t) with p_t the softmax
    /// probability of the target class. log p_t = log_softmax(x)_t and log(1 - p_t) = logsumexp over the other
    /// classes minus logsumexp over all, so no probability is clamped. γ = 0 with α disabled is cross-entropy.
    /// Composite tensor ops on any device; autograd through the ops.
    /// </summary>
    /// <param name="logits">(N, C) or (..., C) with C >= 2; floating dtype.</param>
    /// <param name="classIndices">(N) (or (...)) int64: the target class 0..C-1, or -2 = ignored (no loss, no gradient).</param>
    /// <param name="alpha">Uniform weight α in [0, 1] of every sample, or null (weight 1). Ignored when
    /// <paramref name="alphaPerClass"/> is given.</param>
    /// <param name="gamma">The focusing parameter γ >= 0.</param>
    /// <param name="reduction">None (one loss per sample, shaped like <paramref name="classIndices"/>, 0 for ignored),
    /// Sum, Mean (over non-ignored samples) or Normalized (sum / max(1, normalizer)).</param>
    /// <param name="normalizer">Divisor of <see cref="FocalReduction.Normalized"/>.</param>
    /// <param name="alphaPerClass">Optional (C) weights in [0, 1]: sample i is weighted by alphaPerClass[target_i].</param>
    /// <returns>A scalar tensor, or per-sample losses for <see cref="FocalReduction.None"/>.</returns>
    /// <exception cref="ArgumentException">Mismatched shapes, C &lt; 2, γ &lt; 0, α outside [0, 1], an index outside
    /// 0..C-1 and not -2, a malformed <paramref name="alphaPerClass"/>, a NaN normaliser.</exception>
    public static Tensor SoftmaxFocalLoss(Tensor logits, Tensor classIndices, double? alpha = null, double gamma = 2.0,
        FocalReduction reduction = FocalReduction.Mean, double normalizer = 1.0, Tensor? alphaPerClass = null)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(classIndices);
        ValidateScalars(alpha, gamma, normalizer);
        ValidateReduction(reduction);
        RequireFloating(logits);
        if (logits.dim() < 1 || logits.shape[^1] < 2)
            throw new ArgumentException($"logits must have at least 2 classes in its last dimension, but its shape is {Shape(logits)}.", nameof(logits));
        if (!classIndices.shape.SequenceEqual(logits.shape[..^1]))
            throw new ArgumentException(
                $"classIndices must have the shape of logits {Shape(logits)} without its last (class) dimension, but it has {Shape(classIndices)}.", nameof(classIndices));
        if (classIndices.is_floating_point() || classIndices.dtype == ScalarType.Bool)
            throw new ArgumentException($"classIndices must be an integer tensor (int64), but it is {classIndices.dtype}.", nameof(classIndices));
        AlphaPerClassValues(alphaPerClass, logits);
        long classes = logits.shape[^1];

        using var scope = NewDisposeScope();
        var x = logits.reshape(-1, classes);                      // (N, C)
        var idx = classIndices.reshape(-1).to(ScalarType.Int64);  // (N)
        using var classCount = classes.ToScalar();
        var bad = idx.ne(MinusTwo).logical_and(idx.lt(Zero).logical_or(idx.ge(classCount)));
        if (bad.any().item<bool>())
        {
            long at = bad.nonzero()[0, 0].item<long>();
            throw new ArgumentException(
                $"classIndices must be in 0..{classes - 1} or -2 (ignored), but classIndices[{at}] is {idx[at].item<long>()}.", nameof(classIndices));
        }
        var valid = idx.ne(MinusTwo);                             // (N)
        var safeIdx = idx.clamp_min(Zero).unsqueeze(1);           // (N, 1)
        var xs = x.masked_fill(valid.logical_not().unsqueeze(1), ZeroF);
        var lse = xs.logsumexp(1);                                // (N)
        var logPt = xs.gather(1, safeIdx).squeeze(1) - lse;       // (N) log p_t
        var loss = logPt.neg();
        if (gamma != 0)
        {
            var isTarget = arange(Zero, classCount, One, device: x.device).unsqueeze(0).eq(safeIdx);   // (N, C)
            var logOneMinusPt = xs.masked_fill(isTarget, NegativeInfinity).logsumexp(1) - lse;
            using var g = gamma.ToScalar();
            loss = loss * logOneMinusPt.mul(g).exp();
        }
        if (alphaPerClass is not null)
            loss = loss * alphaPerClass.detach().to(logits.dtype, logits.device).index_select(0, safeIdx.squeeze(1));
        else if (alpha.HasValue)
        {
            using var a = alpha.Value.ToScalar();
            loss = loss.mul(a);
        }
        loss = loss.masked_fill(valid.logical_not(), ZeroF);
        var result = FocalLossComposite.Reduce(loss, reduction, normalizer, valid.sum().item<long>());
        if (reduction == FocalReduction.None)
            result = result.reshape(classIndices.shape);
        return result.MoveToOuterDisposeScope();
    }
}
