// How long one training step takes on this machine: a throw-away model trained for a few real batches (the first
// step is a warm-up and not counted). `retina demo` and `retina ablate` turn a time budget into a fixed number of
// iterations with it, so the run itself is a function of its iteration count, not of the machine's speed.
using System.Diagnostics;
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using TorchSharp;

namespace RetinaSharp.Training;

/// <summary>Measures the wall time of a RetinaNet training step.</summary>
public static class StepTiming
{
    /// <summary>
    /// Seconds per training step of a RetinaNet built from <paramref name="modelOptions"/> (random weights: the speed does not
    /// depend on them) on batches of <paramref name="batchSize"/> images of <paramref name="train"/>: forward, loss, backward
    /// (<see cref="TorchRuntime.Backward"/>), gradient norm and an SGD step, each inside its own dispose scope. The median of
    /// the steps after a warm-up of up to three (while the native heap grows, the first steps run up to twice as slow),
    /// or the only step when one was taken.
    /// </summary>
    /// <param name="modelOptions">The model to time.</param>
    /// <param name="train">The images (only the first <paramref name="steps"/> batches of a seeded shuffle are read).</param>
    /// <param name="batchSize">Images per step (&gt; 0).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <param name="steps">Steps to take, the warm-up included (&gt;= 1). Default 12.</param>
    /// <returns>Seconds per step (at least 1e-3).</returns>
    /// <exception cref="ArgumentException">A count is not positive or the dataset has no images.</exception>
    public static double SecondsPerStep(RetinaNetOptions modelOptions, DetectionDataset train, int batchSize, int seed, int steps = 12)
    {
        ArgumentNullException.ThrowIfNull(modelOptions);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        using var scope = torch.NewDisposeScope();
        using var probe = new RetinaNet(modelOptions);
        probe.train();
        var trainable = new RetinaNetTrainable(probe);
        var optimizer = TrainingOptimizer.Create(OptimizerKind.Sgd, probe.named_parameters().Select(p => (p.name, (torch.Tensor)p.parameter)), 1e-4);
        using var loader = new DetectionDataLoader(train, batchSize, shuffle: true, seed: seed + 1, dropLast: train.Images.Count >= batchSize);
        var times = new List<double>();
        foreach (var batch in new DataLoaderTrainingData(loader).ReadEpoch(0, 0).Take(steps))
        {
            var sw = Stopwatch.StartNew();
            using (var step = torch.NewDisposeScope())
            {
                var losses = trainable.ComputeLosses(batch);
                TorchRuntime.Backward(losses[0].Value.add(losses[1].Value, TorchScalars.One));
                optimizer.GradientNorm(10);
                optimizer.Step(1e-5);
                optimizer.ZeroGrad();
            }
            batch.Dispose();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        // The first steps also grow the native heap (page faults on fresh memory), so they run up to twice as slow as the
        // rest: up to three are a warm-up, and the median of the others is the step time.
        var steady = times.Skip(Math.Min(3, times.Count - 1)).Order().ToList();
        double perStep = steady.Count == 0 ? 1 : steady[steady.Count / 2];
        return Math.Max(1e-3, perStep);
    }
}
