// Output destinations a user gets wrong: a parent that is a file ("The file '/a' already exists" said nothing about the
// destination), a folder given where a file is expected, and `data check --repair --out DIR`.
using RetinaSharp.IO;

namespace RetinaSharp.Tests.BadInput;

public sealed class OutputBadInputTests : IDisposable
{
    private readonly Scratch _s = new();

    public void Dispose() => _s.Dispose();

    [Fact]
    public void Atomic_write_under_a_file_names_the_destination_and_the_file()
    {
        string file = _s.Write("taken", "keep");
        string dest = Path.Combine(file, "out.json");
        var e = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(dest, "{}"));
        Assert.Contains(dest, e.Message);
        Assert.Contains($"'{file}' is a file", e.Message);
        Assert.Equal("keep", File.ReadAllText(file));
    }

    [Fact]
    public void Atomic_write_that_fails_midway_leaves_the_old_file_and_no_temporary()
    {
        string dest = _s.Write("out.json", "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(dest, s => { s.WriteByte(1); throw new InvalidOperationException("boom"); }));
        Assert.Equal("old", File.ReadAllText(dest));
        Assert.Single(Directory.GetFiles(_s.Dir));
    }

    [Fact]
    public void Atomic_write_refuses_a_named_pipe_or_device_and_leaves_it_in_place()
    {
        // Renaming the new file over a FIFO or a device node would replace it (as root, /dev/full became a 17 MB file).
        string fifo = Path.Combine(_s.Dir, "model.onnx");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", [fifo])) mk!.WaitForExit();
        Assert.Equal("named pipe", AtomicFile.SpecialFileKind(fifo));
        var e = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(fifo, "{}"));
        Assert.Contains(fifo, e.Message);
        Assert.Contains("named pipe, not a regular file", e.Message);
        Assert.Equal("named pipe", AtomicFile.SpecialFileKind(fifo));
        Assert.Equal("character device", AtomicFile.SpecialFileKind("/dev/null"));
        Assert.Null(AtomicFile.SpecialFileKind(_s.Write("plain.txt", "x")));
        Assert.Null(AtomicFile.SpecialFileKind(Path.Combine(_s.Dir, "missing.txt")));
    }

    [Fact]
    public void Writable_folder_check_refuses_a_file_and_creates_a_missing_folder()
    {
        string file = _s.Write("taken", "keep");
        var e = Assert.Throws<IOException>(() => AtomicFile.EnsureWritableFolder(file));
        Assert.Contains(file, e.Message);
        AtomicFile.EnsureWritableFolder(_s["new/deeper"]);
        Assert.True(Directory.Exists(_s["new/deeper"]));
        Assert.Empty(Directory.GetFileSystemEntries(_s["new/deeper"]));
    }

    [Fact]
    public void Repair_out_that_is_a_folder_is_bad_input_naming_the_option()
    {
        string csv = _s.Write("data.csv", "a.png,1,1,5,5,cat\n");
        RetinaSharp.Data.ImageIO.SavePng(new RetinaSharp.Data.RgbImage(new byte[8 * 8 * 3], 8, 8), _s["a.png"]);
        Directory.CreateDirectory(_s["outdir"]);
        Retina.AssertBadInput(Retina.Run("data", "check", csv, "--repair", "--out", _s["outdir"]), "--out", _s["outdir"], "is a folder");
    }
}
