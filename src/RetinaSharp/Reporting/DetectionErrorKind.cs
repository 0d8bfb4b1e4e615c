// The kinds of detector error, after Hoiem et al., "Diagnosing Error in Object Detectors" (ECCV 2012) and Bolya et
// al., "TIDE: A General Toolbox for Identifying Object Detection Errors" (ECCV 2020): duplicate, wrong class, poor
// localisation, background; every kind is decided on top of the COCO evaluator's own matching.
namespace RetinaSharp.Reporting;

/// <summary>What one detection is at one IoU threshold, from the COCO matching (area "all", 100 detections per image).</summary>
public enum DetectionErrorKind : byte
{
    /// <summary>Not evaluated: beyond the 100 highest-scored detections of its image and category.</summary>
    NotEvaluated = 0,
    /// <summary>A true positive: matched to a ground-truth object of its class.</summary>
    TruePositive = 1,
    /// <summary>Matched to a crowd region (or outside the area range): neither true nor false positive.</summary>
    Ignored = 2,
    /// <summary>A false positive overlapping an object of its class by at least the IoU threshold, which a
    /// higher-scored detection already took.</summary>
    Duplicate = 3,
    /// <summary>A false positive overlapping an object of another class by at least the IoU threshold.</summary>
    WrongClass = 4,
    /// <summary>A false positive overlapping an object of its class by at least <see cref="DetectionErrors.BackgroundIou"/>
    /// but less than the IoU threshold.</summary>
    PoorLocalisation = 5,
    /// <summary>A false positive on background: less than <see cref="DetectionErrors.BackgroundIou"/> with every object of
    /// its class and below the threshold with every other object.</summary>
    Background = 6,
}
