// Where each image and box of a DetectionDataset came from (file, record, field), so that `retina data check`
// and the loaders name the place to fix. Internal bookkeeping of the dataset readers.
namespace RetinaSharp.Data;

/// <summary>The annotation file and record of one image or box.</summary>
/// <param name="File">The annotation file (COCO json, VOC xml, CSV).</param>
/// <param name="Record">The record, for example "annotation id 17" or "line 4".</param>
/// <param name="BoxField">The name of the box field in that format ("bbox", "bndbox", "x1,y1,x2,y2").</param>
/// <param name="CategoryField">The name of the category field ("category_id", "name", "class").</param>
/// <param name="ImageField">The name of the field holding the image path ("file_name", "filename", "path").</param>
internal sealed record DataSource(string File, string Record, string BoxField = "bbox", string CategoryField = "category_id", string ImageField = "file_name");
