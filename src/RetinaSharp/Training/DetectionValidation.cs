// Validation of a detector during and after training: run RetinaNet.Detect over a dataset's images, map
// contiguous labels back to the dataset's category ids, boxes XYXY -> COCO XYWH, and score them with the
// pycocotools-exact CocoEvaluator (what detectron2's COCOEvaluator / torchvision's evaluate() do).
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>Runs a detector over a dataset and evaluates COCO AP.</summary>
public static class DetectionValidation
{
    /// <summary>Detects objects in every image of <paramref name="dataset"/> (or the first <paramref name="maxImages"/>).</summary>
    /// <param name="model">The detector (switched to eval mode; left there).</param>
    /// <param name="dataset">The images (ground truth not used).</param>
    /// <param name="batchSize">Images per Detect call (&gt; 0).</param>
    /// <param name="maxImages">Only the first this many images, or null for all.</param>
    /// <param name="progress">Called with (images done, total) after each batch.</param>
    /// <returns>COCO results: original category ids, XYWH pixels of the original image, scores.</returns>
    /// <exception cref="ArgumentException"><paramref name="batchSize"/> is not positive.</exception>
    /// <exception cref="IO.DataFormatException">An image cannot be read.</exception>
    public static IReadOnlyList<CocoResult> Detect(RetinaNet model, DetectionDataset dataset, int batchSize = 8, int? maxImages = null, Action<int, int>? progress = null)
    {
        if (batchSize <= 0) throw new ArgumentException($"The batch size must be positive; got {batchSize}.", nameof(batchSize));
        model.eval();
        var images = dataset.Images.Take(maxImages ?? int.MaxValue).ToList();
        var results = new List<CocoResult>();
        for (int start = 0; start < images.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = images.Skip(start).Take(batchSize).ToList();
            var tensors = chunk.Select(i => ImageIO.ToTensor(ImageIO.Load(i.FilePath))).ToList();
            var dets = model.Detect(tensors);
            for (int j = 0; j < chunk.Count; j++)
                results.AddRange(ToCoco(dets[j], chunk[j].Id, dataset.Categories));
            progress?.Invoke(Math.Min(start + batchSize, images.Count), images.Count);
        }
        return results;
    }

    /// <summary>The detections of one image as COCO results (XYXY -> XYWH, index -> category id).</summary>
    public static IEnumerable<CocoResult> ToCoco(Detections detections, long imageId, CategoryMap categories)
    {
        if (detections.Count == 0) yield break;
        var boxes = detections.Boxes.cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var scores = detections.Scores.cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var labels = detections.Labels.cpu().to(ScalarType.Int64).contiguous().data<long>().ToArray();
        for (int i = 0; i < scores.Length; i++)
        {
            double x1 = boxes[4 * i], y1 = boxes[4 * i + 1], x2 = boxes[4 * i + 2], y2 = boxes[4 * i + 3];
            yield return new CocoResult(imageId, categories.ToCategoryId((int)labels[i]), x1, y1, x2 - x1, y2 - y1, scores[i]);
        }
    }

    /// <summary>Detects on <paramref name="dataset"/> and evaluates against its ground truth.</summary>
    /// <param name="model">The detector.</param>
    /// <param name="dataset">Images and ground truth.</param>
    /// <param name="batchSize">Images per Detect call.</param>
    /// <param name="maxImages">Evaluate only the first this many images, or null for all.</param>
    /// <param name="progress">Called with (images done, total).</param>
    /// <returns>The evaluation and the detections it scored.</returns>
    public static (CocoEvaluation Evaluation, IReadOnlyList<CocoResult> Detections) Evaluate(RetinaNet model, DetectionDataset dataset,
        int batchSize = 8, int? maxImages = null, Action<int, int>? progress = null)
    {
        var results = Detect(model, dataset, batchSize, maxImages, progress);
        var gt = dataset.ToCoco();
        if (maxImages is int n && n < gt.Images.Count)
        {
            var keep = gt.Images.Take(n).Select(i => i.Id).ToHashSet();
            gt = gt with { Images = gt.Images.Where(i => keep.Contains(i.Id)).ToList(), Annotations = gt.Annotations.Where(a => keep.Contains(a.ImageId)).ToList() };
        }
        return (CocoEvaluator.Evaluate(gt, results), results);
    }

    /// <summary>The 12 COCO numbers by name (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl).</summary>
    public static IReadOnlyDictionary<string, double> Metrics(CocoEvaluation evaluation)
    {
        var values = evaluation.Stats.ToArray();
        var d = new Dictionary<string, double>();
        for (int i = 0; i < values.Length; i++) d[CocoStats.Names[i]] = values[i];
        return d;
    }
}
