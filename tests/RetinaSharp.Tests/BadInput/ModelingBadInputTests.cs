// RetinaNet given hostile input: a 5000x1 image used to crash in libtorch (the resize made its height 0), a NaN image
// silently gave 0 detections, uint8 pixels were quietly rescaled, a checkpoint cut after 20 bytes threw a bare
// EndOfStreamException, a folder "did not exist", and .pth weights loaded as ResNet-18 under options asking for ResNet-50.
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.BadInput;

public sealed class ModelingBadInputTests : IDisposable
{
    private readonly Scratch _s = new();

    public void Dispose() => _s.Dispose();

    private static RetinaNet Tiny(int numClasses = 2) =>
        new(new RetinaNetOptions(numClasses) { Backbone = ResNetDepth.ResNet18, FpnChannels = 16, MinSize = 64, MaxSize = 64 });

    [Fact]
    public void Image_whose_resized_height_rounds_to_zero_is_detected_not_a_libtorch_crash()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny();
        model.eval();
        // scale = min(64 / 1, 64 / 5000) = 0.0128 (float32 0.012799999...): height floor(0.0128) = 0 is raised to 1, width
        // floor(63.99999...) = 63, as torchvision 0.14 computes it (it then fails: "output (H: 0, W: 63)").
        Assert.Equal((1L, 63L), model.Transform.ResizedSize(1, 5000));
        Assert.Equal((63L, 1L), model.Transform.ResizedSize(5000, 1));
        var dets = model.Detect([zeros(3, 1, 5000), zeros(3, 5000, 1)]);
        Assert.Equal(2, dets.Count);
        var b = dets[0].Boxes;
        Assert.Equal(4, b.shape[1]);
        if (b.shape[0] > 0)
        {
            Assert.True(b[.., 2].le(5000f).all().item<bool>());
            Assert.True(b[.., 3].le(1f).all().item<bool>());
        }
    }

    [Fact]
    public void Image_with_NaN_or_Inf_is_named_in_Detect_and_ComputeLosses()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny();
        model.eval();
        var e = Assert.Throws<ArgumentException>(() => model.Detect([rand(3, 32, 32), full(3, 32, 32, float.NaN)]));
        Assert.Contains("images[1]", e.Message);
        Assert.Contains("NaN or Inf", e.Message);
        Assert.Equal("images", e.ParamName);
        var inf = rand(3, 32, 32);
        inf[1, 5, 7] = tensor(float.PositiveInfinity);
        Assert.Contains("images[0]: contains NaN or Inf", Assert.Throws<ArgumentException>(() => model.Detect([inf])).Message);
        model.train();
        var l = Assert.Throws<ArgumentException>(() => model.ComputeLosses([full(3, 32, 32, float.NaN)], [DetectionTarget.Empty()]));
        Assert.Contains("images[0]: contains NaN or Inf", l.Message);
    }

    [Fact]
    public void Uint8_image_is_rejected_naming_its_dtype_and_float64_equals_float32()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny();
        model.eval();
        var bytes = randint(0, 256, [3, 40, 48]).to(ScalarType.Byte);
        var e = Assert.Throws<ArgumentException>(() => model.Detect([rand(3, 40, 48), bytes]));
        Assert.Contains("images[1]", e.Message);
        Assert.Contains("dtype Byte", e.Message);
        Assert.Contains("/ 255", e.Message);
        var i32 = Assert.Throws<ArgumentException>(() => model.Detect([bytes.to(ScalarType.Int32)]));
        Assert.Contains("images[0]: dtype Int32", i32.Message);

        var img = rand(3, 40, 48);
        var f32 = model.Detect([img])[0];
        var f64 = model.Detect([img.to(ScalarType.Float64)])[0];
        Assert.Equal(ScalarType.Float32, f64.Boxes.dtype);
        Assert.Equal(f32.Scores.shape, f64.Scores.shape);
        Assert.True(f32.Scores.allclose(f64.Scores, 1e-5, 1e-6));
        Assert.True(f32.Boxes.allclose(f64.Boxes, 1e-4, 1e-4));
    }

    [Fact]
    public void Checkpoint_cut_after_20_bytes_or_inside_its_weights_is_named_truncated()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny();
        string full = _s["model.ckpt"];
        RetinaNetCheckpoint.Save(model, full);
        var bytes = File.ReadAllBytes(full);
        string cut = _s["cut.ckpt"];
        File.WriteAllBytes(cut, bytes[..20]);
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(cut));
        Assert.Equal(cut, e.File);
        Assert.Contains("truncated or corrupt checkpoint", e.Message);
        Assert.Contains("has 20 bytes", e.Message);
        Assert.Contains("options", e.Message);

        File.WriteAllBytes(cut, bytes[..30]);   // inside the options JSON
        Assert.Contains("has 30 bytes and ends inside its options", Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(cut)).Message);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var w = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(cut));
        Assert.StartsWith(cut, w.Message);
    }

    [Fact]
    public void Folder_as_checkpoint_is_said_to_be_a_folder()
    {
        var e = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(_s.Dir));
        Assert.Equal(_s.Dir, e.File);
        Assert.Contains("is a folder, expected a checkpoint file", e.Message);
    }

    /// <summary>One .pth file (PyBridge pickling is slow) loaded under options that disagree with it in each setting.</summary>
    [Fact]
    public void Pth_loaded_with_options_of_another_architecture_names_the_setting_and_both_values()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(numClasses: 3);
        string path = _s["r18.pth"];
        RetinaNetCheckpoint.SaveTorchvisionPth(model, path);

        var r50 = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path, new RetinaNetOptions(3)));
        Assert.Equal(path, r50.File);
        Assert.Equal("Backbone", r50.Field);
        Assert.Contains("Backbone: the weights are a ResNet18 but the options ask for ResNet50", r50.Message);

        var gn = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path,
            new RetinaNetOptions(3) { Backbone = ResNetDepth.ResNet18, HeadGroupNorm = true, FpnChannels = 32 }));
        Assert.Contains("HeadGroupNorm: the weights' head has no GroupNorm (HeadGroupNorm = False) but the options ask for HeadGroupNorm = True", gn.Message);

        var both = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path,
            new RetinaNetOptions(3) { Backbone = ResNetDepth.ResNet34, P6FromC5 = true }));
        Assert.Null(both.Field);
        Assert.Contains("ResNet18 but the options ask for ResNet34", both.Message);
        Assert.Contains("P6FromC5: the weights compute P6 from P5 (P6FromC5 = False) but the options ask for P6FromC5 = True", both.Message);

        var k = Assert.Throws<DataFormatException>(() => RetinaNetCheckpoint.Load(path, new RetinaNetOptions(5) { Backbone = ResNetDepth.ResNet18 }));
        Assert.Contains("the weights have 3 classes", k.Message);
        Assert.Contains("ask for 5", k.Message);

        using var ok = RetinaNetCheckpoint.Load(path, new RetinaNetOptions(3) { Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64 });
        Assert.Equal(16, ok.Options.FpnChannels);
    }
}
