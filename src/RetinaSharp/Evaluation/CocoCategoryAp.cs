// Per-category AP, as commonly derived from pycocotools' precision array (mean over IoU thresholds and recall
// points of eval["precision"][:, :, k, area=all, maxDets=100], entries > -1), e.g. by detectron2's COCOEvaluator.
namespace RetinaSharp.Evaluation;

/// <summary>The AP of one category (area all, 100 detections per image); -1 when the category has no ground truth.</summary>
/// <param name="CategoryId">The original category id of the ground-truth file.</param>
/// <param name="Name">The category name.</param>
/// <param name="GroundTruthCount">Non-crowd ground-truth objects of this category.</param>
/// <param name="Ap">AP @[IoU=0.50:0.95].</param>
/// <param name="Ap50">AP @[IoU=0.50].</param>
/// <param name="Ap75">AP @[IoU=0.75].</param>
public sealed record CocoCategoryAp(long CategoryId, string Name, int GroundTruthCount, double Ap, double Ap50, double Ap75);
