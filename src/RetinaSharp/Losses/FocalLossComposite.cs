// The composite (tensor-op) path of the sigmoid focal loss for every device and floating dtype; autograd
// differentiates through the ops. Same values as torchvision.ops.sigmoid_focal_loss (0.14) and as the fused
// CPU kernel, but in log-sigmoid form (Lin et al. 2017, section 3.2):
//   x_t = x for a positive, -x for a negative;  CE = -logsigmoid(x_t);  (1 - p_t)^γ = exp(γ (logsigmoid(x_t) - x_t)).

using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Losses;

/// <summary>The sigmoid focal loss built from TorchSharp tensor ops (no custom kernel).</summary>
internal static class FocalLossComposite
{
    /// <summary>
    /// Element losses of logits <paramref name="logits"/> against the boolean mask <paramref name="positive"/> (same shape),
    /// reduced as asked. <paramref name="valid"/> (broadcastable bool, or null) zeroes ignored elements in value and gradient.
    /// <paramref name="meanCount"/> is the divisor of <see cref="FocalReduction.Mean"/> (clamped to at least 1).
    /// </summary>
    internal static Tensor Sigmoid(Tensor logits, Tensor positive, Tensor? valid, double? alpha, double gamma,
        Tensor? alphaPerClass, FocalReduction reduction, double normalizer, long meanCount)
    {
        using var scope = NewDisposeScope();
        // Ignored logits are replaced by 0 before any math, so a NaN or huge ignored logit cannot leak into the gradient.
        var x = valid is null ? logits : logits.masked_fill(valid.logical_not(), ZeroF);
        var z = where(positive, x, x.neg());
        var logPt = nn.functional.logsigmoid(z);               // log p_t
        var loss = logPt.neg();                                // CE = -log p_t
        // Weight w = α_t (1 - p_t)^γ, built before it meets the CE so autograd keeps fewer logits-sized tensors.
        Tensor? weight = null;
        if (gamma != 0)
        {
            using var g = gamma.ToScalar();
            weight = (logPt - z).mul(g).exp();                 // log(1 - p_t) = log p_t - x_t
        }
        Tensor? alphaT = null;
        if (alphaPerClass is not null)
        {
            var a = alphaPerClass.detach().to(logits.dtype, logits.device);
            alphaT = where(positive, a, a.neg().add(OneF, One));
        }
        else if (alpha.HasValue)
        {
            // α_t = α for positives, 1 - α for negatives, in place on a fresh tensor that needs no gradient.
            using var slope = (2 * alpha.Value - 1).ToScalar();
            using var offset = (1 - alpha.Value).ToScalar();
            alphaT = positive.to(logits.dtype).mul_(slope).add_(offset, One);
        }
        if (alphaT is not null)
            weight = weight is null ? alphaT : weight * alphaT;
        if (weight is not null)
            loss = loss * weight;
        if (valid is not null)
            loss = loss.masked_fill(valid.logical_not(), ZeroF);
        return Reduce(loss, reduction, normalizer, meanCount).MoveToOuterDisposeScope();
    }

    /// <summary>Applies <paramref name="reduction"/> to element losses.</summary>
    internal static Tensor Reduce(Tensor loss, FocalReduction reduction, double normalizer, long meanCount)
    {
        switch (reduction)
        {
            case FocalReduction.None: return loss.alias();
            case FocalReduction.Sum: return loss.sum();
            case FocalReduction.Mean:
                using (var count = Math.Max(1L, meanCount).ToScalar()) return loss.sum().div(count);
            case FocalReduction.Normalized:
                using (var n = Math.Max(1.0, normalizer).ToScalar()) return loss.sum().div(n);
            default: throw new ArgumentException($"unknown reduction {reduction}.", nameof(reduction));
        }
    }
}
