// Pascal VOC detection AP at IoU 0.5 with the rules of the VOC devkit's evaluation (as in the widely used
// voc_eval.py of py-faster-rcnn / detectron): per class, detections ranked by score, each matched to the
// unmatched ground truth of highest IoU when that IoU is > 0.5, "difficult" objects neither rewarded nor
// penalised; AP as the area under the precision envelope (all-point, VOC2010+) or the mean of the maximum
// precision at recall >= 0, 0.1, ..., 1 (11-point, VOC2007). Written from that description, not from its code.
// One convention differs from the devkit: boxes are continuous pixel coordinates (width = x2 - x1, no "+1"),
// as everywhere in RetinaSharp.
namespace RetinaSharp.Evaluation;

/// <summary>Pascal VOC detection AP (VOC devkit rules; see the file header).</summary>
public static class VocEvaluator
{
    /// <summary>Evaluates <paramref name="detections"/> against <paramref name="groundTruth"/>.</summary>
    /// <param name="groundTruth">Per image, its objects. An image may appear once only.</param>
    /// <param name="detections">Detections of all images and classes, in any order (ties in score keep this order).</param>
    /// <param name="method">All-point (VOC2010+, default) or 11-point (VOC2007).</param>
    /// <param name="iouThreshold">A detection matches when its IoU with an object is strictly greater than this (VOC: 0.5).</param>
    /// <exception cref="ArgumentException">An image id is repeated, a detection names an image not in the ground truth, a
    /// box has x2 &lt; x1 or y2 &lt; y1 or a non-finite value, or a score is not finite; the message names the record.</exception>
    public static VocEvaluation Evaluate(IReadOnlyList<VocImageAnnotations> groundTruth, IReadOnlyList<VocDetection> detections,
        VocApMethod method = VocApMethod.AllPoint, double iouThreshold = 0.5)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        ArgumentNullException.ThrowIfNull(detections);
        var images = new Dictionary<string, VocImageAnnotations>(groundTruth.Count, StringComparer.Ordinal);
        var classes = new SortedSet<int>();
        foreach (var im in groundTruth)
        {
            if (!images.TryAdd(im.ImageId, im))
                throw new ArgumentException($"ground truth: image '{im.ImageId}' appears twice", nameof(groundTruth));
            for (int j = 0; j < im.Objects.Count; j++)
            {
                var o = im.Objects[j];
                CheckBox(o.X1, o.Y1, o.X2, o.Y2, $"ground truth: image '{im.ImageId}' object #{j}", nameof(groundTruth));
                classes.Add(o.ClassId);
            }
        }
        for (int j = 0; j < detections.Count; j++)
        {
            var d = detections[j];
            string record = $"detection #{j} (image '{d.ImageId}')";
            if (!images.ContainsKey(d.ImageId))
                throw new ArgumentException($"{record}: image id is not in the ground truth", nameof(detections));
            CheckBox(d.X1, d.Y1, d.X2, d.Y2, record, nameof(detections));
            if (!double.IsFinite(d.Score))
                throw new ArgumentException($"{record}: score is not finite ({d.Score})", nameof(detections));
            classes.Add(d.ClassId);
        }

        var perClass = new List<VocClassAp>(classes.Count);
        foreach (int c in classes)
            perClass.Add(EvaluateClass(c, images, detections, method, iouThreshold));
        var valid = perClass.Where(p => p.Positives > 0).ToList();
        double mean = valid.Count == 0 ? double.NaN : valid.Average(p => p.Ap);
        return new VocEvaluation(mean, perClass, method, iouThreshold);
    }

    private static VocClassAp EvaluateClass(int classId, Dictionary<string, VocImageAnnotations> images,
        IReadOnlyList<VocDetection> detections, VocApMethod method, double iouThreshold)
    {
        // Objects of this class per image, with a "found" flag each.
        var objects = new Dictionary<string, (VocObject[] Objects, bool[] Found)>(StringComparer.Ordinal);
        int positives = 0;
        foreach (var (id, im) in images)
        {
            var of = im.Objects.Where(o => o.ClassId == classId).ToArray();
            positives += of.Count(o => !o.Difficult);
            objects[id] = (of, new bool[of.Length]);
        }
        var dets = new List<int>();
        for (int j = 0; j < detections.Count; j++)
            if (detections[j].ClassId == classId) dets.Add(j);
        // Highest score first; ties keep input order.
        dets.Sort((x, y) =>
        {
            int c = detections[y].Score.CompareTo(detections[x].Score);
            return c != 0 ? c : x.CompareTo(y);
        });

        int n = dets.Count;
        var tp = new double[n];
        var fp = new double[n];
        for (int i = 0; i < n; i++)
        {
            var d = detections[dets[i]];
            var (objs, found) = objects[d.ImageId];
            double best = double.NegativeInfinity;
            int bestJ = -1;
            for (int j = 0; j < objs.Length; j++)
            {
                double iou = Iou(d, objs[j]);
                if (iou > best) { best = iou; bestJ = j; }
            }
            if (bestJ >= 0 && best > iouThreshold)
            {
                if (objs[bestJ].Difficult) continue; // neither true nor false positive
                if (!found[bestJ]) { found[bestJ] = true; tp[i] = 1; }
                else fp[i] = 1;
            }
            else
            {
                fp[i] = 1;
            }
        }
        if (positives == 0) return new VocClassAp(classId, double.NaN, 0, n);

        var recall = new double[n];
        var precision = new double[n];
        double tpSum = 0, fpSum = 0;
        for (int i = 0; i < n; i++)
        {
            tpSum += tp[i];
            fpSum += fp[i];
            recall[i] = tpSum / positives;
            precision[i] = tpSum / Math.Max(tpSum + fpSum, Math.BitIncrement(1.0) - 1.0);
        }
        double ap = method == VocApMethod.ElevenPoint ? ElevenPointAp(recall, precision) : AllPointAp(recall, precision);
        return new VocClassAp(classId, ap, positives, n);
    }

    /// <summary>VOC2007: mean over t = 0, 0.1, ..., 1.0 (t = i * 0.1) of max precision at recall &gt;= t (0 if none).</summary>
    internal static double ElevenPointAp(double[] recall, double[] precision)
    {
        double ap = 0;
        for (int i = 0; i <= 10; i++)
        {
            double t = i * 0.1;
            double p = 0;
            for (int j = 0; j < recall.Length; j++)
                if (recall[j] >= t && precision[j] > p) p = precision[j];
            ap += p / 11;
        }
        return ap;
    }

    /// <summary>VOC2010+: with recall padded by 0 and 1 and precision by 0 and 0, the sum over recall steps of
    /// (step width) x (max precision at or after the step).</summary>
    internal static double AllPointAp(double[] recall, double[] precision)
    {
        int n = recall.Length;
        var mrec = new double[n + 2];
        var mpre = new double[n + 2];
        mrec[n + 1] = 1;
        for (int i = 0; i < n; i++) { mrec[i + 1] = recall[i]; mpre[i + 1] = precision[i]; }
        for (int i = n; i >= 0; i--) mpre[i] = Math.Max(mpre[i], mpre[i + 1]);
        double ap = 0;
        for (int i = 0; i <= n; i++)
            if (mrec[i + 1] != mrec[i]) ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
        return ap;
    }

    private static double Iou(VocDetection d, VocObject g)
    {
        double w = Math.Min(d.X2, g.X2) - Math.Max(d.X1, g.X1);
        double h = Math.Min(d.Y2, g.Y2) - Math.Max(d.Y1, g.Y1);
        if (w <= 0 || h <= 0) return 0;
        double inter = w * h;
        double union = (d.X2 - d.X1) * (d.Y2 - d.Y1) + (g.X2 - g.X1) * (g.Y2 - g.Y1) - inter;
        return union > 0 ? inter / union : 0;
    }

    private static void CheckBox(double x1, double y1, double x2, double y2, string record, string argument)
    {
        if (!double.IsFinite(x1) || !double.IsFinite(y1) || !double.IsFinite(x2) || !double.IsFinite(y2) || x2 < x1 || y2 < y1)
            throw new ArgumentException($"{record}: box must be finite XYXY with x2 >= x1 and y2 >= y1, found [{x1}, {y1}, {x2}, {y2}]", argument);
    }
}
