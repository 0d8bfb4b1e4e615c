// Reference behaviour: torchvision.ops.nms and torchvision.ops.batched_nms, torchvision 0.14 (CPU kernel):
// boxes sorted by decreasing score with a stable sort (ties keep the lower index first), a box is dropped
// when its IoU with a kept box is > the threshold, IoU = inter / (area_i + area_j - inter) in the boxes'
// float type. Written as a plain C# loop with SIMD because TorchSharp's ops.nms is many times slower.
using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Geometry;

/// <summary>
/// Greedy non-maximum suppression (Neubeck and Van Gool 2006; as used by RetinaNet at inference, paper
/// section 4 "Inference"). Runs on the CPU: inputs on another device are copied there and the indices are
/// returned on the input's device. The IoU of each kept box with the later boxes is computed on the fly
/// with SIMD (no N x N matrix); cost O(N log N + K N) for K kept boxes.
/// </summary>
public static class NonMaxSuppression
{
    /// <summary>
    /// Greedy NMS over all boxes. torchvision <c>ops.nms</c>: visits boxes by decreasing score (ties: lower
    /// index first), keeps a box unless its IoU with an already kept box is strictly above
    /// <paramref name="iouThreshold"/>. Boxes of zero area never suppress each other (their IoU is 0 or NaN).
    /// </summary>
    /// <param name="boxes">(N, 4) XYXY boxes, float32 or float64 (other types are computed in float32).</param>
    /// <param name="scores">(N) scores.</param>
    /// <param name="iouThreshold">IoU above which the lower-scored box is dropped.</param>
    /// <returns>(K) int64 indices of the kept boxes, by decreasing score (ties: lower index first).</returns>
    /// <exception cref="ArgumentException">Shapes are not (N, 4) and (N), or the threshold is NaN.</exception>
    public static Tensor Greedy(Tensor boxes, Tensor scores, double iouThreshold) =>
        Run(boxes, scores, null, iouThreshold);

    /// <summary>
    /// Class-aware NMS: boxes of different labels never suppress each other. torchvision
    /// <c>ops.batched_nms</c> (its per-class path, so IoUs are not disturbed by coordinate offsets).
    /// </summary>
    /// <param name="boxes">(N, 4) XYXY boxes, float32 or float64.</param>
    /// <param name="scores">(N) scores.</param>
    /// <param name="labels">(N) integer class labels (any values).</param>
    /// <param name="iouThreshold">IoU above which the lower-scored box of the same label is dropped.</param>
    /// <returns>(K) int64 indices of the kept boxes over all labels, by decreasing score (ties: lower index first).</returns>
    /// <exception cref="ArgumentException">Shapes are not (N, 4), (N) and (N), labels are not integers, or the threshold is NaN.</exception>
    public static Tensor Batched(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.dim() != 1 || labels.shape[0] != boxes.shape[0])
            throw new ArgumentException($"labels must have shape ({boxes.shape[0]}); got ({string.Join(", ", labels.shape)}).", nameof(labels));
        if (labels.is_floating_point() || labels.is_complex())
            throw new ArgumentException($"labels must be an integer tensor; got {labels.dtype}.", nameof(labels));
        return Run(boxes, scores, labels, iouThreshold);
    }

    /// <summary>
    /// Class-aware NMS on host arrays, for callers that already hold the data on the CPU (the post-processor).
    /// </summary>
    /// <param name="boxes">N * 4 XYXY coordinates, row-major.</param>
    /// <param name="order">Box indices by decreasing score, ties lower index first (a stable sort).</param>
    /// <param name="labels">N labels, or null for class-agnostic NMS.</param>
    /// <param name="iouThreshold">IoU above which the lower-scored box is dropped.</param>
    /// <returns>Kept indices in the order of <paramref name="order"/>.</returns>
    internal static long[] KeepSorted<T>(ReadOnlySpan<T> boxes, ReadOnlySpan<long> order, ReadOnlySpan<long> labels, double iouThreshold)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = order.Length;
        // Group the sorted positions by label, keeping score order inside each group.
        var grouped = new int[n];        // grouped slot -> sorted position
        var groupStarts = new List<int>();
        if (labels.IsEmpty)
        {
            for (int p = 0; p < n; p++) grouped[p] = p;
            groupStarts.Add(0);
        }
        else
        {
            var groupOf = new Dictionary<long, int>();
            var groupIds = new int[n];
            var counts = new List<int>();
            for (int p = 0; p < n; p++)
            {
                long label = labels[(int)order[p]];
                if (!groupOf.TryGetValue(label, out int g)) { g = counts.Count; groupOf[label] = g; counts.Add(0); }
                groupIds[p] = g;
                counts[g]++;
            }
            var next = new int[counts.Count];
            for (int g = 0, start = 0; g < counts.Count; start += counts[g], g++) { groupStarts.Add(start); next[g] = start; }
            for (int p = 0; p < n; p++) grouped[next[groupIds[p]]++] = p;
        }
        groupStarts.Add(n);

        var x1 = new T[n]; var y1 = new T[n]; var x2 = new T[n]; var y2 = new T[n]; var area = new T[n];
        for (int s = 0; s < n; s++)
        {
            int b = (int)order[grouped[s]] * 4;
            x1[s] = boxes[b]; y1[s] = boxes[b + 1]; x2[s] = boxes[b + 2]; y2[s] = boxes[b + 3];
            area[s] = (x2[s] - x1[s]) * (y2[s] - y1[s]);
        }
        var removed = new T[n];
        var keptAtSorted = new bool[n];
        T threshold = FloatThreshold<T>(iouThreshold);
        for (int g = 0; g + 1 < groupStarts.Count; g++)
        {
            int start = groupStarts[g], len = groupStarts[g + 1] - start;
            Suppress<T>(x1.AsSpan(start, len), y1.AsSpan(start, len), x2.AsSpan(start, len), y2.AsSpan(start, len),
                area.AsSpan(start, len), removed.AsSpan(start, len), threshold);
            for (int s = start; s < start + len; s++)
                if (!T.IsNaN(removed[s])) keptAtSorted[grouped[s]] = true;
        }
        int kept = 0;
        for (int p = 0; p < n; p++) if (keptAtSorted[p]) kept++;
        var result = new long[kept];
        for (int p = 0, k = 0; p < n; p++) if (keptAtSorted[p]) result[k++] = order[p];
        return result;
    }

    private static Tensor Run(Tensor boxes, Tensor scores, Tensor? labels, double iouThreshold)
    {
        BoxOps.CheckBoxes(boxes, nameof(boxes));
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.dim() != 1 || scores.shape[0] != boxes.shape[0])
            throw new ArgumentException($"scores must have shape ({boxes.shape[0]}); got ({string.Join(", ", scores.shape)}).", nameof(scores));
        if (double.IsNaN(iouThreshold))
            throw new ArgumentException("iouThreshold is NaN.", nameof(iouThreshold));
        var device = boxes.device;
        if (boxes.shape[0] == 0) return empty(0, dtype: ScalarType.Int64, device: device);
        using var scope = NewDisposeScope();
        var order = scores.detach().cpu().sort(0, descending: true, stable: true).Indices.contiguous();
        var orderHost = MemoryMarshal.Cast<byte, long>(order.bytes);
        long[]? labelHost = labels?.detach().cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        long[] keep;
        if (boxes.dtype == ScalarType.Float64)
        {
            var b = boxes.detach().cpu().contiguous();
            keep = KeepSorted<double>(MemoryMarshal.Cast<byte, double>(b.bytes), orderHost, labelHost, iouThreshold);
        }
        else
        {
            var b = boxes.detach().cpu().to_type(ScalarType.Float32).contiguous();
            keep = KeepSorted<float>(MemoryMarshal.Cast<byte, float>(b.bytes), orderHost, labelHost, iouThreshold);
        }
        return tensor(keep, dtype: ScalarType.Int64).to(device).MoveToOuterDisposeScope();
    }

    /// <summary>The largest T t such that, for every T v, v &gt; t exactly when (double)v &gt; threshold.</summary>
    private static T FloatThreshold<T>(double threshold) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T t = T.CreateChecked(threshold);
        if (double.CreateChecked(t) > threshold) t = T.BitDecrement(t);
        return t;
    }

    /// <summary>
    /// Greedy suppression over boxes already sorted by decreasing score. Marks dropped boxes in
    /// <paramref name="removed"/> with NaN (all bits set by the SIMD compare); the rest are kept.
    /// </summary>
    private static void Suppress<T>(Span<T> x1, Span<T> y1, Span<T> x2, Span<T> y2, Span<T> area, Span<T> removed, T threshold)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x1.Length;
        int width = Vector<T>.Count;
        ref T rx1 = ref MemoryMarshal.GetReference(x1);
        ref T ry1 = ref MemoryMarshal.GetReference(y1);
        ref T rx2 = ref MemoryMarshal.GetReference(x2);
        ref T ry2 = ref MemoryMarshal.GetReference(y2);
        ref T rArea = ref MemoryMarshal.GetReference(area);
        ref T rRemoved = ref MemoryMarshal.GetReference(removed);
        for (int i = 0; i < n; i++)
        {
            if (T.IsNaN(removed[i])) continue;
            T ix1 = x1[i], iy1 = y1[i], ix2 = x2[i], iy2 = y2[i], iArea = area[i];
            int j = i + 1;
            if (Vector.IsHardwareAccelerated && n - j >= width)
            {
                var vx1 = new Vector<T>(ix1); var vy1 = new Vector<T>(iy1);
                var vx2 = new Vector<T>(ix2); var vy2 = new Vector<T>(iy2);
                var vArea = new Vector<T>(iArea); var vThr = new Vector<T>(threshold);
                for (; j <= n - width; j += width)
                {
                    nuint o = (nuint)j;
                    var w = Vector.MinNative(vx2, Vector.LoadUnsafe(ref rx2, o)) - Vector.MaxNative(vx1, Vector.LoadUnsafe(ref rx1, o));
                    var h = Vector.MinNative(vy2, Vector.LoadUnsafe(ref ry2, o)) - Vector.MaxNative(vy1, Vector.LoadUnsafe(ref ry1, o));
                    var inter = Vector.MaxNative(w, Vector<T>.Zero) * Vector.MaxNative(h, Vector<T>.Zero);
                    var iou = inter / (vArea + Vector.LoadUnsafe(ref rArea, o) - inter);
                    var drop = Vector.GreaterThan(iou, vThr);
                    if (drop != Vector<T>.Zero)
                        Vector.StoreUnsafe(Vector.LoadUnsafe(ref rRemoved, o) | drop, ref rRemoved, o);
                }
            }
            for (; j < n; j++)
            {
                T w = Min(ix2, x2[j]) - Max(ix1, x1[j]);
                T h = Min(iy2, y2[j]) - Max(iy1, y1[j]);
                T inter = (w > T.Zero ? w : T.Zero) * (h > T.Zero ? h : T.Zero);
                T iou = inter / (iArea + area[j] - inter);
                if (iou > threshold) removed[j] = T.NaN;
            }
        }

        static T Min(T a, T b) => a < b ? a : b;
        static T Max(T a, T b) => a > b ? a : b;
    }
}
