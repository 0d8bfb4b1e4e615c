using RetinaSharp.Modeling;
using RetinaSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Training;

/// <summary>A tiny conv model (with dropout, so torch's generator matters) that regresses the number of boxes.</summary>
internal sealed class TinyModel : nn.Module<Tensor, Tensor>, ITrainableModel
{
    private readonly nn.Module<Tensor, Tensor> conv;
    private readonly nn.Module<Tensor, Tensor> drop;
    private readonly nn.Module<Tensor, Tensor> fc;

    public TinyModel(long seed) : base("tiny")
    {
        manual_seed(seed);
        conv = nn.Conv2d(3, 4, 3, padding: 1);
        drop = nn.Dropout(0.2);
        fc = nn.Linear(4, 1);
        RegisterComponents();
    }

    public nn.Module Module => this;

    public override Tensor forward(Tensor x) =>
        fc.forward(drop.forward(nn.functional.relu(conv.forward(x)).mean([2, 3]))).squeeze(1);

    /// <summary>Set to make every loss NaN.</summary>
    public bool PoisonLoss { get; set; }

    /// <summary>The ComputeLosses call (1-based) that throws libtorch's kind of error after the forward pass, or null.</summary>
    public long? FailNativeOnCall { get; set; }

    private long _calls;

    public IReadOnlyList<(string Name, Tensor Value)> ComputeLosses(TrainingBatch batch)
    {
        var x = stack(batch.Images.ToArray());
        var y = tensor(batch.Targets.Select(t => (float)t.Boxes.shape[0]).ToArray());
        var pred = forward(x);
        if (++_calls == FailNativeOnCall)
            throw new System.Runtime.InteropServices.ExternalException("Expected false to be true, but got false.\nException raised from toFloat at c10/core/Scalar.h:140");
        var mse = nn.functional.mse_loss(pred, y);
        var l1 = (pred - y).abs().mean() * 0.1;
        if (PoisonLoss) mse = mse * float.NaN;
        return [("mse", mse), ("l1", l1)];
    }
}

/// <summary>Random 3x8x8 images with 0-3 boxes; order a function of (seed, epoch), content of the index.</summary>
internal sealed class TinyData(int count, int batchSize, int seed) : ITrainingData
{
    public int BatchSize => batchSize;
    public int BatchesPerEpoch => count / batchSize;
    public int BatchesRead { get; private set; }

    public IEnumerable<TrainingBatch> ReadEpoch(int epoch, int startBatch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed * 7919 + epoch).Shuffle(order);
        for (int b = startBatch; b < BatchesPerEpoch; b++)
        {
            var ids = order.Skip(b * batchSize).Take(batchSize).ToArray();
            BatchesRead++;
            yield return new TrainingBatch(ids.Select(i => (long)i).ToArray(), ids.Select(Image).ToArray(), ids.Select(Target).ToArray());
        }
    }

    private static Tensor Image(int i)
    {
        var g = new Random(i);
        var v = new float[3 * 8 * 8];
        for (int k = 0; k < v.Length; k++) v[k] = (float)g.NextDouble() * (1 + i % 4);
        return tensor(v).reshape(3, 8, 8);
    }

    private static DetectionTarget Target(int i) =>
        new(zeros(i % 4, 4), zeros(i % 4, dtype: ScalarType.Int64));
}

internal static class TempDir
{
    public static string Create()
    {
        string d = Path.Combine(Path.GetTempPath(), "retinasharp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
