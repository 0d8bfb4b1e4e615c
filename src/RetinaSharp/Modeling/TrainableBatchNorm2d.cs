// Reference: torch.nn.BatchNorm2d (torchvision's norm_layer=BatchNorm2d): batch statistics in training mode (running
// mean and variance updated with the momentum, num_batches_tracked counted), running statistics in eval mode.
// TorchSharp 0.107's BatchNorm2d does the same, but counts with `num_batches_tracked.add_(1)`: an implicitly converted
// Scalar that a garbage collection on another thread can free while libtorch reads it (issue 17). This module is
// TorchSharp's BatchNorm (same parameters, buffers and state_dict keys) with a forward that passes a cached Scalar.
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace RetinaSharp.Modeling;

/// <summary>
/// Trainable batch norm over (N, C, H, W): weight, bias (C), running_mean, running_var (C) and num_batches_tracked,
/// under torch.nn.BatchNorm2d's state_dict keys; momentum 0.1 by default (null = cumulative average), ε 1e-5.
/// </summary>
public sealed class TrainableBatchNorm2d : BatchNorm
{
    /// <summary>Creates the layer with weight 1, bias 0, running mean 0 and running variance 1.</summary>
    /// <param name="numFeatures">C, the channels.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="momentum">Weight of the new batch in the running statistics, or null for a cumulative average.</param>
    public TrainableBatchNorm2d(long numFeatures, double eps = 1e-5, double? momentum = 0.1)
        : base(numFeatures, eps, momentum ?? 0.1, affine: true, track_running_stats: true, device: null, dtype: null, name: "BatchNorm2d")
    {
        this.momentum = momentum;
    }

    /// <summary>x (N, C, H, W) normalised per channel; in training mode the running statistics are updated.</summary>
    /// <exception cref="ArgumentException">x is not 4-D.</exception>
    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        double factor = momentum ?? 0.0;
        if (training && track_running_stats && num_batches_tracked is { } count)
        {
            using (no_grad()) count.add_(TorchScalars.One, TorchScalars.One);
            if (momentum is null) factor = 1.0 / count.item<long>();
        }
        bool useRunning = !training || track_running_stats;
        bool batchStats = training || (running_mean is null && running_var is null);
        return F.batch_norm(input, useRunning ? running_mean : null, useRunning ? running_var : null, weight, bias, batchStats, factor, eps);
    }

    /// <inheritdoc/>
    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4)
            throw new ArgumentException($"expected 4D input, but got {input.ndim}D input.");
    }
}
