using RetinaSharp.IO;
using RetinaSharp.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Training;

[Collection(TorchRngCollection.Name)]
public class TrainingCheckpointTests
{
    private static TrainingState State(long iteration, Tensor w) =>
        new(iteration, iteration, 0, "{\"model\":1}", "{}", "", get_rng_state(),
            new Dictionary<string, Tensor> { ["w"] = w }, new Dictionary<string, Tensor> { ["momentum/w"] = w * 2 });

    [Fact]
    public void Round_trip_is_bit_exact()
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(TempDir.Create(), TrainingCheckpoint.FileName);
        var w = tensor(new float[] { 1.1f, -2.5e-30f, float.Epsilon, 3f }).reshape(2, 2);
        TrainingCheckpoint.Save(path, State(7, w));
        using var s = TrainingCheckpoint.Load(path);
        Assert.Equal(7, s.Iteration);
        Assert.Equal("{\"model\":1}", s.ConfigurationJson);
        Assert.Equal(w.bytes.ToArray(), s.ModelState["w"].bytes.ToArray());
        Assert.Equal([2L, 2L], s.ModelState["w"].shape);
        Assert.Equal((w * 2).bytes.ToArray(), s.OptimizerState["momentum/w"].bytes.ToArray());
    }

    [Fact]
    public void An_interrupted_write_leaves_the_previous_checkpoint_intact()
    {
        using var scope = NewDisposeScope();
        string dir = TempDir.Create();
        string path = Path.Combine(dir, TrainingCheckpoint.FileName);
        TrainingCheckpoint.Save(path, State(1, ones(3)));
        // The second write fails half-way (a tensor that cannot be read), after the header was written.
        var broken = ones(3);
        var state = State(2, broken);
        var bad = state with { OptimizerState = new Dictionary<string, Tensor> { ["x"] = ones(1), ["y"] = disposed() } };
        Assert.ThrowsAny<Exception>(() => TrainingCheckpoint.Save(path, bad));
        using var s = TrainingCheckpoint.Load(path);
        Assert.Equal(1, s.Iteration);
        Assert.Single(Directory.GetFiles(dir)); // no temporary file left behind
    }

    [Fact]
    public void A_checkpoint_with_NaN_weights_is_never_written()
    {
        using var scope = NewDisposeScope();
        string dir = TempDir.Create();
        string path = Path.Combine(dir, TrainingCheckpoint.FileName);
        TrainingCheckpoint.Save(path, State(1, ones(2)));
        var e = Assert.Throws<InvalidOperationException>(() => TrainingCheckpoint.Save(path, State(2, tensor(new[] { 1f, float.NaN }))));
        Assert.Contains("'w'", e.Message);
        using var s = TrainingCheckpoint.Load(path);
        Assert.Equal(1, s.Iteration);
    }

    [Fact]
    public void Truncated_and_foreign_files_are_reported_by_name()
    {
        using var scope = NewDisposeScope();
        string dir = TempDir.Create();
        string path = Path.Combine(dir, TrainingCheckpoint.FileName);
        TrainingCheckpoint.Save(path, State(1, ones(100)));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<DataFormatException>(() => TrainingCheckpoint.Load(path));
        Assert.Contains("truncated", e.Message);
        Assert.Equal(path, e.File);
        File.WriteAllText(path, "hello world, not a checkpoint");
        Assert.Contains("not a RetinaSharp training checkpoint", Assert.Throws<DataFormatException>(() => TrainingCheckpoint.Load(path)).Message);
    }

    [Fact]
    public void Extra_state_round_trips_bit_exactly()
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(TempDir.Create(), TrainingCheckpoint.FileName);
        double awkward = 0.1 + 0.2; // not representable in short decimal form
        var extra = new Dictionary<string, double> { ["running_loss_normalizer"] = awkward, ["tiny"] = double.Epsilon, ["neg"] = -1e300 };
        TrainingCheckpoint.Save(path, State(3, ones(2)) with { ExtraState = extra });
        using var s = TrainingCheckpoint.Load(path);
        Assert.Equal(3, s.ExtraStateOrEmpty.Count);
        foreach (var (k, v) in extra)
            Assert.Equal(BitConverter.DoubleToInt64Bits(v), BitConverter.DoubleToInt64Bits(s.ExtraStateOrEmpty[k]));
    }

    [Fact]
    public void A_version_1_checkpoint_without_extra_state_still_loads()
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(TempDir.Create(), TrainingCheckpoint.FileName);
        var w = tensor(new float[] { 1.5f, -2f });
        TrainingCheckpoint.Save(path, State(5, w));
        // Version 1 layout = version 2 without the extra-state count (an int32 0 just before the "END" string,
        // which BinaryWriter writes as 1 length byte + 3 bytes).
        var v2 = File.ReadAllBytes(path);
        Assert.Equal(2, BitConverter.ToInt32(v2, 8));
        Assert.Equal(0, BitConverter.ToInt32(v2, v2.Length - 8));
        var v1 = v2[..^8].Concat(v2[^4..]).ToArray();
        BitConverter.GetBytes(1).CopyTo(v1, 8);
        File.WriteAllBytes(path, v1);

        using var s = TrainingCheckpoint.Load(path);
        Assert.Equal(5, s.Iteration);
        Assert.Empty(s.ExtraStateOrEmpty);
        Assert.Equal(w.bytes.ToArray(), s.ModelState["w"].bytes.ToArray());

        // The trainer hands the empty state to the model, which keeps its initial normaliser.
        var model = new RetinaSharp.Modeling.RetinaNet(new RetinaSharp.Modeling.RetinaNetOptions(2)
        { Backbone = RetinaSharp.Modeling.ResNetDepth.ResNet18, FpnChannels = 8, MinSize = 32, MaxSize = 32 });
        ITrainableModel trainable = new RetinaNetTrainable(model);
        trainable.SetExtraState(s.ExtraStateOrEmpty);
        Assert.Equal(RetinaSharp.Modeling.RetinaNet.InitialRunningLossNormalizer, model.RunningLossNormalizer);
        trainable.SetExtraState(new Dictionary<string, double> { [RetinaNetTrainable.RunningLossNormalizerKey] = 42.25 });
        Assert.Equal(42.25, model.RunningLossNormalizer);
        Assert.Throws<ArgumentException>(() => trainable.SetExtraState(new Dictionary<string, double> { [RetinaNetTrainable.RunningLossNormalizerKey] = -1 }));
    }

    [Fact]
    public void A_model_without_extra_state_saves_none()
    {
        using var scope = NewDisposeScope();
        ITrainableModel tiny = new TinyModel(1);
        Assert.Empty(tiny.GetExtraState());
        tiny.SetExtraState(new Dictionary<string, double> { ["anything"] = 1 }); // ignored
    }

    private static Tensor disposed()
    {
        var t = ones(2);
        t.Dispose();
        return t;
    }
}
