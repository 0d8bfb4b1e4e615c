// Strict checks of a COCO ground-truth file before `retina eval --gt` scores anything. pycocotools silently leaves out
// annotations whose image or category is not listed and lets a later duplicate id overwrite an earlier one; either
// way the printed AP is wrong without a word, so RetinaSharp refuses such a file and names the record and field.
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.IO;

namespace RetinaSharp.Evaluation;

/// <summary>Validation of COCO ground truth for evaluation (the checks pycocotools does not make).</summary>
public static class CocoGroundTruthValidation
{
    /// <summary>
    /// Throws on the first problem that would silently change the AP: a duplicate image id or category id, an annotation
    /// whose image_id or category_id is not listed, an annotation bbox with a negative width or height, a negative area.
    /// </summary>
    /// <param name="groundTruth">The instances to check.</param>
    /// <param name="source">The file they were read from, named in the message.</param>
    /// <exception cref="DataFormatException">The first problem found, naming the record (image, category or annotation id),
    /// the field and the offending value.</exception>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static void Validate(CocoInstances groundTruth, string source)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        ArgumentNullException.ThrowIfNull(source);
        var images = new HashSet<long>();
        foreach (var im in groundTruth.Images)
        {
            if (!images.Add(im.Id))
                throw new DataFormatException(source, $"image id {im.Id}", "id", $"duplicate image id {im.Id} (file_name '{im.FileName}')");
        }
        var categories = new HashSet<long>();
        foreach (var c in groundTruth.Categories)
        {
            if (!categories.Add(c.Id))
                throw new DataFormatException(source, $"category id {c.Id}", "id", $"duplicate category id {c.Id} (name '{c.Name}')");
        }
        foreach (var a in groundTruth.Annotations)
        {
            string record = $"annotation id {a.Id}";
            if (!images.Contains(a.ImageId))
                throw new DataFormatException(source, record, "image_id", $"image id {a.ImageId} is not in 'images'");
            if (!categories.Contains(a.CategoryId))
                throw new DataFormatException(source, record, "category_id", $"category id {a.CategoryId} is not in 'categories'");
            if (!(a.Width >= 0) || !(a.Height >= 0))
                throw new DataFormatException(source, record, "bbox", string.Create(CultureInfo.InvariantCulture,
                    $"negative width or height: [{a.X}, {a.Y}, {a.Width}, {a.Height}]"));
            if (!(a.Area >= 0))
                throw new DataFormatException(source, record, "area", string.Create(CultureInfo.InvariantCulture, $"negative area: {a.Area}"));
        }
    }
}
