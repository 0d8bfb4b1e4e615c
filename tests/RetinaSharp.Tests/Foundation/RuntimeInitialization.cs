using System.Runtime.CompilerServices;

namespace RetinaSharp.Tests.Foundation;

/// <summary>Every test runs under the process configuration the library chooses for this machine (oneDNN decision,
/// NNPACK off), as the CLI does, even tests that call libtorch before building a network.</summary>
internal static class RuntimeInitialization
{
#pragma warning disable CA2255 // a test assembly is the one place where a module initializer is the right tool
    [ModuleInitializer]
    internal static void Initialize() => TorchRuntime.Initialize();
#pragma warning restore CA2255
}
