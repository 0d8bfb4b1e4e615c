using RetinaSharp.Data;
using RetinaSharp.IO;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Data;

public class DetectionDataLoaderTests
{
    // TorchSharp's data<T>().ToArray() throws on an empty tensor, hence the numel checks.
    private static (long Id, float[] Boxes, long[] Labels, long[] Shape) Snapshot(TrainingSample s) =>
        (s.ImageId, s.Target.Boxes.numel() == 0 ? System.Array.Empty<float>() : s.Target.Boxes.data<float>().ToArray(),
            s.Target.Labels.numel() == 0 ? System.Array.Empty<long>() : s.Target.Labels.data<long>().ToArray(), s.Image.shape);

    private static List<List<(long, float[], long[], long[])>> Take(IEnumerable<IReadOnlyList<TrainingSample>> batches, int n)
    {
        var result = new List<List<(long, float[], long[], long[])>>();
        foreach (var batch in batches)
        {
            result.Add(batch.Select(Snapshot).ToList());
            foreach (var s in batch) s.Dispose();
            if (result.Count == n) break;
        }
        return result;
    }

    private static void AssertSame(List<List<(long Id, float[] Boxes, long[] Labels, long[] Shape)>> a, List<List<(long Id, float[] Boxes, long[] Labels, long[] Shape)>> b)
    {
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Select(s => s.Id), b[i].Select(s => s.Id));
            for (int j = 0; j < a[i].Count; j++)
            {
                Assert.Equal(a[i][j].Boxes, b[i][j].Boxes);
                Assert.Equal(a[i][j].Labels, b[i][j].Labels);
                Assert.Equal(a[i][j].Shape, b[i][j].Shape);
            }
        }
    }

    [Fact]
    public void An_epoch_yields_every_image_once_with_contiguous_labels()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var ds = DetectionDataset.Load(TinyDatasets.WriteCoco(dir.Path));
        using var loader = new DetectionDataLoader(ds, batchSize: 2, shuffle: true, seed: 1, augmentation: AugmentationOptions.None);
        Assert.Equal(2, loader.BatchesPerEpoch);
        var batches = loader.Epoch(0).ToList();
        Assert.Equal(new[] { 2, 1 }, batches.Select(b => b.Count));
        var samples = batches.SelectMany(b => b).ToDictionary(s => s.ImageId);
        Assert.Equal(new long[] { 1, 2, 3 }, samples.Keys.Order());
        var a = samples[1];
        Assert.Equal(new long[] { 3, 30, 40 }, a.Image.shape);
        Assert.Equal(ScalarType.Float32, a.Image.dtype);
        Assert.Equal(new float[] { 2, 3, 12, 20, 20, 5, 39, 29 }, a.Target.Boxes.data<float>().ToArray());
        Assert.Equal(new long[] { 0, 2 }, a.Target.Labels.data<long>().ToArray()); // ids 3 and 90 of {3, 7, 90}
        Assert.Equal(new[] { false, false }, a.Target.IsCrowd!.data<bool>().ToArray());
        var c = samples[3];
        Assert.Equal(new long[] { 0, 4 }, c.Target.Boxes.shape); // an image without objects
        Assert.Equal(new long[] { 0 }, c.Target.Labels.shape);
        // Pixel values in [0, 1]: the tiny images are the colour (40, 50, 60).
        Assert.Equal(40f / 255f, a.Image[0, 0, 0].item<float>(), 6);
        Assert.Equal(60f / 255f, a.Image[2, 29, 39].item<float>(), 6);
    }

    [Fact]
    public void Flip_augmentation_moves_the_target_boxes_with_the_image()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var ds = DetectionDataset.Load(TinyDatasets.WriteCoco(dir.Path));
        using var loader = new DetectionDataLoader(ds, 3, shuffle: false, augmentation: new AugmentationOptions(FlipProbability: 1.0));
        var a = loader.Epoch(0).First().Single(s => s.ImageId == 1);
        Assert.Equal(new float[] { 40 - 12, 3, 40 - 2, 20, 40 - 39, 5, 40 - 20, 29 }, a.Target.Boxes.data<float>().ToArray());
    }

    [Fact]
    public void Same_seed_same_batches_and_resume_at_any_iteration_sees_the_same_sequence()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var ds = DetectionDataset.Load(TinyDatasets.WriteCoco(dir.Path));
        var aug = new AugmentationOptions(ShorterSideScales: new[] { 16, 20, 24 });
        using var first = new DetectionDataLoader(ds, 2, seed: 11, augmentation: aug);
        using var second = new DetectionDataLoader(ds, 2, seed: 11, augmentation: aug);
        var full = Take(first.Iterations(0), 8);   // 4 epochs of 2 batches
        AssertSame(full, Take(second.Iterations(0), 8));
        AssertSame(full.Skip(3).ToList(), Take(second.Iterations(3), 5)); // resume in the middle of epoch 1
        AssertSame(full.Skip(4).Take(2).ToList(), Take(second.Epoch(2), 2));
        AssertSame(full.Skip(5).Take(1).ToList(), Take(second.Epoch(2, startBatch: 1), 1));
        // The order and the augmentation change between epochs and seeds.
        Assert.True(new[] { 0, 1, 2, 3 }.Select(e => string.Join(",", first.EpochOrder(e))).Distinct().Count() > 1);
        using var other = new DetectionDataLoader(ds, 2, seed: 12, augmentation: aug);
        var o = Take(other.Iterations(0), 8);
        Assert.False(full.Zip(o).All(p => p.First.Select(s => s.Item4[1]).SequenceEqual(p.Second.Select(s => s.Item4[1]))
            && p.First.Select(s => s.Item1).SequenceEqual(p.Second.Select(s => s.Item1))));
    }

    [Fact]
    public void Unreadable_image_surfaces_as_a_data_format_error_naming_the_file()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var ds = DetectionDataset.Load(TinyDatasets.WriteCoco(dir.Path));
        File.WriteAllBytes(dir["images/b.png"], new byte[] { 9, 9, 9 });
        using var loader = new DetectionDataLoader(ds, 1, shuffle: false);
        var e = Assert.Throws<DataFormatException>(() => loader.Epoch(0).ToList());
        Assert.Contains("b.png", e.Message);
    }

    [Fact]
    public void Breaking_out_early_and_disposing_stops_the_background_work()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var ds = DetectionDataset.Load(TinyDatasets.WriteCoco(dir.Path));
        var loader = new DetectionDataLoader(ds, 1, prefetch: 1);
        foreach (var batch in loader.Iterations()) { Assert.Single(batch); break; }
        loader.Dispose();
        Assert.Throws<ObjectDisposedException>(() => loader.Epoch(0).First());
        Assert.Throws<ArgumentOutOfRangeException>(() => new DetectionDataLoader(ds, 0));
    }
}
