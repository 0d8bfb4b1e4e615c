// Loading TorchSharp's native library with a message that names the real cause. TorchSharp 0.107 reports any failure to
// load libLibTorchSharp.so as "doesn't contain a reference to libtorch-cpu-linux-x64", also when the library is present
// but the loader refuses it (Debian 12's libstdc++ lacks GLIBCXX_3.4.32, fixed by build/PatchLibTorchSharp.targets).
using System.Runtime.InteropServices;

namespace RetinaSharp;

/// <summary>Checks that libtorch and TorchSharp's native library load, before any tensor is made.</summary>
public static class TorchNative
{
    private static string? _version;

    /// <summary>Loads libtorch once (TorchSharp's static initialiser); later calls return at once.</summary>
    /// <returns>The libtorch version.</returns>
    /// <exception cref="InvalidOperationException">The native library cannot load; the message gives the loader's own reason
    /// (for example "version `GLIBCXX_3.4.32' not found") and what fixes it, instead of TorchSharp's generic text.</exception>
    public static string EnsureLoaded()
    {
        if (_version != null) return _version;
        try
        {
            return _version = TorchSharp.torch.__version__;
        }
        catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException or InvalidOperationException)
        {
            throw new InvalidOperationException(Diagnose() ?? $"TorchSharp could not load libtorch: {FirstLine(e)}", e);
        }
    }

    /// <summary>The loader's reason for refusing libLibTorchSharp.so found beside the program, or null when none is found or it loads.</summary>
    internal static string? Diagnose()
    {
        string dir = AppContext.BaseDirectory;
        string[] candidates = [Path.Combine(dir, "libLibTorchSharp.so"), Path.Combine(dir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")];
        string? path = candidates.FirstOrDefault(File.Exists);
        if (path == null)
            return $"TorchSharp's native library libLibTorchSharp.so is not in {dir} (nor under runtimes/linux-x64/native/): reference the NuGet package " +
                   "RetinaSharp (it brings TorchSharp and libtorch-cpu-linux-x64), or add libtorch-cpu-linux-x64 2.10.0 to the project that builds this program.";
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return null;
        }
        catch (DllNotFoundException e)
        {
            string reason = e.Message;
            string fix = reason.Contains("GLIBCXX", StringComparison.Ordinal)
                ? " The system libstdc++ is older than the one TorchSharp was built against (Debian 12). Build through the RetinaSharp NuGet package " +
                  "(its buildTransitive step patches the copied library), or, with a ProjectReference to RetinaSharp's source, add " +
                  "<Import Project=\"path/to/RetinaSharp/build/PatchLibTorchSharp.targets\" /> to your project and rebuild."
                : "";
            return $"TorchSharp's native library {path} cannot be loaded: {reason}.{fix}";
        }
    }

    private static string FirstLine(Exception e)
    {
        string m = (e.InnerException ?? e).Message;
        int n = m.IndexOf('\n');
        return n < 0 ? m : m[..n];
    }
}
