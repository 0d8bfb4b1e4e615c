// A problem found in a detection dataset by `retina data check`: what, where (file, record, field) and the
// offending value, so that a user can find and fix it.
namespace RetinaSharp.Data;

/// <summary>The kinds of problem <see cref="DatasetCheck"/> reports.</summary>
public enum DataProblemKind
{
    /// <summary>The image file does not exist.</summary>
    MissingImage,
    /// <summary>The image file exists but cannot be decoded.</summary>
    UnreadableImage,
    /// <summary>The width or height in the annotation differs from the image file's.</summary>
    SizeMismatch,
    /// <summary>A box with x2 &lt;= x1, y2 &lt;= y1, or a NaN/infinite coordinate.</summary>
    DegenerateBox,
    /// <summary>A box that extends beyond the image (x1 &lt; 0, y1 &lt; 0, x2 &gt; width or y2 &gt; height).</summary>
    BoxOutsideImage,
    /// <summary>A box whose category (id or class name) is not among the dataset's categories.</summary>
    UnknownCategory,
    /// <summary>Two images, annotations or categories share an id.</summary>
    DuplicateId,
    /// <summary>An annotation refers to an image id that no image record has.</summary>
    UnknownImage,
    /// <summary>The dataset has no images at all (an empty list, a CSV with only a header): nothing to train or evaluate on.</summary>
    EmptyDataset,
}

/// <summary>One problem of a dataset.</summary>
/// <param name="Kind">What kind of problem.</param>
/// <param name="File">The file holding the bad record (annotation file, or the image file for image problems).</param>
/// <param name="Record">The record: for example "image id 3", "annotation id 17", "line 4", "object #2".</param>
/// <param name="Field">The field: for example "bbox", "width", "category_id", "file_name".</param>
/// <param name="Value">The offending value as text.</param>
/// <param name="Message">What is wrong, in words.</param>
public sealed record DataProblem(DataProblemKind Kind, string File, string Record, string Field, string Value, string Message)
{
    /// <summary>"FILE: RECORD: field 'FIELD' = VALUE: MESSAGE".</summary>
    public override string ToString() => $"{File}: {Record}: field '{Field}' = {Value}: {Message}";
}
