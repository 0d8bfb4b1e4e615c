// Turns model outputs (RetinaSharp.Modeling.Detections: XYXY boxes, contiguous labels) and datasets into the
// inputs of the evaluators: COCO results records (XYWH, original category ids, as torchvision's detection
// reference scripts write them for pycocotools) and Pascal VOC ground truth / detections.
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using TorchSharp;

namespace RetinaSharp.Evaluation;

/// <summary>Conversions from model detections and datasets to evaluator inputs.</summary>
public static class EvaluationInputs
{
    /// <summary>
    /// The detections of one image as COCO results: box (x1, y1, x2, y2) becomes [x1, y1, x2 - x1, y2 - y1], the
    /// contiguous label becomes the original category id through <paramref name="categories"/>.
    /// </summary>
    /// <param name="imageId">The image's id in the ground truth.</param>
    /// <param name="detections">Boxes (N, 4) XYXY pixels of the original image, scores (N), labels (N) int64 in 0..K-1.</param>
    /// <param name="categories">The map from contiguous labels to original category ids.</param>
    /// <returns>N records in the order of <paramref name="detections"/>.</returns>
    /// <exception cref="ArgumentException">The tensors' shapes disagree, or a label is outside 0..K-1.</exception>
    public static List<CocoResult> ToCocoResults(long imageId, Detections detections, CategoryMap categories)
    {
        ArgumentNullException.ThrowIfNull(categories);
        return ToCocoResults(imageId, detections, categories.Count, label => categories.ToCategoryId(label));
    }

    /// <summary>
    /// As <see cref="ToCocoResults(long, Detections, CategoryMap)"/> with any label mapping, for example the identity
    /// of torchvision's COCO models (91 outputs, label = COCO category id).
    /// </summary>
    /// <param name="imageId">The image's id in the ground truth.</param>
    /// <param name="detections">Boxes (N, 4) XYXY pixels of the original image, scores (N), labels (N) int64 in 0..K-1.</param>
    /// <param name="numClasses">K, the model's number of classes.</param>
    /// <param name="labelToCategoryId">The original category id of a label, or null to drop detections of that label.</param>
    /// <returns>The kept records in the order of <paramref name="detections"/>.</returns>
    /// <exception cref="ArgumentException">The tensors' shapes disagree, or a label is outside 0..K-1.</exception>
    public static List<CocoResult> ToCocoResults(long imageId, Detections detections, int numClasses, Func<int, long?> labelToCategoryId)
    {
        ArgumentNullException.ThrowIfNull(labelToCategoryId);
        var (boxes, scores, labels) = ToArrays(detections, numClasses);
        var results = new List<CocoResult>(scores.Length);
        for (int i = 0; i < scores.Length; i++)
        {
            if (labelToCategoryId((int)labels[i]) is not long categoryId) continue;
            float x1 = boxes[4 * i], y1 = boxes[4 * i + 1], x2 = boxes[4 * i + 2], y2 = boxes[4 * i + 3];
            results.Add(new CocoResult(imageId, categoryId, x1, y1, (double)x2 - x1, (double)y2 - y1, scores[i]));
        }
        return results;
    }

    /// <summary>The detections of one image for <see cref="VocEvaluator"/>: class = contiguous label.</summary>
    /// <param name="imageId">The image's id, as in <see cref="ToVocGroundTruth"/> (the decimal image id).</param>
    /// <param name="detections">Boxes (N, 4) XYXY pixels, scores (N), labels (N) int64 in 0..K-1.</param>
    /// <param name="numClasses">K.</param>
    /// <exception cref="ArgumentException">The tensors' shapes disagree, or a label is outside 0..K-1.</exception>
    public static List<VocDetection> ToVocDetections(string imageId, Detections detections, int numClasses)
    {
        var (boxes, scores, labels) = ToArrays(detections, numClasses);
        var results = new List<VocDetection>(scores.Length);
        for (int i = 0; i < scores.Length; i++)
            results.Add(new VocDetection(imageId, (int)labels[i], boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], scores[i]));
        return results;
    }

    /// <summary>A dataset's boxes as VOC ground truth: image id = the decimal image id, class = contiguous index,
    /// crowd boxes count as difficult (neither to be found nor a false positive).</summary>
    /// <param name="dataset">Any loaded dataset (COCO, VOC or CSV).</param>
    public static List<VocImageAnnotations> ToVocGroundTruth(DetectionDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var result = new List<VocImageAnnotations>(dataset.Images.Count);
        foreach (var im in dataset.Images)
        {
            var objects = im.Boxes.Select(b => new VocObject(dataset.Categories.ToIndex(b.CategoryId), b.X1, b.Y1, b.X2, b.Y2, b.Difficult || b.IsCrowd)).ToList();
            result.Add(new VocImageAnnotations(im.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), objects));
        }
        return result;
    }

    private static (float[] Boxes, float[] Scores, long[] Labels) ToArrays(Detections detections, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(detections);
        using var scope = torch.NewDisposeScope();
        long n = detections.Scores.shape[0];
        if (detections.Boxes.shape.Length != 2 || detections.Boxes.shape[0] != n || detections.Boxes.shape[1] != 4 || detections.Labels.shape.Length != 1 || detections.Labels.shape[0] != n)
            throw new ArgumentException($"detections: expected boxes (N, 4), scores (N), labels (N); found boxes ({string.Join(", ", detections.Boxes.shape)}), scores ({string.Join(", ", detections.Scores.shape)}), labels ({string.Join(", ", detections.Labels.shape)})", nameof(detections));
        if (n == 0) return ([], [], []); // TorchSharp 0.107's data<T>().ToArray() throws on an empty tensor
        float[] boxes = detections.Boxes.detach().cpu().to(torch.float32).contiguous().data<float>().ToArray();
        float[] scores = detections.Scores.detach().cpu().to(torch.float32).contiguous().data<float>().ToArray();
        long[] labels = detections.Labels.detach().cpu().to(torch.int64).contiguous().data<long>().ToArray();
        foreach (long l in labels)
            if (l < 0 || l >= numClasses)
                throw new ArgumentException($"detections: label {l} is outside 0..{numClasses - 1}", nameof(detections));
        return (boxes, scores, labels);
    }
}
