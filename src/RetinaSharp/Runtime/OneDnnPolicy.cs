// Which of libtorch's oneDNN (MKL-DNN) kernels RetinaSharp lets run, decided once per process from the machine's CPUID
// cache leaf (CpuCacheFacts). Measured on a 2-core AMD EPYC (Zen 5) VM whose CPUID lists no caches, libtorch 2.10
// (oneDNN 3.7.1): forward convolutions on NCHW tensors run oneDNN's jit / jit_1x1 kernels (fp32 and bf16, every shape
// of a sweep from 1x1 to 50x50 maps, 3 to 2048 channels, kernels 1/3/7, strides 1/2) and are correct; channels-last
// forward convolutions run brgconv_1x1 and die with SIGFPE for 1x1 convolutions with 1024 or 2048 outputs, and
// backward convolutions run brgconv_strided (backward data), which crashes or returns NaN, even on NCHW tensors.
namespace RetinaSharp.Runtime;

/// <summary>How much of oneDNN libtorch may use (<see cref="TorchRuntime"/> applies it).</summary>
public enum OneDnnMode
{
    /// <summary>oneDNN everywhere (libtorch's default): forward and backward, NCHW and channels-last. For CPUs that
    /// report their caches.</summary>
    Full,
    /// <summary>oneDNN only for the forward convolutions of RetinaSharp's networks, on NCHW tensors, and for the forward
    /// convolutions their gradients are computed from (Runtime/ConvolutionBackward.cs); oneDNN's backward kernels and
    /// every other call use ATen's own kernels, and channels-last is not used. For CPUs whose CPUID lists no caches.</summary>
    ForwardOnly,
    /// <summary>oneDNN never (ATen's own kernels everywhere): the slowest, for when even forward kernels misbehave.</summary>
    Off,
}

/// <summary>What the user asked for: <c>auto</c> (the default: decide from the CPU) or one <see cref="OneDnnMode"/>.</summary>
public enum OneDnnSetting
{
    /// <summary>Decide from <see cref="CpuCacheFacts"/>: <see cref="OneDnnMode.Full"/> when the CPU reports caches,
    /// <see cref="OneDnnMode.ForwardOnly"/> when it does not.</summary>
    Auto,
    /// <summary>Force <see cref="OneDnnMode.Full"/>.</summary>
    Full,
    /// <summary>Force <see cref="OneDnnMode.ForwardOnly"/>.</summary>
    Forward,
    /// <summary>Force <see cref="OneDnnMode.Off"/>.</summary>
    Off,
}

/// <summary>The decision and the reason for it, in words for a notice.</summary>
/// <param name="Mode">What runs.</param>
/// <param name="Forced">True when the user chose it (environment variable or option) instead of <see cref="OneDnnSetting.Auto"/>.</param>
/// <param name="Reason">Why, naming the machine facts.</param>
public sealed record OneDnnDecision(OneDnnMode Mode, bool Forced, string Reason)
{
    /// <summary>True when channels-last tensors may reach oneDNN (only in <see cref="OneDnnMode.Full"/>): elsewhere
    /// channels-last is slower (ATen's own kernels) or unsafe (oneDNN brgemm).</summary>
    public bool ChannelsLast => Mode == OneDnnMode.Full;
}

/// <summary>The oneDNN decision as a pure function of the machine facts and the user's setting.</summary>
public static class OneDnnPolicy
{
    /// <summary>Parses a setting as the environment variable and the CLI option spell it: auto, full, forward, off
    /// (case-insensitive; empty means auto).</summary>
    /// <exception cref="ArgumentException">Any other value; the message lists the valid ones and names <paramref name="source"/>.</exception>
    public static OneDnnSetting Parse(string? value, string source = TorchRuntime.OneDnnVariable)
    {
        switch ((value ?? "").Trim().ToLowerInvariant())
        {
            case "" or "auto": return OneDnnSetting.Auto;
            case "full" or "on": return OneDnnSetting.Full;
            case "forward" or "forward-only": return OneDnnSetting.Forward;
            case "off": return OneDnnSetting.Off;
            default: throw new ArgumentException($"{source} = '{value}': expected auto, full, forward or off.");
        }
    }

    /// <summary>Decides what runs on a machine with <paramref name="facts"/> for <paramref name="setting"/>.</summary>
    public static OneDnnDecision Decide(CpuCacheFacts facts, OneDnnSetting setting)
    {
        ArgumentNullException.ThrowIfNull(facts);
        return setting switch
        {
            OneDnnSetting.Full => new(OneDnnMode.Full, true, $"forced ({facts})"),
            OneDnnSetting.Forward => new(OneDnnMode.ForwardOnly, true, $"forced ({facts})"),
            OneDnnSetting.Off => new(OneDnnMode.Off, true, $"forced ({facts})"),
            _ when !facts.IsX86 || facts.CpuidReportsCaches => new(OneDnnMode.Full, false, facts.ToString()),
            _ => new(OneDnnMode.ForwardOnly, false,
                $"this CPU reports no cache sizes ({facts}); oneDNN's brgemm convolutions divide by them (SIGFPE or NaN)"),
        };
    }
}
