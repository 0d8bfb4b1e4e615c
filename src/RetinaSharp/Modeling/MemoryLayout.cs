// Reference: PyTorch's channels_last memory format (torch.channels_last; `x.contiguous(memory_format=torch.channels_last)`
// and `module.to(memory_format=torch.channels_last)`), which TorchSharp 0.107 does not expose: the same strides are made
// with a permute to NHWC, a copy, and the inverse permute.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>
/// Channels-last (NHWC) memory layout for 4-d tensors: the shape stays (N, C, H, W), the strides become
/// (H·W·C, 1, W·C, C). libtorch's CPU convolutions (oneDNN) then keep activations in NHWC, which avoids layout
/// reorders on every convolution, most of all in bfloat16. Values are unchanged.
/// </summary>
public static class MemoryLayout
{
    /// <summary>A copy of <paramref name="x"/> (N, C, H, W) with channels-last strides; same shape, dtype and values.</summary>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not 4-dimensional.</exception>
    public static Tensor ToChannelsLast(Tensor x)
    {
        if (x.dim() != 4) throw new ArgumentException($"channels-last needs a 4-d (N, C, H, W) tensor, got shape [{string.Join(", ", x.shape)}]", nameof(x));
        using var scope = NewDisposeScope();
        return x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>True when <paramref name="x"/> (4-d) has channels-last strides (channel stride 1, as PyTorch's
    /// <c>is_contiguous(memory_format=torch.channels_last)</c> for tensors with more than one channel).</summary>
    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        var st = x.stride();
        var sh = x.shape;
        return st[1] == 1 && st[3] == sh[1] && st[2] == sh[1] * sh[3] && st[0] == sh[1] * sh[2] * sh[3];
    }

    /// <summary>Replaces the weight of every <see cref="Conv2d"/> in <paramref name="module"/> by a channels-last copy
    /// (a new parameter object: an optimiser built before holds the old ones, so use this for inference).</summary>
    public static void ConvWeightsToChannelsLast(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in module.named_modules())
            if (m is Conv2d c && c.weight is { } w && w.dim() == 4 && !IsChannelsLast(w))
                c.weight = new Parameter(ToChannelsLast(w.detach()), requires_grad: w.requires_grad);
    }
}
