// Atomic output files: temp file in the destination's folder, flushed, then renamed (POSIX rename(2) is atomic
// within one file system), so a reader sees the old file or the new one, never half of one.
namespace RetinaSharp.IO;

/// <summary>
/// Writes files so that a reader never sees a half-written file: the content goes to a temporary file in
/// the same folder, is flushed to disk, then renamed over the destination (rename is atomic on one file system).
/// Checkpoints, reports and every other output of RetinaSharp are written through here.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> to a temporary file, then renames it to <paramref name="path"/>.</summary>
    /// <param name="path">Destination file; its folder is created when missing.</param>
    /// <param name="write">Writes the whole content to the stream it is given.</param>
    /// <exception cref="IOException">The folder cannot be created or is not writable, a parent of <paramref name="path"/>
    /// is a file, or <paramref name="path"/> is a folder, a device, a named pipe or a socket; the message names the destination and
    /// the destination is left untouched.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new IOException($"Cannot write '{full}': it is a folder.");
        if (SpecialFileKind(full) is string kind)
            throw new IOException($"Cannot write '{full}': it is a {kind}, not a regular file; renaming a new file over it would replace it. Give a file path.");
        string dir = Path.GetDirectoryName(full)!;
        CreateFolder(dir, full);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            if (e is IOException or UnauthorizedAccessException)
                throw new IOException($"Cannot write '{full}': {e.Message}", e);
            throw;
        }
    }

    /// <summary>
    /// What <paramref name="path"/> is when it exists and is neither a regular file nor a folder nor a link ("character device",
    /// "block device", "named pipe", "socket"), from stat(2) on Linux x64/arm64; null otherwise (and wherever stat cannot be asked).
    /// </summary>
    internal static string? SpecialFileKind(string path)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(path)) return null;
        int offset = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => 24,     // st_dev, st_ino, st_nlink (8 bytes each), then st_mode
            System.Runtime.InteropServices.Architecture.Arm64 => 16,   // st_dev, st_ino, then st_mode
            _ => -1,
        };
        if (offset < 0) return null;
        var buffer = new byte[256];
        try
        {
            if (Stat(path, buffer) != 0) return null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
        uint mode = BitConverter.ToUInt32(buffer, offset) & 0xF000;
        return mode switch
        {
            0x2000 => "character device",
            0x6000 => "block device",
            0x1000 => "named pipe",
            0xC000 => "socket",
            _ => null,
        };
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, byte[] buffer);

    /// <summary>
    /// Checks before a long run that <paramref name="folder"/> can receive output: creates it when missing, then creates
    /// and deletes a probe file in it. Call it first, so that a bad output folder fails in a second, not after an hour.
    /// </summary>
    /// <param name="folder">The output folder.</param>
    /// <exception cref="IOException"><paramref name="folder"/> is a file, a parent of it is a file, or it cannot be created
    /// or written; the message names the folder.</exception>
    public static void EnsureWritableFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string full = Path.GetFullPath(folder);
        if (File.Exists(full))
            throw new IOException($"Cannot write to the folder '{full}': it is a file.");
        CreateFolder(full, full);
        string probe = Path.Combine(full, $".write-probe.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None)) { }
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot write to the folder '{full}': {e.Message}", e);
        }
    }

    /// <summary>Atomically writes <paramref name="text"/> as UTF-8 (no BOM) to <paramref name="path"/>.</summary>
    /// <exception cref="IOException">See <see cref="Write(string, Action{Stream})"/>.</exception>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    /// <summary>Atomically writes <paramref name="bytes"/> to <paramref name="path"/>.</summary>
    /// <exception cref="IOException">See <see cref="Write(string, Action{Stream})"/>.</exception>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    // Directory.CreateDirectory says only "The file '/a/b' already exists" when a parent is a file: name the destination.
    private static void CreateFolder(string dir, string destination)
    {
        for (string? p = dir; !string.IsNullOrEmpty(p); p = Path.GetDirectoryName(p))
        {
            if (File.Exists(p))
                throw new IOException($"Cannot write '{destination}': '{p}' is a file, not a folder.");
            if (Directory.Exists(p)) break;
        }
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot write '{destination}': cannot create the folder '{dir}': {e.Message}", e);
        }
    }
}
