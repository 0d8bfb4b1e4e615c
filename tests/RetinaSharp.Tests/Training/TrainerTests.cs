using RetinaSharp.IO;
using RetinaSharp.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Training;

[Collection(TorchRngCollection.Name)]
public class TrainerTests
{
    private static TrainingOptions Options(long iterations) => new()
    {
        Iterations = iterations, BaseLearningRate = 0.05, WarmupIterations = 3, CheckpointEvery = 4, LogEvery = 1, Seed = 11,
    };

    private static Dictionary<string, byte[]> Weights(TinyModel m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous().bytes.ToArray());

    private sealed class CrashException : Exception;

    [Fact]
    public void Resume_after_a_crash_gives_bit_identical_weights()
    {
        using var scope = NewDisposeScope();
        // Uninterrupted: 14 iterations over 3 epochs of 5 batches (epoch boundary crossed after the crash).
        string a = TempDir.Create();
        var full = new TinyModel(1);
        var r1 = new Trainer(full, new TinyData(10, 2, 3), Options(14), a).Run();
        Assert.Equal(TrainingStatus.Completed, r1.Status);

        // Crash (no chance to save, like kill -9) after iteration 6: the last checkpoint is iteration 4.
        string b = TempDir.Create();
        var crashed = new TinyModel(1);
        var t2 = new Trainer(crashed, new TinyData(10, 2, 3), Options(14), b);
        t2.Progress = p => { if (p.Iteration == 6) throw new CrashException(); };
        Assert.Throws<CrashException>(() => t2.Run());
        using (var st = TrainingCheckpoint.Load(Path.Combine(b, TrainingCheckpoint.FileName)))
            Assert.Equal(4, st.Iteration);

        // A new process: a model with other initial weights and another generator state, resumed.
        manual_seed(999);
        var resumed = new TinyModel(42);
        var r3 = new Trainer(resumed, new TinyData(10, 2, 3), Options(14), b).Run(resume: true);
        Assert.Equal(TrainingStatus.Completed, r3.Status);
        Assert.Equal(14, r3.Iteration);

        var w1 = Weights(full);
        var w3 = Weights(resumed);
        Assert.Equal(w1.Keys, w3.Keys);
        foreach (var k in w1.Keys) Assert.Equal(w1[k], w3[k]);
        // The logs agree too (losses of every step).
        Assert.Equal(r1.Log.Steps.Select(s => s.Loss), r3.Log.Steps.Select(s => s.Loss));
    }

    [Fact]
    public void A_libtorch_error_in_a_step_saves_a_checkpoint_and_resume_finishes_identically()
    {
        // Issue 17: an ExternalException from libtorch during a step ends the run like Ctrl-C, not like a crash. The
        // forward pass of the failed step has drawn from the generator (dropout); the checkpoint rewinds it, so the
        // resumed run repeats that step exactly.
        using var scope = NewDisposeScope();
        var opts = Options(9) with { Optimizer = OptimizerKind.AdamW, BaseLearningRate = 0.01, CheckpointEvery = 100 };
        string a = TempDir.Create();
        var full = new TinyModel(5);
        new Trainer(full, new TinyData(8, 2, 1), opts, a).Run();

        string b = TempDir.Create();
        var m = new TinyModel(5) { FailNativeOnCall = 6 };
        var r = new Trainer(m, new TinyData(8, 2, 1), opts, b).Run();
        Assert.Equal(TrainingStatus.NativeFailure, r.Status);
        Assert.Equal(5, r.Iteration);
        string checkpoint = Path.Combine(b, "checkpoint.rstrain");
        Assert.Equal("libtorch failed during iteration 6 of 9 (Expected false to be true, but got false.); the weights were not changed by it " +
                     $"and a checkpoint of iteration 5 was saved to {checkpoint}.", r.Message);
        using (var st = TrainingCheckpoint.Load(checkpoint))
            Assert.Equal(5, st.Iteration);
        Assert.True(File.Exists(Path.Combine(b, "log.csv")));

        var m2 = new TinyModel(6);
        var r2 = new Trainer(m2, new TinyData(8, 2, 1), opts, b).Run(resume: true);
        Assert.Equal(TrainingStatus.Completed, r2.Status);
        var w1 = Weights(full);
        var w2 = Weights(m2);
        foreach (var k in w1.Keys) Assert.Equal(w1[k], w2[k]);
    }

    [Fact]
    public void Cancellation_saves_a_checkpoint_and_resume_finishes_identically()
    {
        using var scope = NewDisposeScope();
        string a = TempDir.Create();
        var full = new TinyModel(5);
        var opts = Options(9) with { Optimizer = OptimizerKind.AdamW, BaseLearningRate = 0.01, GradientClipNorm = 0.5 };
        new Trainer(full, new TinyData(8, 2, 1), opts, a).Run();

        string b = TempDir.Create();
        var m = new TinyModel(5);
        using var cts = new CancellationTokenSource();
        var t = new Trainer(m, new TinyData(8, 2, 1), opts, b) { Progress = p => { if (p.Iteration == 6) cts.Cancel(); } };
        var r = t.Run(cancellation: cts.Token);
        Assert.Equal(TrainingStatus.Interrupted, r.Status);
        Assert.Equal(6, r.Iteration);
        // The library says where the checkpoint is; the CLI adds the resume command once (it knows the command line).
        Assert.Equal($"Interrupted at iteration 6 of 9; checkpoint saved to {Path.Combine(b, "checkpoint.rstrain")}.", r.Message);

        var m2 = new TinyModel(6);
        var r2 = new Trainer(m2, new TinyData(8, 2, 1), opts, b).Run(resume: true);
        Assert.Equal(TrainingStatus.Completed, r2.Status);
        var w1 = Weights(full);
        var w2 = Weights(m2);
        foreach (var k in w1.Keys) Assert.Equal(w1[k], w2[k]);
    }

    [Fact]
    public void A_second_run_into_the_same_folder_needs_resume_and_the_same_options()
    {
        using var scope = NewDisposeScope();
        string d = TempDir.Create();
        new Trainer(new TinyModel(1), new TinyData(4, 2, 1), Options(2), d).Run();
        var e = Assert.Throws<ArgumentException>(() => new Trainer(new TinyModel(1), new TinyData(4, 2, 1), Options(2), d).Run());
        Assert.Contains("--resume", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => new Trainer(new TinyModel(1), new TinyData(4, 2, 1), Options(3), d).Run(resume: true));
        Assert.Contains("other training options", e2.Message);
        // One "name: checkpoint X, now Y" per differing option, not the two option blobs.
        Assert.Contains("Iterations: checkpoint 2, now 3", e2.Message);
        Assert.DoesNotContain("BaseLearningRate", e2.Message);
    }

    [Fact]
    public void Non_finite_loss_skips_the_step_and_leaves_weights_unchanged()
    {
        using var scope = NewDisposeScope();
        string d = TempDir.Create();
        var m = new TinyModel(3);
        new Trainer(m, new TinyData(4, 2, 1), Options(2), d).Run();
        var before = Weights(m);

        // Continue the same run for more iterations, now with a poisoned loss: every step is skipped.
        var messages = new List<string>();
        m.PoisonLoss = true;
        string d2 = TempDir.Create();
        var t = new Trainer(m, new TinyData(4, 2, 1), Options(10) with { MaxConsecutiveBadSteps = 3 }, d2) { Message = messages.Add };
        var r = t.Run();
        Assert.Equal(TrainingStatus.Diverged, r.Status);
        Assert.Equal(3, r.Iteration);
        Assert.Contains("3 steps in a row", r.Message);
        Assert.Equal(3, r.Log.Steps.Count(s => s.Skipped));
        // The skipped steps name their images.
        Assert.Contains(messages, s => s.Contains("non-finite loss") && s.Contains("Images:"));
        var after = Weights(m);
        foreach (var k in before.Keys) Assert.Equal(before[k], after[k]);
        // No checkpoint was written with NaN (none at all: the first was due at iteration 4).
        Assert.False(File.Exists(Path.Combine(d2, TrainingCheckpoint.FileName)));
    }

    [Fact]
    public void A_bad_step_between_good_ones_is_skipped_and_training_continues()
    {
        using var scope = NewDisposeScope();
        var m = new TinyModel(3);
        int n = 0;
        var t = new Trainer(m, new TinyData(8, 2, 1), Options(8), TempDir.Create());
        t.Progress = p => { n++; m.PoisonLoss = n == 3; };
        var r = t.Run();
        Assert.Equal(TrainingStatus.Completed, r.Status);
        Assert.Single(r.Log.Steps, s => s.Skipped);
        using var st = TrainingCheckpoint.Load(r.CheckpointPath);
        Assert.Equal(7, st.OptimizerStepCount);
        foreach (var v in st.ModelState.Values) Assert.True(isfinite(v).all().item<bool>());
    }

    [Fact]
    public void Loss_falls_and_the_run_folder_has_its_files()
    {
        using var scope = NewDisposeScope();
        string d = TempDir.Create();
        var r = new Trainer(new TinyModel(2), new TinyData(8, 4, 1), Options(40) with { BaseLearningRate = 0.02, LogEvery = 5 }, d) { Validate = it => new Dictionary<string, double> { ["AP"] = it / 100.0 } }.Run();
        Assert.True(r.Log.Steps[^1].Loss < r.Log.Steps[0].Loss / 2, $"{r.Log.Steps[0].Loss} -> {r.Log.Steps[^1].Loss}");
        Assert.True(File.Exists(Path.Combine(d, "loss_curve.png")));
        var csv = File.ReadAllLines(Path.Combine(d, "log.csv"));
        Assert.Equal("iteration,epoch,lr,loss_step,mse_step,l1_step,grad_norm,images_per_s,elapsed_s,skipped", csv[0]);
        Assert.Equal(1 + 9, csv.Length); // iteration 1, then 5, 10, ..., 40
        Assert.Equal(2, File.ReadAllLines(Path.Combine(d, "validation.csv")).Length);
    }

    [Fact]
    public void Trimming_the_native_heap_never_changes_the_numbers()
    {
        using var scope = NewDisposeScope();
        var plain = new TinyModel(4);
        var r1 = new Trainer(plain, new TinyData(8, 2, 2), Options(6), TempDir.Create()).Run();
        var trimmed = new TinyModel(4);
        var t = new Trainer(trimmed, new TinyData(8, 2, 2), Options(6), TempDir.Create()) { TrimNativeHeapEvery = 1 };
        var r2 = t.Run();
        Assert.Equal(r1.Log.Steps.Select(s => s.Loss), r2.Log.Steps.Select(s => s.Loss));
        var w1 = Weights(plain);
        var w2 = Weights(trimmed);
        foreach (var k in w1.Keys) Assert.Equal(w1[k], w2[k]);
        // On Linux with glibc the call is available; elsewhere it is a no-op returning false.
        NativeHeap.Trim();
        Assert.Throws<ArgumentOutOfRangeException>(() => t.TrimNativeHeapEvery = 0);
        t.TrimNativeHeapEvery = null;
        Assert.Null(t.TrimNativeHeapEvery);
    }
}
