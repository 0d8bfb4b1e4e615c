// The object-size ranges of COCO evaluation (pycocotools Params.areaRng / areaRngLbl), by ground-truth "area".
namespace RetinaSharp.Evaluation;

/// <summary>
/// A COCO object-size range. An object belongs to it when <c>Min &lt;= area &lt;= Max</c> (both ends inclusive, as in
/// pycocotools' <c>evaluateImg</c>, so an area of exactly 32² is both "small" and "medium").
/// </summary>
/// <param name="Label">"all", "small", "medium" or "large": the label printed in the summary.</param>
/// <param name="Min">Smallest area in the range, square pixels.</param>
/// <param name="Max">Largest area in the range, square pixels.</param>
public sealed record CocoAreaRange(string Label, double Min, double Max)
{
    /// <summary>True when <paramref name="area"/> (square pixels) lies outside [<see cref="Min"/>, <see cref="Max"/>].</summary>
    public bool Excludes(double area) => area < Min || area > Max;
}
