// Batches of augmented training samples with background prefetch, the role of torch.utils.data.DataLoader
// (shuffle with a seeded generator per epoch, batch_size, drop_last, prefetch_factor) in torchvision's
// detection references. Deterministic: the order of an epoch and the augmentation of each image depend only
// on (seed, epoch, image index), so a run resumed at any iteration sees exactly the same batches.
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>
/// Loads, decodes and augments images on a background thread, at most <c>prefetch</c> batches ahead
/// (bounded memory), and yields them as tensors made on the consuming thread. Enumerations are independent;
/// stopping one (break, dispose) stops its background work.
/// </summary>
public sealed class DetectionDataLoader : IDisposable
{
    private readonly AugmentationOptions _augmentation;
    private readonly int _prefetch;
    private readonly List<CancellationTokenSource> _running = new();
    private bool _disposed;

    /// <summary>Creates a loader.</summary>
    /// <param name="dataset">The dataset (should pass <see cref="DatasetCheck.Check"/>).</param>
    /// <param name="batchSize">Images per batch (&gt; 0).</param>
    /// <param name="shuffle">Shuffle the images each epoch (with a generator seeded by seed and epoch).</param>
    /// <param name="seed">Seed of the shuffling and of the augmentation.</param>
    /// <param name="augmentation">Augmentation; null = the default (horizontal flip only); <see cref="AugmentationOptions.None"/> for none.</param>
    /// <param name="prefetch">Batches prepared ahead of the consumer (&gt;= 1).</param>
    /// <param name="dropLast">Leave out the last, incomplete batch of an epoch.</param>
    /// <exception cref="ArgumentException">The dataset has no images, a size is not positive, or the augmentation is invalid.</exception>
    public DetectionDataLoader(DetectionDataset dataset, int batchSize, bool shuffle = true, int seed = 0,
        AugmentationOptions? augmentation = null, int prefetch = 2, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(prefetch);
        if (dataset.Images.Count == 0)
            throw new ArgumentException($"dataset '{dataset.Source}' has no images", nameof(dataset));
        if (dropLast && dataset.Images.Count < batchSize)
            throw new ArgumentException($"dataset '{dataset.Source}' has {dataset.Images.Count} images, fewer than one batch of {batchSize} (dropLast)", nameof(batchSize));
        _augmentation = augmentation ?? new AugmentationOptions();
        _augmentation.Validate();
        Dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        _prefetch = prefetch;
    }

    /// <summary>The dataset.</summary>
    public DetectionDataset Dataset { get; }

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>The seed of shuffling and augmentation.</summary>
    public int Seed { get; }

    /// <summary>Whether the last incomplete batch is left out.</summary>
    public bool DropLast { get; }

    /// <summary>Batches per epoch: ceil(N / batch) or floor(N / batch) with <see cref="DropLast"/>.</summary>
    public int BatchesPerEpoch => DropLast ? Dataset.Images.Count / BatchSize : (Dataset.Images.Count + BatchSize - 1) / BatchSize;

    /// <summary>The image indices (into <see cref="DetectionDataset.Images"/>) in the order of epoch <paramref name="epoch"/>.</summary>
    public int[] EpochOrder(int epoch)
    {
        var order = Enumerable.Range(0, Dataset.Images.Count).ToArray();
        if (Shuffle) new Random(SeedMix.Combine(Seed, epoch, -1)).Shuffle(order);
        return order;
    }

    /// <summary>
    /// Decodes and augments one image as on epoch <paramref name="epoch"/> (the random choices depend only on
    /// seed, epoch and image index). Thread-safe; makes no tensors.
    /// </summary>
    /// <param name="imageIndex">Index into <see cref="DetectionDataset.Images"/>.</param>
    /// <param name="epoch">The epoch.</param>
    /// <exception cref="DataFormatException">The image cannot be read, or a box is degenerate or of an unknown category (run <c>retina data check</c>).</exception>
    public PreparedSample Prepare(int imageIndex, int epoch)
    {
        var im = Dataset.Images[imageIndex];
        var image = ImageIO.Load(im.FilePath);
        int g = im.Boxes.Count;
        var boxes = new float[4 * g];
        var labels = new long[g];
        var crowd = new bool[g];
        for (int j = 0; j < g; j++)
        {
            var b = im.Boxes[j];
            if (b.IsDegenerate || !Dataset.Categories.TryToIndex(b.CategoryId, out int label))
            {
                var src = Dataset.BoxSource(imageIndex, j);
                throw b.IsDegenerate
                    ? new DataFormatException(src.File, src.Record, src.BoxField, $"degenerate box {DatasetCheck.BoxText(b)}; run 'retina data check --repair'")
                    : new DataFormatException(src.File, src.Record, src.CategoryField, $"unknown category id {b.CategoryId}; run 'retina data check --repair'");
            }
            boxes[4 * j] = b.X1; boxes[4 * j + 1] = b.Y1; boxes[4 * j + 2] = b.X2; boxes[4 * j + 3] = b.Y2;
            labels[j] = label;
            crowd[j] = b.IsCrowd || b.Difficult;
        }
        var rng = new Random(SeedMix.Combine(Seed, epoch, imageIndex));
        var (augmented, newBoxes) = Augmentation.Apply(image, boxes, _augmentation, rng);
        return new PreparedSample(im.Id, augmented, newBoxes, labels, crowd);
    }

    /// <summary>
    /// The batches of one epoch, from batch <paramref name="startBatch"/> (for resuming). Each batch is a list of
    /// samples whose tensors are created on the enumerating thread, in the DisposeScope active when the batch is
    /// yielded; dispose them (each <see cref="TrainingSample"/> is disposable) or let the training step's scope do it.
    /// </summary>
    /// <param name="epoch">The epoch (&gt;= 0): selects the shuffle order and the augmentation.</param>
    /// <param name="startBatch">The first batch to yield (0 .. <see cref="BatchesPerEpoch"/>).</param>
    /// <exception cref="DataFormatException">Thrown during enumeration when an image cannot be read.</exception>
    public IEnumerable<IReadOnlyList<TrainingSample>> Epoch(int epoch, int startBatch = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (startBatch < 0 || startBatch > BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(startBatch), startBatch, $"must be in 0..{BatchesPerEpoch}");
        return Run(Enumerable.Range(startBatch, BatchesPerEpoch - startBatch).Select(b => (epoch, b)));
    }

    /// <summary>
    /// An endless sequence of batches across epochs starting at global iteration <paramref name="startIteration"/>
    /// (epoch = iteration / <see cref="BatchesPerEpoch"/>, batch = iteration % <see cref="BatchesPerEpoch"/>):
    /// a run resumed at iteration i sees the same batches as an uninterrupted one. Tensors as in <see cref="Epoch"/>.
    /// </summary>
    /// <param name="startIteration">The global iteration to start at (&gt;= 0).</param>
    public IEnumerable<IReadOnlyList<TrainingSample>> Iterations(long startIteration = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(startIteration);
        int perEpoch = BatchesPerEpoch;
        return Run(Endless(startIteration, perEpoch));

        static IEnumerable<(int, int)> Endless(long start, int perEpoch)
        {
            for (long it = start; ; it++) yield return ((int)(it / perEpoch), (int)(it % perEpoch));
        }
    }

    /// <summary>The image indices of batch <paramref name="batch"/> of epoch <paramref name="epoch"/>.</summary>
    public int[] BatchIndices(int epoch, int batch)
    {
        var order = EpochOrder(epoch);
        int start = batch * BatchSize;
        return order.AsSpan(start, Math.Min(BatchSize, order.Length - start)).ToArray();
    }

    private IEnumerable<IReadOnlyList<TrainingSample>> Run(IEnumerable<(int Epoch, int Batch)> schedule)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var cts = new CancellationTokenSource();
        lock (_running) _running.Add(cts);
        var queue = new BlockingCollection<object>(_prefetch);
        var producer = Task.Factory.StartNew(() => Produce(schedule, queue, cts.Token), cts.Token,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            foreach (var item in queue.GetConsumingEnumerable(cts.Token))
            {
                if (item is ExceptionDispatchInfo error) error.Throw();
                var prepared = (PreparedSample[])item;
                var batch = new TrainingSample[prepared.Length];
                for (int i = 0; i < prepared.Length; i++) batch[i] = prepared[i].ToTrainingSample();
                yield return batch;
            }
        }
        finally
        {
            cts.Cancel();
            try { producer.Wait(); } catch (AggregateException) { }
            lock (_running) _running.Remove(cts);
            cts.Dispose();
            queue.Dispose();
        }
    }

    private void Produce(IEnumerable<(int Epoch, int Batch)> schedule, BlockingCollection<object> queue, CancellationToken token)
    {
        try
        {
            int cachedEpoch = -1;
            int[] order = System.Array.Empty<int>();
            foreach (var (epoch, batch) in schedule)
            {
                token.ThrowIfCancellationRequested();
                if (epoch != cachedEpoch) { order = EpochOrder(epoch); cachedEpoch = epoch; }
                int start = batch * BatchSize, count = Math.Min(BatchSize, order.Length - start);
                var samples = new PreparedSample[count];
                for (int i = 0; i < count; i++) samples[i] = Prepare(order[start + i], epoch);
                queue.Add(samples, token);
            }
            queue.CompleteAdding();
        }
        catch (OperationCanceledException) { }
        catch (Exception e)
        {
            try { queue.Add(ExceptionDispatchInfo.Capture(e), token); queue.CompleteAdding(); }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>Stops the background work of every running enumeration.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_running) foreach (var c in _running) c.Cancel();
    }
}
