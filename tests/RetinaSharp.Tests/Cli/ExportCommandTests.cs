// `retina export --torchvision`: writes the .pth and the JSON beside it; refuses what torchvision cannot hold, naming the option.
using System.CommandLine;
using System.Text.Json;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Modeling;

namespace RetinaSharp.Tests.Cli;

public sealed class ExportCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Invoke(new RootCommand { ExportCommand.Create() }, args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void WritesPthAndJsonAndRefusesTheCntkBackbone()
    {
        string dir = Directory.CreateTempSubdirectory("retinasharp-export-cli-").FullName;
        try
        {
            string good = Path.Combine(dir, "good.rsnet"), cntk = Path.Combine(dir, "cntk.rsnet");
            using (var m = new RetinaNet(new RetinaNetOptions(4) { Backbone = ResNetDepth.ResNet18, FpnChannels = 32, MinSize = 64, MaxSize = 96 }))
                RetinaNetCheckpoint.Save(m, good);
            using (var m = new RetinaNet(new RetinaNetOptions(4) { Backbone = ResNetDepth.ResNet18Cntk, FpnChannels = 32 }))
                RetinaNetCheckpoint.Save(m, cntk);

            var (code, output, _) = Run("export", "--weights", good, "--torchvision", Path.Combine(dir, "tv.pth"));
            Assert.Equal(CliApp.Ok, code);
            Assert.Contains("tv.json", output);
            var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tv.json"))).RootElement;
            Assert.Equal(4, json.GetProperty("num_classes").GetInt32());
            Assert.Equal(64, json.GetProperty("min_size").GetInt32());
            Assert.Equal(96, json.GetProperty("max_size").GetInt32());
            Assert.Equal(32, json.GetProperty("fpn_out_channels").GetInt32());
            Assert.Equal(32, json.GetProperty("anchor_sizes")[0][0].GetInt32());
            Assert.Equal(40, json.GetProperty("anchor_sizes")[0][1].GetInt32()); // int(32 * 2^(1/3))
            Assert.True(new FileInfo(Path.Combine(dir, "tv.pth")).Length > 1_000_000);

            var (code2, _, err) = Run("export", "--weights", cntk, "--torchvision", Path.Combine(dir, "cntk.pth"));
            Assert.Equal(CliApp.BadInput, code2);
            Assert.Contains("Backbone = ResNet18Cntk", err);
            Assert.False(File.Exists(Path.Combine(dir, "cntk.pth")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
