// Where tensors and modules live: "cpu", "cuda" or "cuda:N", as PyTorch's torch.device strings, checked against what
// this process's libtorch offers (TorchSharp 0.107 with the CPU build libtorch-cpu-linux-x64 has no CUDA).
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp;

/// <summary>Parses and checks device strings (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>) and says what changes on a device.</summary>
public static class ComputeDevice
{
    /// <summary>The NuGet package with libtorch 2.10 for CUDA 12.8 on linux-x64, the CUDA counterpart of libtorch-cpu-linux-x64.</summary>
    public const string CudaPackage = "libtorch-cuda-12.8-linux-x64";

    /// <summary>The libtorch version both packages carry (TorchSharp 0.107.0 binds it).</summary>
    public const string LibTorchVersion = "2.10.0";

    /// <summary>
    /// Parses a device string without asking libtorch whether the device exists: <c>cpu</c>, <c>cuda</c> (device 0) or
    /// <c>cuda:N</c> (N = 0, 1, ...). Case-insensitive; surrounding spaces are ignored.
    /// </summary>
    /// <param name="text">The device string.</param>
    /// <param name="option">How the caller names the value in messages (a CLI option, a property).</param>
    /// <returns>The device type and index (-1 for the CPU).</returns>
    /// <exception cref="ArgumentException">Anything else; the message names <paramref name="option"/>, the value and the accepted forms.</exception>
    public static (DeviceType Type, int Index) ParseSpec(string text, string option = "--device")
    {
        string t = (text ?? "").Trim().ToLowerInvariant();
        if (t == "cpu") return (DeviceType.CPU, -1);
        if (t == "cuda") return (DeviceType.CUDA, 0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t.AsSpan(5), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out int index))
            return (DeviceType.CUDA, index);
        throw new ArgumentException($"{option} '{text}': expected cpu, cuda or cuda:N (N = 0, 1, ...).");
    }

    /// <summary>
    /// The device for <paramref name="text"/> (see <see cref="ParseSpec"/>), checked against this process: the CPU always
    /// exists; a CUDA device needs a CUDA build of libtorch (package <see cref="CudaPackage"/>), a driver and that many GPUs.
    /// </summary>
    /// <param name="text">The device string.</param>
    /// <param name="option">How the caller names the value in messages.</param>
    /// <exception cref="ArgumentException">A malformed string, or a CUDA device this process cannot use; for the CPU-only libtorch
    /// the message names the package to reference and how.</exception>
    public static Device Resolve(string text, string option = "--device")
    {
        var (type, index) = ParseSpec(text, option);
        if (type == DeviceType.CPU) return CPU;
        if (!cuda.is_available())
        {
            string why = HasCudaLibTorch()
                ? "libtorch was built with CUDA, but no CUDA device or driver is visible to this process (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                : CpuOnlyMessage;
            throw new ArgumentException($"{option} '{text}': {why}");
        }
        int count = cuda.device_count();
        if (index >= count)
            throw new ArgumentException($"{option} '{text}': there {(count == 1 ? "is 1 CUDA device" : $"are {count} CUDA devices")} (cuda:0{(count > 1 ? $"..cuda:{count - 1}" : "")}).");
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>The explanation given when CUDA is asked of the CPU-only libtorch: which package to reference, and how.</summary>
    public static string CpuOnlyMessage { get; } =
        "this process runs the CPU-only libtorch (package libtorch-cpu-linux-x64), which has no CUDA. For an NVIDIA GPU on linux-x64, " +
        $"reference the CUDA build in your project instead: <PackageReference Include=\"{CudaPackage}\" Version=\"{LibTorchVersion}\" /> " +
        $"plus <PackageReference Include=\"libtorch-cpu-linux-x64\" Version=\"{LibTorchVersion}\" ExcludeAssets=\"all\" /> (TorchSharp refuses both at once; " +
        "the driver must support CUDA 12.8). The retina tool and this repository's build carry the CPU build; use --device cpu there.";

    /// <summary>
    /// What runs differently on <paramref name="device"/> than on the CPU, for a visible notice (empty on the CPU): the
    /// fused one-pass focal loss kernel is CPU-only, so elsewhere the focal loss runs as composite tensor ops
    /// (<see cref="Losses.FocalLossPath.Composite"/>; same values, more memory); the post-processing's SIMD candidate
    /// selection falls back to libtorch's top-k the same way.
    /// </summary>
    public static IReadOnlyList<string> Fallbacks(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.type == DeviceType.CPU) return [];
        return
        [
            $"focal loss: the fused CPU kernel does not run on {device}; the composite tensor-op path runs instead (same values, more memory).",
            $"post-processing: candidate selection runs as libtorch top-k on {device} instead of the CPU SIMD pass (same detections).",
        ];
    }

    private static bool HasCudaLibTorch()
    {
        string dir = AppContext.BaseDirectory;
        return File.Exists(Path.Combine(dir, "libtorch_cuda.so")) || File.Exists(Path.Combine(dir, "runtimes", "linux-x64", "native", "libtorch_cuda.so"))
               || File.Exists(Path.Combine(dir, "torch_cuda.dll"));
    }
}
