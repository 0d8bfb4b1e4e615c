using RetinaSharp.Modeling;
using RetinaSharp.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Training;

[Collection(TorchRngCollection.Name)]
public class RetinaNetOverfitTests
{
    /// <summary>Two 64x64 images, each with bright rectangles (the objects) on a dark background.</summary>
    private sealed class Rectangles : ITrainingData
    {
        public int BatchSize => 2;
        public int BatchesPerEpoch => 1;

        public IEnumerable<TrainingBatch> ReadEpoch(int epoch, int startBatch)
        {
            var boxes = new[] { new float[] { 8, 10, 40, 44, 36, 30, 60, 58 }, new float[] { 20, 4, 56, 36 } };
            var labels = new[] { new long[] { 0, 1 }, new long[] { 2 } };
            var images = new List<Tensor>();
            var targets = new List<DetectionTarget>();
            for (int i = 0; i < 2; i++)
            {
                var img = full(3, 64, 64, 0.1f);
                for (int j = 0; j < labels[i].Length; j++)
                {
                    var b = boxes[i].AsSpan(4 * j, 4).ToArray().Select(v => (long)v).ToArray();
                    img[.., TensorIndex.Slice(b[1], b[3]), TensorIndex.Slice(b[0], b[2])] = tensor(new[] { 0.9f, 0.3f, 0.6f }[(int)labels[i][j]]);
                }
                images.Add(img);
                targets.Add(new DetectionTarget(tensor(boxes[i]).reshape(-1, 4), tensor(labels[i])));
            }
            yield return new TrainingBatch([1, 2], images, targets);
        }
    }

    [Fact]
    public void Loss_falls_when_overfitting_two_images()
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        var model = new RetinaNet(new RetinaNetOptions(3)
        {
            Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64, FpnChannels = 32, TrainableBackboneLayers = 5,
            AnchorSizes = [[16], [32], [64], [128], [256]], AspectRatios = [1.0],
        });
        var options = new TrainingOptions { Iterations = 12, Optimizer = OptimizerKind.AdamW, BaseLearningRate = 3e-4, WeightDecay = 0, GradientClipNorm = 1, WarmupIterations = 2, LogEvery = 1, CheckpointEvery = 100 };
        var result = new Trainer(new RetinaNetTrainable(model), new Rectangles(), options, TempDir.Create()).Run();
        Assert.Equal(TrainingStatus.Completed, result.Status);
        var first = result.Log.Steps[0];
        var last = result.Log.Steps[^1];
        Assert.Equal(["classification", "box_regression"], first.Terms.Keys);
        Assert.True(last.Loss < 0.9 * first.Loss, $"loss {first.Loss} -> {last.Loss}");
        Assert.True(last.Terms["classification"] < first.Terms["classification"]);
    }
}
