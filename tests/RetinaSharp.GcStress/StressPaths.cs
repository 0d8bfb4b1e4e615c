using System.Diagnostics;
using RetinaSharp.Losses;
using RetinaSharp.Modeling;
using RetinaSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.GcStress;

/// <summary>The hot paths of issue 17, each as a repeatable step on small inputs (a tiny ResNet-18-FPN at 64x64).</summary>
internal static class StressPaths
{
    /// <summary>Path names, in the order <c>soak</c> runs them.</summary>
    public static readonly string[] Names = ["adamw", "sgd", "focal", "losses", "detect", "detect-folded", "train"];

    // The harness's own constants: explicit and never finalised (static), so that only library code is under test.
    private static readonly Scalar Half = 0.5.ToScalar();
    private static readonly Scalar One = 1.ToScalar();

    /// <summary>Runs <paramref name="name"/> for <paramref name="steps"/> steps or <paramref name="seconds"/> seconds; prints one line.</summary>
    /// <returns>0 when it survived (and, for the optimisers, matched a run without forced GCs bit for bit), 3 otherwise.</returns>
    public static int Run(string name, long? steps, double? seconds, bool gc)
    {
        torch.set_num_threads(1);   // one core for the path, one for the collector (and the same numbers on every machine)
        manual_seed(17);
        using var path = Create(name);
        long done = 0;
        long collections = 0;
        var sw = Stopwatch.StartNew();
        var hammer = gc ? new GcHammer() : null;
        try
        {
            try { path.Run(ref done, steps, seconds); }
            finally
            {
                hammer?.Dispose();
                collections = hammer?.Collections ?? 0;
            }
            string? mismatch = path.Verify(done);
            if (mismatch != null)
            {
                Console.WriteLine($"gc-stress {name}: FAILED after {done} steps ({collections} forced GCs): {mismatch}");
                return 3;
            }
        }
        catch (Exception e)
        {
            string first = e.Message.Split('\n')[0];
            Console.WriteLine($"gc-stress {name}: FAILED at step {done + 1} ({collections} forced GCs so far, {sw.Elapsed.TotalSeconds:0.0} s): {e.GetType().Name}: {first}");
            return 3;
        }
        Console.WriteLine($"gc-stress {name}: OK, {done} steps, {collections} forced GCs, {sw.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }

    private static StressPath Create(string name) => name switch
    {
        "adamw" => new OptimizerPath(p => new AdamWOptimizer(p, weightDecay: 0.05)),
        "sgd" => new OptimizerPath(p => new SgdOptimizer(p, momentum: 0.9, weightDecay: 1e-4)),
        "focal" => new FocalPath(),
        "losses" => new LossesPath(),
        "detect" => new DetectPath(folded: false),
        "detect-folded" => new DetectPath(folded: true),
        "train" => new TrainPath(),
        _ => throw new ArgumentException($"unknown path {name}"),
    };

    /// <summary>A tiny detector in the demo's configuration (ResNet-18, trainable BatchNorm, GroupNorm heads, AdamW).</summary>
    internal static RetinaNet TinyModel(double scoreThreshold = 0.05) => new(new RetinaNetOptions(3)
    {
        Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64, FpnChannels = 32, HeadGroupNorm = true,
        TrainableBackboneLayers = 5, BackboneNorm = BackboneNormKind.BatchNorm, ScoreThreshold = scoreThreshold,
        AnchorSizes = [[16], [32], [64], [128], [256]],
    });

    /// <summary>Two random 64x64 images, each with two boxes.</summary>
    internal static (Tensor[] Images, DetectionTarget[] Targets) Batch()
    {
        var images = new[] { rand(3, 64, 64), rand(3, 64, 64) };
        var targets = new[]
        {
            new DetectionTarget(tensor(new float[,] { { 4, 4, 30, 28 }, { 20, 30, 60, 62 } }), tensor(new long[] { 0, 2 })),
            new DetectionTarget(tensor(new float[,] { { 10, 8, 40, 50 }, { 33, 2, 63, 20 } }), tensor(new long[] { 1, 1 })),
        };
        return (images, targets);
    }

    private abstract class StressPath : IDisposable
    {
        /// <summary>One step (the caller holds no dispose scope).</summary>
        protected abstract void Step();

        public virtual void Run(ref long done, long? steps, double? seconds)
        {
            var sw = Stopwatch.StartNew();
            while ((steps is long n && done < n) || (seconds is double s && sw.Elapsed.TotalSeconds < s))
            {
                Step();
                done++;
            }
        }

        /// <summary>Null when the stressed run's result is right (or there is nothing to compare), else what differs.</summary>
        public virtual string? Verify(long steps) => null;

        public virtual void Dispose() { }
    }

    /// <summary>
    /// Optimiser steps over 60 small parameters with fixed gradients; afterwards the same number of steps from the same
    /// start without forced GCs must give the same parameters bit for bit (a Scalar freed during a call may be read as
    /// another value rather than fail).
    /// </summary>
    private sealed class OptimizerPath : StressPath
    {
        private readonly Func<IEnumerable<(string, Tensor)>, TrainingOptimizer> _create;
        private readonly Tensor[] _start;
        private readonly Tensor[] _grads;
        private readonly Tensor[] _params;
        private readonly TrainingOptimizer _optimizer;

        public OptimizerPath(Func<IEnumerable<(string, Tensor)>, TrainingOptimizer> create)
        {
            _create = create;
            long[][] shapes = [[16, 16, 3, 3], [16], [32, 16, 1, 1], [32], [8, 32, 3, 3], [8]];
            _start = [.. Enumerable.Range(0, 60).Select(i => randn(shapes[i % shapes.Length]).DetachFromDisposeScope())];
            _grads = [.. _start.Select(s => randn(s.shape).DetachFromDisposeScope())];
            (_params, _optimizer) = Fresh();
        }

        private (Tensor[], TrainingOptimizer) Fresh()
        {
            var ps = _start.Select((s, i) => s.clone().requires_grad_(true).DetachFromDisposeScope()).ToArray();
            for (int i = 0; i < ps.Length; i++) ps[i].grad = _grads[i].clone().DetachFromDisposeScope();
            return (ps, _create(ps.Select((p, i) => ($"p{i}", p))));
        }

        protected override void Step() => _optimizer.Step(1e-3);

        public override string? Verify(long steps)
        {
            var (reference, optimizer) = Fresh();
            for (long i = 0; i < steps; i++) optimizer.Step(1e-3);
            for (int i = 0; i < _params.Length; i++)
                if (!_params[i].detach().eq(reference[i].detach()).all().item<bool>())
                    return $"parameter p{i} differs from the run without forced GCs";
            return null;
        }
    }

    /// <summary>The focal losses (fused kernel, composite ops, softmax, FL*) forward and backward.</summary>
    private sealed class FocalPath : StressPath
    {
        protected override void Step()
        {
            using var scope = NewDisposeScope();
            var logits = randn(64, 5).requires_grad_(true);
            var onehot = rand(64, 5).lt(Half).to(ScalarType.Float32);
            var indices = randint(-2, 5, [64]);
            var classes = randint(0, 5, [64]);
            var sum = FocalLoss.SigmoidFocalLoss(logits, onehot, reduction: FocalReduction.Sum, path: FocalLossPath.Fused)
                .add(FocalLoss.SigmoidFocalLoss(logits, onehot, reduction: FocalReduction.Mean, path: FocalLossPath.Composite), One)
                .add(FocalLoss.SigmoidFocalLossFromIndices(logits, indices, normalizer: 3), One)
                .add(FocalLoss.SoftmaxFocalLoss(logits, classes), One)
                .add(FocalLoss.FocalLossStar(logits, onehot), One);
            TorchRuntime.Backward(sum);
        }
    }

    /// <summary>RetinaNet.ComputeLosses (transform, backbone with trainable BatchNorm, FPN, heads, matching, encoding, focal and box losses) + backward.</summary>
    private sealed class LossesPath : StressPath
    {
        private readonly RetinaNet _model = TinyModel();

        public LossesPath() => _model.train();

        protected override void Step()
        {
            using var scope = NewDisposeScope();
            var (images, targets) = Batch();
            var losses = _model.ComputeLosses(images, targets);
            TorchRuntime.Backward(losses.Total);
            foreach (var p in _model.parameters()) { p.grad?.Dispose(); p.grad = null; }
        }

        public override void Dispose() => _model.Dispose();
    }

    /// <summary>RetinaNet.Detect (transform, network, post-processing: scores, top-k, decode, clip, NMS, rescale).</summary>
    private sealed class DetectPath : StressPath
    {
        private readonly RetinaNet _model = TinyModel(scoreThreshold: 0.001);

        public DetectPath(bool folded)
        {
            if (folded) _model.PrepareForInference(foldBatchNorm: true, bfloat16: false, channelsLast: false);
            else _model.eval();
        }

        protected override void Step()
        {
            using var scope = NewDisposeScope();
            var (images, _) = Batch();
            var found = _model.Detect(images);
            if (found.Count != 2 || found[0].Boxes.shape[0] == 0) throw new InvalidOperationException("Detect found nothing at a score threshold of 0.001");
        }

        public override void Dispose() => _model.Dispose();
    }

    /// <summary>Trainer.Run (AdamW, gradient clipping, logs, checkpoints every 10 iterations) on synthetic batches.</summary>
    private sealed class TrainPath : StressPath
    {
        protected override void Step() => throw new NotSupportedException();

        public override void Run(ref long done, long? steps, double? seconds)
        {
            string dir = Path.Combine(Path.GetTempPath(), "retinasharp-gcstress", Guid.NewGuid().ToString("N"));
            try
            {
                using var model = TinyModel();
                var options = new TrainingOptions
                {
                    Iterations = steps ?? 1_000_000, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.05, BaseLearningRate = 1e-4,
                    WarmupIterations = 2, GradientClipNorm = 1, CheckpointEvery = 10, LogEvery = 1, Seed = 1,
                };
                var trainer = new Trainer(new RetinaNetTrainable(model), new SyntheticData(), options, dir);
                using var cts = seconds is double s ? new CancellationTokenSource(TimeSpan.FromSeconds(s)) : new CancellationTokenSource();
                var result = trainer.Run(cancellation: cts.Token);
                done = result.Iteration;
                if (result.Status is not (TrainingStatus.Completed or TrainingStatus.Interrupted))
                    throw new InvalidOperationException($"training ended {result.Status}: {result.Message}");
            }
            finally
            {
                try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
            }
        }
    }

    private sealed class SyntheticData : ITrainingData
    {
        public int BatchSize => 2;
        public int BatchesPerEpoch => 8;

        public IEnumerable<TrainingBatch> ReadEpoch(int epoch, int startBatch)
        {
            for (int b = startBatch; b < BatchesPerEpoch; b++)
            {
                var (images, targets) = Batch();
                foreach (var t in images) t.DetachFromDisposeScope();
                yield return new TrainingBatch([2L * b, 2L * b + 1], images, targets);
            }
        }
    }
}
