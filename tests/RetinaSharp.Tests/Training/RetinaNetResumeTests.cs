using RetinaSharp.Modeling;
using RetinaSharp.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Training;

/// <summary>
/// Exact resume of a real RetinaNet run whose classification loss uses detectron2's running-average normaliser:
/// the normaliser is training state outside the state_dict, so the checkpoint must carry it.
/// </summary>
[Collection(TorchRngCollection.Name)]
public class RetinaNetResumeTests
{
    /// <summary>Four 48x48 images with 1-3 bright rectangles each; two batches of two per epoch, order from (seed, epoch).</summary>
    private sealed class Rectangles : ITrainingData
    {
        public int BatchSize => 2;
        public int BatchesPerEpoch => 2;

        public IEnumerable<TrainingBatch> ReadEpoch(int epoch, int startBatch)
        {
            var order = new[] { 0, 1, 2, 3 };
            new Random(17 + epoch).Shuffle(order);
            for (int b = startBatch; b < BatchesPerEpoch; b++)
            {
                var ids = order.Skip(b * 2).Take(2).ToArray();
                var images = new List<Tensor>();
                var targets = new List<DetectionTarget>();
                foreach (int i in ids)
                {
                    var img = full(3, 48, 48, 0.1f);
                    var boxes = new List<float>();
                    var labels = new List<long>();
                    for (int j = 0; j <= i % 3; j++)
                    {
                        int x = 4 + 13 * j, y = 6 + 5 * i, w = 12 + 2 * i, h = 14 + 3 * j;
                        img[.., TensorIndex.Slice(y, y + h), TensorIndex.Slice(x, x + w)] = tensor(0.3f + 0.2f * ((i + j) % 3));
                        boxes.AddRange([x, y, x + w, y + h]);
                        labels.Add((i + j) % 3);
                    }
                    images.Add(img.DetachFromDisposeScope());
                    targets.Add(new DetectionTarget(tensor(boxes.ToArray()).reshape(-1, 4).DetachFromDisposeScope(), tensor(labels.ToArray()).DetachFromDisposeScope()));
                }
                yield return new TrainingBatch([.. ids.Select(i => (long)i)], images, targets);
            }
        }
    }

    private static RetinaNet Model(long seed)
    {
        manual_seed(seed);
        return new RetinaNet(new RetinaNetOptions(3)
        {
            Backbone = ResNetDepth.ResNet18, MinSize = 48, MaxSize = 48, FpnChannels = 16, TrainableBackboneLayers = 0,
            AnchorSizes = [[16], [32], [64], [128], [256]], AspectRatios = [1.0],
            LossNormalizer = LossNormalizerKind.RunningAverage, LossNormalizerMomentum = 0.9,
        });
    }

    private static readonly TrainingOptions Options = new()
    {
        Iterations = 5, BaseLearningRate = 0.01, GradientClipNorm = 1, WarmupIterations = 2, LogEvery = 1, CheckpointEvery = 3, Seed = 5,
    };

    private static Dictionary<string, byte[]> Weights(RetinaNet m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous().bytes.ToArray());

    private sealed class CrashException : Exception;

    [Fact]
    public void Resume_with_the_running_average_loss_normalizer_is_bit_identical()
    {
        using var scope = NewDisposeScope();
        // Uninterrupted: 5 iterations over 3 epochs of 2 batches (SGD with momentum; frozen backbone to keep it fast).
        var full = Model(1);
        var r1 = new Trainer(new RetinaNetTrainable(full), new Rectangles(), Options, TempDir.Create()).Run();
        Assert.Equal(TrainingStatus.Completed, r1.Status);
        // The normaliser moved away from its start: 5 updates n <- 0.9 n + 0.1 max(#fg, 1).
        Assert.NotEqual(RetinaNet.InitialRunningLossNormalizer, full.RunningLossNormalizer);

        // Crash (like kill -9) after iteration 4: the last checkpoint is iteration 3.
        string b = TempDir.Create();
        var crashed = Model(1);
        var t2 = new Trainer(new RetinaNetTrainable(crashed), new Rectangles(), Options, b);
        t2.Progress = p => { if (p.Iteration == 4) throw new CrashException(); };
        Assert.Throws<CrashException>(() => t2.Run());

        // A new process: other initial weights, another generator state, the normaliser at its initial value.
        manual_seed(999);
        var resumed = Model(42);
        Assert.Equal(RetinaNet.InitialRunningLossNormalizer, resumed.RunningLossNormalizer);
        var r3 = new Trainer(new RetinaNetTrainable(resumed), new Rectangles(), Options, b).Run(resume: true);
        Assert.Equal(TrainingStatus.Completed, r3.Status);

        Assert.Equal(full.RunningLossNormalizer, resumed.RunningLossNormalizer);
        Assert.Equal(r1.Log.Steps.Select(s => s.Loss), r3.Log.Steps.Select(s => s.Loss));
        var w1 = Weights(full);
        var w3 = Weights(resumed);
        Assert.Equal(w1.Keys, w3.Keys);
        foreach (var k in w1.Keys) Assert.True(w1[k].AsSpan().SequenceEqual(w3[k]), $"tensor '{k}' differs after resume");
    }
}
