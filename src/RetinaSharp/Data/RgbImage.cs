// A decoded image as plain bytes, so that decoding and augmentation can run on background threads without
// tensors (TorchSharp's DisposeScopes are thread-local); ImageIO.ToTensor makes the (3, H, W) tensor.
namespace RetinaSharp.Data;

/// <summary>An 8-bit RGB image stored row-major, interleaved (HWC): pixel (x, y) channel c is at <c>(y * Width + x) * 3 + c</c>.</summary>
/// <param name="Pixels">Width * Height * 3 bytes.</param>
/// <param name="Width">Width in pixels (&gt; 0).</param>
/// <param name="Height">Height in pixels (&gt; 0).</param>
public sealed record RgbImage(byte[] Pixels, int Width, int Height)
{
    /// <summary>Checks that the buffer holds exactly Width * Height * 3 bytes.</summary>
    /// <exception cref="ArgumentException">A size is not positive or the buffer length does not match.</exception>
    public void Validate()
    {
        if (Width <= 0 || Height <= 0)
            throw new ArgumentException($"image size must be positive, found {Width}x{Height}", nameof(Width));
        if (Pixels is null || Pixels.Length != checked(Width * Height * 3))
            throw new ArgumentException($"expected {Width}*{Height}*3 = {Width * Height * 3} bytes, found {Pixels?.Length ?? 0}", nameof(Pixels));
    }
}
