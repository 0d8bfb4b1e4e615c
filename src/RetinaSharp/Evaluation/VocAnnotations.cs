// Inputs of the Pascal VOC evaluation (VocEvaluator): per-image ground truth with the "difficult" flag, and detections.
namespace RetinaSharp.Evaluation;

/// <summary>One ground-truth object of a VOC image.</summary>
/// <param name="ClassId">The class (any integer id).</param>
/// <param name="X1">Left edge, pixels.</param>
/// <param name="Y1">Top edge, pixels.</param>
/// <param name="X2">Right edge, pixels (&gt;= X1).</param>
/// <param name="Y2">Bottom edge, pixels (&gt;= Y1).</param>
/// <param name="Difficult">VOC's "difficult" flag: detections matched to it are ignored and it need not be found.</param>
public sealed record VocObject(int ClassId, double X1, double Y1, double X2, double Y2, bool Difficult = false);

/// <summary>The ground truth of one image.</summary>
/// <param name="ImageId">The image's id (for example "000005").</param>
/// <param name="Objects">Its objects.</param>
public sealed record VocImageAnnotations(string ImageId, IReadOnlyList<VocObject> Objects);

/// <summary>One detection.</summary>
/// <param name="ImageId">The image it belongs to.</param>
/// <param name="ClassId">The predicted class.</param>
/// <param name="X1">Left edge, pixels.</param>
/// <param name="Y1">Top edge, pixels.</param>
/// <param name="X2">Right edge, pixels.</param>
/// <param name="Y2">Bottom edge, pixels.</param>
/// <param name="Score">Confidence; higher ranks first.</param>
public sealed record VocDetection(string ImageId, int ClassId, double X1, double Y1, double X2, double Y2, double Score);
