namespace RetinaSharp;

/// <summary>Process-wide TorchSharp settings shared by the library, the CLI and the tests.</summary>
public static class TorchRuntime
{
    /// <summary>Returns the libtorch version string once the native library has loaded.</summary>
    /// <exception cref="System.TypeInitializationException">libtorch or libLibTorchSharp.so failed to load.</exception>
    public static string Version => TorchSharp.torch.__version__;
}
