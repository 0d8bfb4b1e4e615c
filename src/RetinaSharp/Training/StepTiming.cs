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
    /// (<see cref="TorchRuntime.Backward"/>), gradient norm and an SGD step, each inside its own dispose scope. The mean over
    /// the steps after the first (a warm-up), or the first when only one was taken.
    /// </summary>
    /// <param name="modelOptions">The model to time.</param>
    /// <param name="train">The images (only the first <paramref name="steps"/> batches of a seeded shuffle are read).</param>
    /// <param name="batchSize">Images per step (&gt; 0).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <param name="steps">Steps to take, the warm-up included (&gt;= 1). Default 3.</param>
    /// <returns>Seconds per step (at least 1e-3).</returns>
    /// <exception cref="ArgumentException">A count is not positive or the dataset has no images.</exception>
    public static double SecondsPerStep(RetinaNetOptions modelOptions, DetectionDataset train, int batchSize, int seed, int steps = 3)
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
        double perStep = times.Count > 1 ? times.Skip(1).Average() : times.DefaultIfEmpty(1).Average();
        return Math.Max(1e-3, perStep);
    }
}
