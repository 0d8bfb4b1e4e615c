// One image of a detection dataset with its ground truth: the image record of a COCO instances file,
// a Pascal VOC annotation file, or the rows of a CSV dataset that name the same image.
namespace RetinaSharp.Data;

/// <summary>An image and its ground-truth boxes.</summary>
/// <param name="Id">The image id: COCO's "id"; for VOC the digits of the file stem (or a running number); for CSV a running number from 1.</param>
/// <param name="FilePath">Absolute path of the image file.</param>
/// <param name="Width">Width in pixels as declared by the annotation (COCO "width", VOC size/width; CSV: read from the file header; 0 when unreadable).</param>
/// <param name="Height">Height in pixels, likewise.</param>
/// <param name="Boxes">The boxes; empty for an image with no objects (kept as a negative example).</param>
public sealed record DetectionImage(long Id, string FilePath, int Width, int Height, IReadOnlyList<DetectionBox> Boxes);
