// True positives, false positives and false negatives of a COCO evaluation at one IoU threshold (area "all", 100
// detections per image): the counts behind pycocotools' recall (TP / (TP + FN)) at the lowest score.
namespace RetinaSharp.Evaluation;

/// <summary>Detection counts at one IoU threshold, area range "all", the largest detection limit (100 per image).</summary>
/// <param name="TruePositives">Detections matched to non-ignored ground truth.</param>
/// <param name="FalsePositives">Detections matched to nothing (ignored detections are in neither count).</param>
/// <param name="FalseNegatives">Non-ignored ground-truth objects that no detection matched.</param>
public sealed record CocoCounts(int TruePositives, int FalsePositives, int FalseNegatives);
