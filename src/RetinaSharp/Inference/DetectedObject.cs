// The convenience API's result types: one detected object (class, score, box) and an axis-aligned XYXY box in pixels of
// the input image, as torchvision's detection models return them ("boxes", "labels", "scores"), with class names attached.
using System.Globalization;

namespace RetinaSharp.Inference;

/// <summary>An axis-aligned box, XYXY absolute pixels of the input image (x2 = x1 + width, no "+1").</summary>
/// <param name="X1">Left edge, pixels.</param>
/// <param name="Y1">Top edge, pixels.</param>
/// <param name="X2">Right edge, pixels.</param>
/// <param name="Y2">Bottom edge, pixels.</param>
public readonly record struct BoxXyxy(float X1, float Y1, float X2, float Y2)
{
    /// <summary>x2 - x1, pixels.</summary>
    public float Width => X2 - X1;

    /// <summary>y2 - y1, pixels.</summary>
    public float Height => Y2 - Y1;

    /// <summary>Width x height, square pixels (0 for an empty box).</summary>
    public float Area => Math.Max(0, Width) * Math.Max(0, Height);

    /// <summary>"(x1, y1, x2, y2)" with one decimal, invariant culture.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"({X1:0.0}, {Y1:0.0}, {X2:0.0}, {Y2:0.0})");
}

/// <summary>One detected object.</summary>
/// <param name="ClassName">The class name (stored in model.rsnet by <c>retina train</c>, or given in <see cref="DetectorOptions.Categories"/>;
/// "class i" when the model file has none, as a torchvision .pth).</param>
/// <param name="ClassId">The category id of the training data (COCO <c>category_id</c>); for a model without stored classes, the label i.</param>
/// <param name="ClassIndex">The model's contiguous class index 0..K-1.</param>
/// <param name="Score">Sigmoid score in [0, 1].</param>
/// <param name="Box">The box, XYXY pixels of the input image.</param>
public sealed record DetectedObject(string ClassName, long ClassId, int ClassIndex, float Score, BoxXyxy Box)
{
    /// <summary>"name 0.93 at (x1, y1, x2, y2)".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{ClassName} {Score:0.00} at {Box}");
}
