// Plugs the fused CPU focal-loss pass (FocalLossCpuKernel) into TorchSharp's autograd as a custom function,
// the counterpart of a torch.autograd.Function whose forward also produces the gradient
// (Lin et al. 2017, appendix B gives dFL/dx). Backward is a single multiply by the upstream gradient.

using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Losses;

/// <summary>
/// Custom autograd function around <see cref="FocalLossCpuKernel"/>: forward computes the loss and saves
/// d(loss)/d(logits) from the same pass; backward scales it by the upstream gradient.
/// Arguments of <c>apply</c>: logits (Tensor, requires grad), targets or class indices (Tensor, no gradient),
/// <see cref="FocalKernelOptions"/>, and a bool that is true for the class-index form.
/// </summary>
internal sealed class FusedFocalLossFunction : autograd.SingleTensorFunction<FusedFocalLossFunction>
{
    /// <inheritdoc/>
    public override string Name => nameof(FusedFocalLossFunction);

    /// <inheritdoc/>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        var options = (FocalKernelOptions)vars[2];
        bool indexForm = (bool)vars[3];
        var (loss, grad) = indexForm
            ? FocalLossCpuKernel.Indices(logits, targets, options, computeGrad: true)
            : FocalLossCpuKernel.Dense(logits, targets, options, computeGrad: true);
        ctx.save_for_backward([grad!]);
        return loss;
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var grad = ctx.get_saved_variables()[0];
        // loss.backward() passes a scalar 1: hand back the saved gradient without another pass over memory.
        bool unit = gradOutput.numel() == 1 && IsOne(gradOutput);
        var gradLogits = unit ? grad : grad.mul(gradOutput);
        return [gradLogits, null!, null!, null!];
    }

    /// <summary>Whether a one-element tensor holds 1 (read through a float64 copy, not TorchSharp's Scalar-based ToDouble).</summary>
    private static bool IsOne(Tensor t)
    {
        using var d = t.detach().to(ScalarType.Float64);
        return d.item<double>() == 1.0;
    }
}
