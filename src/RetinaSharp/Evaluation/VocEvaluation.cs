// Result of the Pascal VOC evaluation (VocEvaluator): per-class AP and their mean.
namespace RetinaSharp.Evaluation;

/// <summary>How AP is read from the precision-recall curve.</summary>
public enum VocApMethod
{
    /// <summary>VOC2010 and later: area under the monotone precision envelope at every recall change.</summary>
    AllPoint,
    /// <summary>VOC2007: mean over recall t = 0, 0.1, ..., 1 of the maximum precision at recall &gt;= t.</summary>
    ElevenPoint,
}

/// <summary>The AP of one class.</summary>
/// <param name="ClassId">The class.</param>
/// <param name="Ap">Average precision; NaN when the class has no non-difficult object.</param>
/// <param name="Positives">Non-difficult objects of the class.</param>
/// <param name="Detections">Detections of the class.</param>
public sealed record VocClassAp(int ClassId, double Ap, int Positives, int Detections);

/// <summary>Result of <see cref="VocEvaluator.Evaluate"/>.</summary>
/// <param name="MeanAp">Mean of the class APs, over classes with at least one non-difficult object (NaN if none).</param>
/// <param name="PerClass">Per-class AP, ascending class id: every class seen in the ground truth or the detections.</param>
/// <param name="Method">The AP method used.</param>
/// <param name="IouThreshold">The IoU a match must exceed.</param>
public sealed record VocEvaluation(double MeanAp, IReadOnlyList<VocClassAp> PerClass, VocApMethod Method, double IouThreshold);
