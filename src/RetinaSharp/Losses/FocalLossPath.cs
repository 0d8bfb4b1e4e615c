// Selects the fused CPU kernel or the composite tensor-op path of the sigmoid focal loss; both compute the
// same values as torchvision.ops.sigmoid_focal_loss (Lin et al. 2017, section 3.2).

namespace RetinaSharp.Losses;

/// <summary>Which implementation of the sigmoid focal loss runs.</summary>
public enum FocalLossPath
{
    /// <summary>The fused CPU kernel when the input allows it (CPU, float32/float64; non-contiguous logits are copied), else the composite path.</summary>
    Auto,
    /// <summary>The fused one-pass CPU kernel; an <see cref="ArgumentException"/> when the input does not allow it.</summary>
    Fused,
    /// <summary>The composite path of TorchSharp tensor ops (any device and floating dtype; autograd through the ops).</summary>
    Composite,
}
