// The 12 numbers of pycocotools' COCOeval.summarize() for bounding boxes (COCOeval.stats, same order).
namespace RetinaSharp.Evaluation;

/// <summary>
/// The 12 COCO summary numbers, in the order of pycocotools' <c>COCOeval.stats</c>. Each is a mean over the
/// entries that are not -1; -1 when there is none (for example no ground truth in that area range).
/// </summary>
/// <param name="Ap">AP @[IoU=0.50:0.95, area=all, maxDets=100], the COCO metric.</param>
/// <param name="Ap50">AP @[IoU=0.50, area=all, maxDets=100] (PASCAL-like).</param>
/// <param name="Ap75">AP @[IoU=0.75, area=all, maxDets=100].</param>
/// <param name="ApSmall">AP for small objects (area &lt;= 32²).</param>
/// <param name="ApMedium">AP for medium objects (32² to 96²).</param>
/// <param name="ApLarge">AP for large objects (area &gt;= 96²).</param>
/// <param name="Ar1">AR @[IoU=0.50:0.95, area=all] given 1 detection per image.</param>
/// <param name="Ar10">AR given 10 detections per image.</param>
/// <param name="Ar100">AR given 100 detections per image.</param>
/// <param name="ArSmall">AR for small objects, maxDets=100.</param>
/// <param name="ArMedium">AR for medium objects, maxDets=100.</param>
/// <param name="ArLarge">AR for large objects, maxDets=100.</param>
public sealed record CocoStats(double Ap, double Ap50, double Ap75, double ApSmall, double ApMedium, double ApLarge,
    double Ar1, double Ar10, double Ar100, double ArSmall, double ArMedium, double ArLarge)
{
    /// <summary>The short names used as JSON keys and in benchmark output, in <c>COCOeval.stats</c> order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

    /// <summary>The 12 numbers as an array, in <c>COCOeval.stats</c> order.</summary>
    public double[] ToArray() => [Ap, Ap50, Ap75, ApSmall, ApMedium, ApLarge, Ar1, Ar10, Ar100, ArSmall, ArMedium, ArLarge];
}
