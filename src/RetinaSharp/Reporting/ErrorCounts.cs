// Counts of the error kinds at one IoU threshold and score threshold: true positives + false positives of every kind
// = the detections the COCO evaluator counts; true positives + missed = its ground-truth objects.
namespace RetinaSharp.Reporting;

/// <summary>How many detections of each kind and how many missed objects, at one IoU threshold and score threshold.</summary>
/// <param name="TruePositives">Detections matched to an object of their class.</param>
/// <param name="Duplicates">False positives on an object already found.</param>
/// <param name="WrongClass">False positives on an object of another class.</param>
/// <param name="PoorLocalisation">False positives near an object of their class, below the IoU threshold.</param>
/// <param name="Background">False positives on background.</param>
/// <param name="Missed">Ground-truth objects (not crowd) that no detection at or above the score threshold matched: false negatives.</param>
/// <param name="Ignored">Detections matched to crowd regions: counted neither way.</param>
public sealed record ErrorCounts(int TruePositives, int Duplicates, int WrongClass, int PoorLocalisation, int Background, int Missed, int Ignored)
{
    /// <summary>All false positives: duplicates + wrong class + poor localisation + background.</summary>
    public int FalsePositives => Duplicates + WrongClass + PoorLocalisation + Background;
}
