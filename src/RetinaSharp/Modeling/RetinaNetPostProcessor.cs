// Reference behaviour: torchvision.models.detection.retinanet.RetinaNet.postprocess_detections, torchvision
// 0.14; RetinaNet paper (Lin et al. 2017) section 4 "Inference": per level keep the top 1000 predictions with
// score > 0.05, decode them, merge the levels and apply class-aware NMS at 0.5; keep 100 per image.
using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using RetinaSharp.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>
/// Turns one image's head outputs into detections. For each level: sigmoid scores of every (anchor, class)
/// pair, keep those &gt; <see cref="ScoreThreshold"/>, keep the <see cref="TopkCandidates"/> best, decode their
/// boxes with <see cref="BoxCoder"/> against their anchors and clip them to the image. Then class-aware NMS
/// over all levels at <see cref="NmsThreshold"/> and the <see cref="DetectionsPerImage"/> best by score.
/// On the CPU with float32 logits, the threshold and top-k run as one SIMD pass over the logits in C#
/// (compared in logit space, then confirmed on the exact sigmoid), which is several times faster than
/// sigmoid + nonzero + topk over every element; elsewhere the same steps run as tensor operations.
/// </summary>
public sealed class RetinaNetPostProcessor
{
    /// <summary>Creates a post-processor; defaults are the paper's and torchvision's.</summary>
    /// <param name="boxCoder">Decoder of the regression outputs; null = weights (1, 1, 1, 1), clamp ln(1000/16).</param>
    /// <param name="scoreThreshold">Sigmoid score a prediction must exceed (strictly) to be considered.</param>
    /// <param name="topkCandidates">Predictions kept per level before NMS.</param>
    /// <param name="nmsThreshold">IoU above which NMS drops the lower-scored box of the same class.</param>
    /// <param name="detectionsPerImage">Detections kept after NMS.</param>
    /// <exception cref="ArgumentOutOfRangeException">A threshold is NaN or a count is negative.</exception>
    public RetinaNetPostProcessor(BoxCoder? boxCoder = null, double scoreThreshold = 0.05, int topkCandidates = 1000,
        double nmsThreshold = 0.5, int detectionsPerImage = 100)
    {
        if (double.IsNaN(scoreThreshold)) throw new ArgumentOutOfRangeException(nameof(scoreThreshold), scoreThreshold, "must not be NaN");
        if (double.IsNaN(nmsThreshold)) throw new ArgumentOutOfRangeException(nameof(nmsThreshold), nmsThreshold, "must not be NaN");
        if (topkCandidates < 0) throw new ArgumentOutOfRangeException(nameof(topkCandidates), topkCandidates, "must be >= 0");
        if (detectionsPerImage < 0) throw new ArgumentOutOfRangeException(nameof(detectionsPerImage), detectionsPerImage, "must be >= 0");
        BoxCoder = boxCoder ?? new BoxCoder();
        ScoreThreshold = scoreThreshold;
        TopkCandidates = topkCandidates;
        NmsThreshold = nmsThreshold;
        DetectionsPerImage = detectionsPerImage;
    }

    /// <summary>Decoder of the regression outputs.</summary>
    public BoxCoder BoxCoder { get; }
    /// <summary>Sigmoid score a prediction must exceed (strictly).</summary>
    public double ScoreThreshold { get; }
    /// <summary>Predictions kept per level before NMS.</summary>
    public int TopkCandidates { get; }
    /// <summary>IoU above which NMS drops the lower-scored box of the same class.</summary>
    public double NmsThreshold { get; }
    /// <summary>Detections kept after NMS.</summary>
    public int DetectionsPerImage { get; }

    /// <summary>
    /// Detections of one image from its per-level head outputs. torchvision
    /// <c>RetinaNet.postprocess_detections</c> for one image (before the resize back to the original size).
    /// </summary>
    /// <param name="classLogitsPerLevel">Per level l, (HWA_l, K) classification logits (pre-sigmoid).</param>
    /// <param name="boxDeltasPerLevel">Per level l, (HWA_l, 4) regression outputs (dx, dy, dw, dh).</param>
    /// <param name="anchorsPerLevel">Per level l, (HWA_l, 4) XYXY anchors in pixels (<see cref="AnchorGenerator.AnchorsPerLevel"/>).</param>
    /// <param name="imageSize">Height and width of the resized, unpadded image: boxes are clipped to it.</param>
    /// <returns>At most <see cref="DetectionsPerImage"/> detections by decreasing score (ties: lower level, then
    /// higher score rank inside the level), boxes in the pixels of <paramref name="imageSize"/>, on the logits' device.</returns>
    /// <exception cref="ArgumentException">Level counts differ or are 0, or a tensor has the wrong shape.</exception>
    public Detections Process(IReadOnlyList<Tensor> classLogitsPerLevel, IReadOnlyList<Tensor> boxDeltasPerLevel,
        IReadOnlyList<Tensor> anchorsPerLevel, (long Height, long Width) imageSize)
    {
        int numClasses = CheckInputs(classLogitsPerLevel, boxDeltasPerLevel, anchorsPerLevel, imageSize);
        using var scope = NewDisposeScope();
        bool fast = classLogitsPerLevel.All(l => l.device_type == DeviceType.CPU && l.dtype == ScalarType.Float32
                                                 && l.numel() < int.MaxValue / 4);
        var (anchorIdx, labels, scores) = fast
            ? SelectCandidatesCpu(classLogitsPerLevel, numClasses)
            : SelectCandidatesTensor(classLogitsPerLevel, numClasses);
        var device = classLogitsPerLevel[0].device;

        var deltas = new List<Tensor>();
        var anchors = new List<Tensor>();
        for (int l = 0; l < anchorIdx.Length; l++)
        {
            var idx = anchorIdx[l].to(boxDeltasPerLevel[l].device);
            deltas.Add(boxDeltasPerLevel[l].index_select(0, idx));
            anchors.Add(anchorsPerLevel[l].index_select(0, idx.to(anchorsPerLevel[l].device)).to(boxDeltasPerLevel[l].device));
        }
        var boxes = BoxOps.ClipToImage(BoxCoder.Decode(cat(deltas, 0), cat(anchors, 0)), imageSize.Height, imageSize.Width);
        var allScores = cat(scores, 0);
        var allLabels = cat(labels, 0);

        var keep = NonMaxSuppression.Batched(boxes, allScores, allLabels, NmsThreshold);
        if (keep.shape[0] > DetectionsPerImage) keep = keep.narrow(0, 0, DetectionsPerImage);
        var keepBoxes = keep.to(boxes.device);
        return new Detections(
            boxes.index_select(0, keepBoxes).to(device).MoveToOuterDisposeScope(),
            allScores.index_select(0, keep.to(allScores.device)).to(device).MoveToOuterDisposeScope(),
            allLabels.index_select(0, keep.to(allLabels.device)).to(device).MoveToOuterDisposeScope());
    }

    /// <summary>Tensor path, torchvision's steps: sigmoid, threshold, top-k per level.</summary>
    private (Tensor[] AnchorIdx, Tensor[] Labels, Tensor[] Scores) SelectCandidatesTensor(IReadOnlyList<Tensor> logits, int numClasses)
    {
        using var threshold = ScoreThreshold.ToScalar();
        using var classes = numClasses.ToScalar();
        int levels = logits.Count;
        var anchorIdx = new Tensor[levels];
        var labels = new Tensor[levels];
        var scores = new Tensor[levels];
        for (int l = 0; l < levels; l++)
        {
            var s = logits[l].detach().sigmoid().flatten();
            var candidates = nonzero(s.gt(threshold)).view(-1);
            var candidateScores = s.index_select(0, candidates);
            int k = (int)Math.Min(TopkCandidates, candidates.shape[0]);
            var (top, pos) = candidateScores.topk(k);
            var flatIdx = candidates.index_select(0, pos);
            anchorIdx[l] = flatIdx.div(classes, rounding_mode: RoundingMode.floor);
            labels[l] = flatIdx.remainder(classes);
            scores[l] = top;
        }
        return (anchorIdx, labels, scores);
    }

    /// <summary>
    /// CPU path: one SIMD pass per level collects the (anchor, class) pairs whose logit exceeds the logit of the
    /// score threshold (minus a safety margin), a selection keeps the top-k logits, and the exact float32
    /// sigmoid (libtorch's) confirms score &gt; threshold. The sigmoid is monotone, so this keeps the same set
    /// as thresholding and ranking the scores (up to the order of exactly tied scores).
    /// </summary>
    private (Tensor[] AnchorIdx, Tensor[] Labels, Tensor[] Scores) SelectCandidatesCpu(IReadOnlyList<Tensor> logits, int numClasses)
    {
        int levels = logits.Count;
        float lowerBound = LogitLowerBound(ScoreThreshold);
        var perLevel = new int[levels][];
        var selectedLogits = new List<float>();
        for (int l = 0; l < levels; l++)
        {
            var lg = logits[l].detach().contiguous();
            ReadOnlySpan<float> x = MemoryMarshal.Cast<byte, float>(lg.bytes);
            var chosen = TopKAbove(x, lowerBound, TopkCandidates);
            perLevel[l] = chosen;
            foreach (int f in chosen) selectedLogits.Add(x[f]);
        }

        // libtorch's own sigmoid, so the scores are bit-identical to the tensor path.
        using var sig = tensor(selectedLogits.ToArray()).sigmoid();
        float[] sigmoid = sig.data<float>().ToArray();
        float threshold = (float)ScoreThreshold; // torch compares a float32 tensor with the threshold cast to float32
        var anchorIdx = new Tensor[levels];
        var labels = new Tensor[levels];
        var scores = new Tensor[levels];
        int offset = 0;
        for (int l = 0; l < levels; l++)
        {
            var chosen = perLevel[l];
            var a = new List<long>(chosen.Length);
            var c = new List<long>(chosen.Length);
            var s = new List<float>(chosen.Length);
            for (int i = 0; i < chosen.Length; i++)
            {
                float score = sigmoid[offset + i];
                if (!(score > threshold)) continue;
                a.Add(chosen[i] / numClasses);
                c.Add(chosen[i] % numClasses);
                s.Add(score);
            }
            offset += chosen.Length;
            anchorIdx[l] = tensor(a.ToArray(), dtype: ScalarType.Int64);
            labels[l] = tensor(c.ToArray(), dtype: ScalarType.Int64);
            scores[l] = tensor(s.ToArray(), dtype: ScalarType.Float32);
        }
        return (anchorIdx, labels, scores);
    }

    /// <summary>A float32 logit below which no float32 sigmoid can exceed <paramref name="scoreThreshold"/>.</summary>
    private static float LogitLowerBound(double scoreThreshold)
    {
        if (scoreThreshold < 0) return float.NegativeInfinity;
        if (scoreThreshold >= 1) return float.PositiveInfinity;
        double logit = Math.Log(scoreThreshold / (1 - scoreThreshold));
        // float32 sigmoid has a relative error of a few ulp; 1e-3 in logit space is far beyond it.
        return (float)(logit - 1e-3 * Math.Max(1, Math.Abs(logit)));
    }

    /// <summary>
    /// The (at most) <paramref name="k"/> indices with the largest values among those &gt; <paramref name="bound"/>,
    /// by decreasing value, ties by increasing index, in one pass over <paramref name="x"/>. Candidates go to a
    /// buffer; when it fills, it is cut to its k best and the bound is raised to the k-th best value (a later
    /// element equal to it ranks after k earlier ones and can never be chosen), so after the first few
    /// thousand hits almost no element passes the SIMD compare.
    /// </summary>
    internal static int[] TopKAbove(ReadOnlySpan<float> x, float bound, int k)
    {
        if (k <= 0) return Array.Empty<int>();
        int capacity = Math.Max(4 * k, 4096);
        var buffer = ArrayPool<int>.Shared.Rent(capacity + Vector256<float>.Count);
        var values = ArrayPool<float>.Shared.Rent(capacity + Vector256<float>.Count);
        try
        {
            int count = 0;
            int n = x.Length;
            int i = 0;
            ref float r = ref MemoryMarshal.GetReference(x);
            if (Vector256.IsHardwareAccelerated)
            {
                var vb = Vector256.Create(bound);
                for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    uint bits = Vector256.GreaterThan(Vector256.LoadUnsafe(ref r, (nuint)i), vb).ExtractMostSignificantBits();
                    if (bits == 0) continue;
                    while (bits != 0)
                    {
                        buffer[count++] = i + BitOperations.TrailingZeroCount(bits);
                        bits &= bits - 1;
                    }
                    if (count >= capacity)
                    {
                        count = Shrink(x, buffer, values, count, k, out bound);
                        vb = Vector256.Create(bound);
                    }
                }
            }
            for (; i < n; i++)
            {
                if (!(x[i] > bound)) continue;
                buffer[count++] = i;
                if (count >= capacity) count = Shrink(x, buffer, values, count, k, out bound);
            }
            return TopByValue(x, buffer.AsSpan(0, count), k);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(buffer);
            ArrayPool<float>.Shared.Return(values);
        }

        // Keeps the k best of buffer[0..count) in place (index order preserved); returns k and the k-th best value.
        static int Shrink(ReadOnlySpan<float> x, int[] buffer, float[] values, int count, int k, out float kth)
        {
            for (int j = 0; j < count; j++) values[j] = x[buffer[j]];
            kth = KthLargest(values.AsSpan(0, count), k);
            int above = 0;
            for (int j = 0; j < count; j++) if (x[buffer[j]] > kth) above++;
            int equalAllowed = k - above, m = 0;
            for (int j = 0; j < count; j++)
            {
                float v = x[buffer[j]];
                if (v > kth || (v == kth && equalAllowed-- > 0)) buffer[m++] = buffer[j];
            }
            return m;
        }
    }

    /// <summary>
    /// The (at most) <paramref name="k"/> candidates with the largest values, ordered by decreasing value, ties
    /// by increasing index. Expected linear time: a quickselect finds the k-th largest value first.
    /// </summary>
    internal static int[] TopByValue(ReadOnlySpan<float> x, ReadOnlySpan<int> candidates, int k)
    {
        int n = candidates.Length;
        int[] chosen;
        if (n <= k)
        {
            chosen = candidates.ToArray();
        }
        else if (k == 0)
        {
            return Array.Empty<int>();
        }
        else
        {
            var values = ArrayPool<float>.Shared.Rent(n);
            try
            {
                for (int i = 0; i < n; i++) values[i] = x[candidates[i]];
                float kth = KthLargest(values.AsSpan(0, n), k);
                chosen = new int[k];
                int m = 0;
                foreach (int c in candidates) if (x[c] > kth) chosen[m++] = c;
                foreach (int c in candidates) { if (m == k) break; if (x[c] == kth) chosen[m++] = c; }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(values);
            }
        }
        // Sort by decreasing value, ties by increasing index: pack (descending key, index) into one ulong.
        var keys = new ulong[chosen.Length];
        for (int i = 0; i < chosen.Length; i++)
            keys[i] = ((ulong)~SortableBits(x[chosen[i]]) << 32) | (uint)chosen[i];
        Array.Sort(keys);
        for (int i = 0; i < keys.Length; i++) chosen[i] = (int)(uint)keys[i];
        return chosen;
    }

    /// <summary>Maps a float to a uint whose unsigned order is the float order (-0 and +0 equal).</summary>
    private static uint SortableBits(float v)
    {
        if (v == 0) v = 0;
        uint b = BitConverter.SingleToUInt32Bits(v);
        return (b & 0x8000_0000u) != 0 ? ~b : b | 0x8000_0000u;
    }

    /// <summary>The k-th largest value (1-based) of <paramref name="v"/>, which it reorders. No NaN expected.</summary>
    private static float KthLargest(Span<float> v, int k)
    {
        int lo = 0, hi = v.Length - 1, target = k - 1; // position in descending order
        var rng = new Random(12345);
        while (lo < hi)
        {
            float pivot = v[lo + rng.Next(hi - lo + 1)];
            // three-way partition: [lo, lt) > pivot, [lt, gt] == pivot, (gt, hi] < pivot
            int lt = lo, gt = hi, i = lo;
            while (i <= gt)
            {
                if (v[i] > pivot) { (v[lt], v[i]) = (v[i], v[lt]); lt++; i++; }
                else if (v[i] < pivot) { (v[gt], v[i]) = (v[i], v[gt]); gt--; }
                else i++;
            }
            if (target < lt) hi = lt - 1;
            else if (target > gt) lo = gt + 1;
            else return pivot;
        }
        return v[lo];
    }

    private static int CheckInputs(IReadOnlyList<Tensor> logits, IReadOnlyList<Tensor> deltas, IReadOnlyList<Tensor> anchors, (long Height, long Width) imageSize)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(deltas);
        ArgumentNullException.ThrowIfNull(anchors);
        if (logits.Count == 0) throw new ArgumentException("at least one pyramid level is needed", nameof(logits));
        if (deltas.Count != logits.Count || anchors.Count != logits.Count)
            throw new ArgumentException($"level counts differ: {logits.Count} logits, {deltas.Count} box deltas, {anchors.Count} anchors", nameof(deltas));
        if (imageSize.Height < 0 || imageSize.Width < 0)
            throw new ArgumentException($"image size ({imageSize.Height}, {imageSize.Width}) must not be negative", nameof(imageSize));
        long k = -1;
        for (int l = 0; l < logits.Count; l++)
        {
            var lg = logits[l];
            if (lg.dim() != 2) throw new ArgumentException($"level {l} logits must be (HWA, K); got ({string.Join(", ", lg.shape)})", "classLogitsPerLevel");
            if (k < 0) k = lg.shape[1];
            if (lg.shape[1] != k) throw new ArgumentException($"level {l} logits have {lg.shape[1]} classes, level 0 has {k}", "classLogitsPerLevel");
            long n = lg.shape[0];
            if (deltas[l].dim() != 2 || deltas[l].shape[0] != n || deltas[l].shape[1] != 4)
                throw new ArgumentException($"level {l} box deltas must be ({n}, 4); got ({string.Join(", ", deltas[l].shape)})", "boxDeltasPerLevel");
            if (anchors[l].dim() != 2 || anchors[l].shape[0] != n || anchors[l].shape[1] != 4)
                throw new ArgumentException($"level {l} anchors must be ({n}, 4); got ({string.Join(", ", anchors[l].shape)})", "anchorsPerLevel");
        }
        if (k == 0) throw new ArgumentException("logits have 0 classes", "classLogitsPerLevel");
        return (int)k;
    }
}
