// `retina eval --data --weights` with a hostile checkpoint or image: a checkpoint cut inside its header used to print
// only "Unable to read beyond the end of the stream." (no file), a folder as --weights said "does not exist", and a
// 5000x1 image crashed the process with a libtorch stack trace (the resize made its height 0).
using RetinaSharp.Cli;
using RetinaSharp.Data;
using RetinaSharp.Modeling;

namespace RetinaSharp.Tests.BadInput;

public sealed class EvalModelBadInputTests : IDisposable
{
    private readonly Scratch _s = new();
    private readonly string _data, _weights;

    public EvalModelBadInputTests()
    {
        ImageIO.SavePng(new RgbImage(new byte[48 * 32 * 3], 48, 32), _s["ok.png"]);
        ImageIO.SavePng(new RgbImage(new byte[5000 * 3], 5000, 1), _s["wide.png"]);
        _data = _s["instances.json"];
        CocoJson.WriteInstances(_data, new CocoInstances(
            [new CocoImage(1, "ok.png", 48, 32), new CocoImage(2, "wide.png", 5000, 1)],
            [new CocoAnnotation(1, 1, 1, 2, 2, 10, 10, 100, false)],
            [new CocoCategory(1, "a"), new CocoCategory(2, "b")]));
        _weights = _s["model.ckpt"];
        using var model = new RetinaNet(new RetinaNetOptions(2) { Backbone = ResNetDepth.ResNet18, FpnChannels = 16, MinSize = 64, MaxSize = 64 });
        RetinaNetCheckpoint.Save(model, _weights);
    }

    public void Dispose() => _s.Dispose();

    [Fact]
    public void Checkpoint_cut_inside_its_header_names_the_file()
    {
        string cut = _s["cut.ckpt"];
        File.WriteAllBytes(cut, File.ReadAllBytes(_weights)[..20]);
        Retina.AssertBadInput(Retina.Run("eval", "--data", _data, "--weights", cut), cut, "truncated");
    }

    [Fact]
    public void Folder_as_weights_is_bad_input()
    {
        Retina.AssertBadInput(Retina.Run("eval", "--data", _data, "--weights", _s.Dir), _s.Dir, "is a folder");
    }

    [Fact]
    public void Image_the_model_cannot_resize_is_skipped_not_a_crash()
    {
        var (code, stdout, stderr) = Retina.Run("eval", "--data", _data, "--weights", _weights, "--batch-size", "2", "--score-threshold", "0.5");
        Assert.DoesNotContain("   at ", stderr);
        Assert.Contains("Average Precision", stdout);
        // Skipped (exit 1, naming the file and its size) until the resize handles extreme aspect ratios; then evaluated (exit 0).
        if (code == CliApp.Failed) Assert.Contains("wide.png: image id 2: the model cannot process this 5000x1 image", stderr);
        else Assert.Equal(CliApp.Ok, code);
    }
}
