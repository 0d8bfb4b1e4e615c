// The one place where RetinaSharp configures libtorch for the process (oneDNN use, NNPACK, the malloc heap), from the machine facts of
// Runtime/CpuCacheFacts.cs and the RETINA_ONEDNN setting. libtorch's switches are at::Context members
// (torch.backends.mkldnn.enabled / torch.backends.nnpack in PyTorch); TorchSharp 0.107 does not bind them, so they are
// called through their exported C++ symbols in libtorch_cpu.so.
using System.Runtime.InteropServices;
using RetinaSharp.Runtime;

namespace RetinaSharp;

/// <summary>
/// Process-wide TorchSharp settings shared by the library, the CLI and the tests. The first RetinaSharp network
/// (or an explicit <see cref="Initialize(OneDnnSetting?, TextWriter?)"/>) loads libtorch and decides how much of oneDNN runs
/// (<see cref="OneDnnPolicy"/>): on CPUs whose CPUID reports no cache sizes, oneDNN's brgemm convolutions crash or return
/// NaN, so there only forward NCHW convolutions of RetinaSharp's networks use oneDNN and one notice says so.
/// glibc's malloc keeps freed tensor memory for reuse (<see cref="Training.NativeHeap.TuneForTensors"/>).
/// NNPACK is switched off everywhere (its kernels are never chosen over oneDNN on x86; on CPUs it does not support it
/// printed "Could not initialize NNPACK" on every convolution).
/// </summary>
public static class TorchRuntime
{
    /// <summary>Environment variable that overrides the oneDNN decision: auto (default), full, forward or off.</summary>
    public const string OneDnnVariable = "RETINA_ONEDNN";

    private static readonly object Gate = new();
    private static OneDnnDecision? _decision;
    // Regions opened under ForwardOnly may close after a switch to another mode: then they leave libtorch's flag alone.
    private static readonly OneDnnSwitch ForwardOnlySwitch = new(on => { if (_decision?.Mode == OneDnnMode.ForwardOnly) SetMkldnn(on); });
    private static unsafe delegate* unmanaged<IntPtr, byte, void> _setMkldnn;
    private static unsafe delegate* unmanaged<IntPtr, byte, void> _setNnpack;
    private static IntPtr _context;

    /// <summary>Returns the libtorch version string once the native library has loaded.</summary>
    /// <exception cref="TypeInitializationException">libtorch or libLibTorchSharp.so failed to load.</exception>
    public static string Version => TorchSharp.torch.__version__;

    /// <summary>The oneDNN decision in force (initialising with the environment's setting on first use).</summary>
    public static OneDnnDecision OneDnn => _decision ?? Initialize();

    /// <summary>True when networks may run channels-last (oneDNN in <see cref="OneDnnMode.Full"/>).</summary>
    public static bool ChannelsLastSupported => OneDnn.ChannelsLast;

    /// <summary>
    /// Loads libtorch and applies the oneDNN decision for <paramref name="setting"/> (null: the
    /// <see cref="OneDnnVariable"/> environment variable, else auto). Idempotent; a later call with another setting
    /// applies that one. When the decision is not <see cref="OneDnnMode.Full"/> (or was forced), one line is written to
    /// <paramref name="notice"/> (default: standard error) the first time it is made.
    /// </summary>
    /// <exception cref="ArgumentException"><see cref="OneDnnVariable"/> holds an unknown value.</exception>
    public static OneDnnDecision Initialize(OneDnnSetting? setting = null, TextWriter? notice = null) =>
        Initialize(setting, CpuCacheFacts.Read(), notice);

    /// <summary>As <see cref="Initialize(OneDnnSetting?, TextWriter?)"/> with given machine facts (tests inject them).</summary>
    public static OneDnnDecision Initialize(OneDnnSetting? setting, CpuCacheFacts facts, TextWriter? notice = null)
    {
        Training.NativeHeap.TuneForTensors();
        var wanted = setting ?? OneDnnPolicy.Parse(Environment.GetEnvironmentVariable(OneDnnVariable));
        var decision = OneDnnPolicy.Decide(facts, wanted);
        lock (Gate)
        {
            if (_decision == decision) return decision;
            TorchNative.EnsureLoaded(); // loads libtorch (and libtorch_cpu.so), naming the real cause when it cannot
            string? unbound = BindNative();
            if (unbound is not null)
            {
                // Another libtorch build without these symbols: it keeps its own defaults, and the user is told.
                if (_decision is null && (decision.Mode != OneDnnMode.Full || decision.Forced))
                    (notice ?? Console.Error).WriteLine($"warning: {unbound} (wanted: {decision.Mode}, {decision.Reason}).");
                _decision = decision with { Mode = OneDnnMode.Full, Reason = $"{decision.Reason}; {unbound}" };
                return _decision;
            }
            SetNnpack(false);
            SetMkldnn(decision.Mode == OneDnnMode.Full || (decision.Mode == OneDnnMode.ForwardOnly && ForwardOnlySwitch.WantsOn));
            _decision = decision;
            if (decision.Mode != OneDnnMode.Full || decision.Forced)
                (notice ?? Console.Error).WriteLine(Describe(decision));
            return decision;
        }
    }

    /// <summary>The notice line for <paramref name="d"/>.</summary>
    internal static string Describe(OneDnnDecision d)
    {
        string what = d.Mode switch
        {
            OneDnnMode.Full => "oneDNN everywhere",
            OneDnnMode.ForwardOnly => "oneDNN for forward NCHW convolutions only (convolution gradients computed from them, no channels-last)",
            _ => "oneDNN off (ATen's own kernels everywhere)",
        };
        string how = d.Forced ? $"{OneDnnVariable}/--onednn" : $"set {OneDnnVariable}=full to force oneDNN everywhere";
        return $"note: {what}: {d.Reason} ({how}).";
    }

    /// <summary>
    /// Opens a region in which RetinaSharp's network forward passes run: in <see cref="OneDnnMode.ForwardOnly"/> oneDNN is
    /// enabled inside it (NCHW forward convolutions are safe there) and disabled again when the last region closes; in the
    /// other modes it changes nothing. libtorch's switch is process-wide, so a forward region waits while another thread
    /// runs <see cref="Backward"/>, and <see cref="Backward"/> waits for the forward regions of other threads to close.
    /// </summary>
    internal static ForwardRegion NetworkForward()
    {
        if (OneDnn.Mode != OneDnnMode.ForwardOnly) return default;
        ForwardOnlySwitch.EnterForward();
        return new ForwardRegion(true);
    }

    /// <summary>The end of a <see cref="NetworkForward"/> region (dispose it).</summary>
    internal readonly struct ForwardRegion(bool active) : IDisposable
    {
        /// <summary>Closes the region.</summary>
        public void Dispose()
        {
            if (active) ForwardOnlySwitch.ExitForward();
        }
    }

    /// <summary>
    /// Runs <c>loss.backward()</c> (all gradients of a scalar loss) safely on this machine: in
    /// <see cref="OneDnnMode.ForwardOnly"/> it waits until no other thread is inside a network forward pass or a backward
    /// pass (oneDNN's switch is process-wide) and keeps new ones waiting until it ends, so no convolution backward ever
    /// runs oneDNN's faulty backward kernels (RetinaSharp's own convolutions compute theirs from forward kernels); in the
    /// other modes it is <c>loss.backward()</c>. The trainer calls it; code that trains RetinaSharp networks on several
    /// threads, or beside detection, should too.
    /// </summary>
    /// <param name="loss">A scalar tensor that requires grad.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loss"/> is null.</exception>
    /// <exception cref="ExternalException">libtorch refused the backward pass (for example a non-scalar loss).</exception>
    public static void Backward(TorchSharp.torch.Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        using var region = AtenOnly();
        try { loss.backward(); }
        finally { ConvolutionBackwardFunction.ReleaseReturnedGradients(); }
    }

    /// <summary>
    /// Inside a backward pass: a region in which this thread's convolution gradients run on oneDNN's forward kernels (the
    /// safe ones in <see cref="OneDnnMode.ForwardOnly"/>; see Runtime/ConvolutionBackward.cs). Outside <see cref="Backward"/>
    /// (a plain <c>loss.backward()</c>) it also excludes other threads' forward and backward passes while it is open.
    /// In the other modes it changes nothing.
    /// </summary>
    internal static ForwardKernelRegion ForwardKernelsInBackward()
    {
        if (OneDnn.Mode != OneDnnMode.ForwardOnly) return default;
        return new ForwardKernelRegion(true, ForwardOnlySwitch.EnterForwardKernels());
    }

    /// <summary>The end of a <see cref="ForwardKernelsInBackward"/> region (dispose it).</summary>
    internal readonly struct ForwardKernelRegion(bool active, bool openedBackward) : IDisposable
    {
        /// <summary>Closes the region.</summary>
        public void Dispose()
        {
            if (active) ForwardOnlySwitch.ExitForwardKernels(openedBackward);
        }
    }

    /// <summary>A region with oneDNN off for this thread's work (see <see cref="Backward"/>); dispose it to close.</summary>
    internal static AtenOnlyRegion AtenOnly()
    {
        if (OneDnn.Mode != OneDnnMode.ForwardOnly) return default;
        ForwardOnlySwitch.EnterBackward();
        return new AtenOnlyRegion(true);
    }

    /// <summary>The end of an <see cref="AtenOnly"/> region (dispose it).</summary>
    internal readonly struct AtenOnlyRegion(bool active) : IDisposable
    {
        /// <summary>Closes the region.</summary>
        public void Dispose()
        {
            if (active) ForwardOnlySwitch.ExitBackward();
        }
    }

    /// <summary>Finds libtorch's switches; null on success, else why not (the caller keeps libtorch's defaults).</summary>
    private static unsafe string? BindNative()
    {
        if (_context != IntPtr.Zero) return null;
        // Already loaded by TorchSharp: a bare name resolves to that copy (deps.json native folders, then the loader).
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(TorchRuntime).Assembly, null, out var lib)
            && !NativeLibrary.TryLoad("libtorch_cpu.so", out lib)
            && !NativeLibrary.TryLoad("libtorch_cpu", typeof(TorchRuntime).Assembly, null, out lib))
            return "libtorch_cpu could not be opened, so oneDNN and NNPACK cannot be configured";
        // at::globalContext(), at::Context::setUserEnabledMkldnn(bool), at::Context::setUserEnabledNNPACK(bool) (Itanium ABI:
        // a member function takes `this` as its first argument).
        if (!NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var global)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledMkldnnEb", out var mkldnn)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var nnpack))
            return $"libtorch {Version} does not export at::Context::setUserEnabledMkldnn/NNPACK, so oneDNN cannot be configured";
        _setMkldnn = (delegate* unmanaged<IntPtr, byte, void>)mkldnn;
        _setNnpack = (delegate* unmanaged<IntPtr, byte, void>)nnpack;
        _context = ((delegate* unmanaged<IntPtr>)global)();
        return null;
    }

    private static unsafe void SetMkldnn(bool on)
    {
        if (_context != IntPtr.Zero) _setMkldnn(_context, on ? (byte)1 : (byte)0);
    }

    private static unsafe void SetNnpack(bool on)
    {
        if (_context != IntPtr.Zero) _setNnpack(_context, on ? (byte)1 : (byte)0);
    }
}
