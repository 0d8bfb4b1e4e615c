// Returning freed native memory to the operating system during long training runs. libtorch's CPU allocator
// takes tensor memory from glibc malloc; glibc keeps freed blocks in its arenas (and raises its mmap threshold
// after the first large frees, so later large tensors come from the arena heaps too), so the resident set can
// creep up over thousands of steps although nothing is leaked. glibc's malloc_trim(0) (man 3 malloc_trim) gives
// the free pages of every arena back (madvise MADV_DONTNEED). PyTorch itself never calls it; this is our addition.
using System.Runtime.InteropServices;

namespace RetinaSharp.Training;

/// <summary>Gives freed native heap memory back to the operating system (glibc <c>malloc_trim</c>).</summary>
public static partial class NativeHeap
{
    private static bool _unavailable;

    /// <summary>
    /// Calls glibc's <c>malloc_trim(0)</c>: the free memory at the top of the main heap and the free pages inside every
    /// malloc arena are returned to the kernel, which lowers the resident set size (VmRSS); live tensors are untouched.
    /// Takes a few milliseconds. Does nothing (returns false) where glibc is not the C library (Windows, macOS, musl).
    /// </summary>
    /// <returns>True when memory was released, false when there was nothing to release or the call is unavailable.</returns>
    public static bool Trim()
    {
        if (_unavailable || !OperatingSystem.IsLinux()) return false;
        try
        {
            return malloc_trim(0) != 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
            return false;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);
}
