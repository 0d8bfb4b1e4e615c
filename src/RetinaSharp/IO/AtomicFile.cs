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
    /// <exception cref="IOException">The folder is not writable or <paramref name="path"/> is a folder; the destination is left untouched.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new IOException($"Cannot write '{full}': it is a folder.");
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
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
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
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
}
