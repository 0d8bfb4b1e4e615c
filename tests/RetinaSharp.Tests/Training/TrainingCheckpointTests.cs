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

    private static Tensor disposed()
    {
        var t = ones(2);
        t.Dispose();
        return t;
    }
}
