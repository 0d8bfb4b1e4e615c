// Fixtures: scripts/make_pth_fixtures.py (Debian's torch 1.13): small files in the layouts torch.save writes beyond one
// contiguous storage per tensor, and the files that are not state dicts, with the tensors' values in layouts.json.
using System.Text.Json;
using RetinaSharp.IO;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Foundation;

public sealed class TorchSaveReaderTests
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "pth");

    private static void AssertLayouts(TorchSaveReader.StateDict sd)
    {
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "layouts.json"))).RootElement.GetProperty("tensors");
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(), sd.Tensors.Keys.Order());
        foreach (var p in expected.EnumerateObject())
        {
            var t = sd.Tensors[p.Name];
            Assert.Equal(p.Value.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()), t.shape);
            string dtype = p.Value.GetProperty("dtype").GetString()!;
            Assert.Equal(dtype switch { "float32" => ScalarType.Float32, "float16" => ScalarType.Float16, "bfloat16" => ScalarType.BFloat16, "int64" => ScalarType.Int64, "bool" => ScalarType.Bool, _ => throw new InvalidDataException(dtype) }, t.dtype);
            Assert.True(t.is_contiguous(), $"{p.Name} should come back contiguous");
            var want = p.Value.GetProperty("values").EnumerateArray().Select(v => v.ValueKind switch
            {
                JsonValueKind.True => 1.0, JsonValueKind.False => 0.0, _ => v.GetDouble(),
            }).ToArray();
            var got = t.numel() == 0 ? [] : t.to_type(ScalarType.Float64).reshape(-1).data<double>().ToArray();
            Assert.Equal(want, got); // exact: the values are the file's (float16 / bfloat16 values are exact in float64 too)
        }
    }

    [Theory]
    [InlineData("layouts_plain.pth")]     // torch.save's default pickle protocol 2
    [InlineData("layouts_protocol4.pth")] // frames, memoize, short strings, stack globals
    public void ChannelsLastSharedOverlappingExpandedAndScalarTensorsReadAsSaved(string file)
    {
        using var scope = NewDisposeScope();
        var sd = TorchSaveReader.ReadStateDict(Path.Combine(Dir, file));
        Assert.Equal("the state dict", sd.Source);
        AssertLayouts(sd);
    }

    [Fact]
    public void ReferenceScriptCheckpointGivesItsModelWithoutTheDdpPrefix()
    {
        using var scope = NewDisposeScope();
        var sd = TorchSaveReader.ReadStateDict(Path.Combine(Dir, "layouts_checkpoint.pth"));
        Assert.Equal("checkpoint['model'] without DistributedDataParallel's 'module.' prefix", sd.Source);
        AssertLayouts(sd);
    }

    [Theory]
    [InlineData("layouts_legacy.pth", "legacy format (PyTorch < 1.6, or _use_new_zipfile_serialization=False)")]
    [InlineData("layouts_module.pth", "holds a whole pickled module (torch.nn.modules.linear.Linear), not a state dict")]
    [InlineData("layouts_torchscript.pt", "is a TorchScript module (torch.jit.save), not a state dict")]
    [InlineData("layouts.json", "not a PyTorch .pth file")]
    public void FilesThatAreNotStateDictsAreNamed(string file, string message)
    {
        string path = Path.Combine(Dir, file);
        var e = Assert.Throws<DataFormatException>(() => TorchSaveReader.ReadStateDict(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TruncatedFileIsBadInputNamingTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"retinasharp-truncated-{Guid.NewGuid():N}.pth");
        try
        {
            var bytes = File.ReadAllBytes(Path.Combine(Dir, "layouts_plain.pth"));
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            var e = Assert.Throws<DataFormatException>(() => TorchSaveReader.ReadStateDict(path));
            Assert.StartsWith(path, e.Message);
        }
        finally { File.Delete(path); }
    }
}
