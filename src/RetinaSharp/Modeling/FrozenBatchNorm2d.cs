// Reference: torchvision.ops.misc.FrozenBatchNorm2d (0.14): batch norm with fixed statistics and affine parameters,
// state_dict keys weight, bias, running_mean, running_var (no num_batches_tracked). Written here because
// TorchSharp/TorchVision 0.107's ops.FrozenBatchNorm2d overwrites its own bias on every call.
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>
/// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel, with all four held as buffers
/// (never trained). Input and output (N, C, H, W).
/// </summary>
public sealed class FrozenBatchNorm2d : nn.Module<Tensor, Tensor>
{
    private readonly double _eps;

    /// <summary>Creates the layer with identity statistics (weight 1, bias 0, mean 0, var 1).</summary>
    /// <param name="numFeatures">C, the number of channels.</param>
    /// <param name="eps">Added to the variance; 1e-5 as torchvision.</param>
    /// <exception cref="ArgumentException"><paramref name="numFeatures"/> is not positive.</exception>
    public FrozenBatchNorm2d(long numFeatures, double eps = 1e-5) : base(nameof(FrozenBatchNorm2d))
    {
        if (numFeatures < 1) throw new ArgumentException($"numFeatures = {numFeatures}: must be positive", nameof(numFeatures));
        _eps = eps;
        register_buffer("weight", ones(numFeatures));
        register_buffer("bias", zeros(numFeatures));
        register_buffer("running_mean", zeros(numFeatures));
        register_buffer("running_var", ones(numFeatures));
    }

    /// <summary>The per-channel (scale, shift) such that y = x·scale + shift, each (C).</summary>
    public (Tensor Scale, Tensor Shift) ScaleAndShift()
    {
        using var scope = NewDisposeScope();
        using var eps = _eps.ToScalar();
        var scale = get_buffer("weight")! * get_buffer("running_var")!.add(eps, TorchScalars.One).rsqrt();
        var shift = get_buffer("bias")! - get_buffer("running_mean")! * scale;
        return (scale.MoveToOuterDisposeScope(), shift.MoveToOuterDisposeScope());
    }

    /// <summary>Applies the frozen normalisation to x (N, C, H, W).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (scale, shift) = ScaleAndShift();
        return (x * scale.reshape(1, -1, 1, 1)).add(shift.reshape(1, -1, 1, 1), TorchScalars.One).MoveToOuterDisposeScope();
    }
}
