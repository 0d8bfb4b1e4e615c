// A detection dataset in memory: images, their ground-truth boxes (XYXY absolute pixels, original category
// ids) and the category map. Loads COCO instances json, Pascal VOC folders and CSV files; the equivalent of
// torchvision's references/detection CocoDetection + ConvertCocoPolysToMask (bbox XYWH -> XYXY, iscrowd kept)
// and of detectron2's load_voc_instances (VOC 1-based pixel corners: x1 - 1, y1 - 1).
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>The annotation format a <see cref="DetectionDataset"/> was read from.</summary>
public enum DatasetFormat
{
    /// <summary>A COCO instances json file.</summary>
    Coco,
    /// <summary>A Pascal VOC folder (Annotations/*.xml, JPEGImages/, ImageSets/Main/*.txt).</summary>
    Voc,
    /// <summary>A CSV file of <c>path,x1,y1,x2,y2,class</c> rows with a <c>class,id</c> mapping file.</summary>
    Csv,
    /// <summary>Built in memory.</summary>
    Memory,
}

/// <summary>
/// Images with ground-truth boxes and a <see cref="CategoryMap"/>. <see cref="Load"/> keeps the data as read,
/// problems included (degenerate boxes, unknown categories, duplicate ids...); <see cref="DatasetCheck"/> lists
/// them and repairs them. Images without boxes are kept (negative examples).
/// </summary>
public sealed class DetectionDataset
{
    private readonly DataSource[] _imageSources;
    private readonly DataSource[][] _boxSources;

    /// <summary>Builds a dataset in memory (for example from generated data).</summary>
    /// <param name="source">A description of where the data comes from (shown in messages).</param>
    /// <param name="categories">The category map.</param>
    /// <param name="images">The images; file paths should be absolute.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public DetectionDataset(string source, CategoryMap categories, IReadOnlyList<DetectionImage> images)
        : this(source, DatasetFormat.Memory, categories, images,
            images.Select(im => new DataSource(source, $"image id {im.Id}")).ToArray(),
            images.Select(im => im.Boxes.Select(b => new DataSource(source, $"annotation id {b.AnnotationId}")).ToArray()).ToArray(),
            System.Array.Empty<DataProblem>())
    {
    }

    internal DetectionDataset(string source, DatasetFormat format, CategoryMap categories, IReadOnlyList<DetectionImage> images,
        DataSource[] imageSources, DataSource[][] boxSources, IReadOnlyList<DataProblem> loadProblems)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(images);
        Source = source;
        Format = format;
        Categories = categories;
        Images = images;
        _imageSources = imageSources;
        _boxSources = boxSources;
        LoadProblems = loadProblems;
    }

    /// <summary>The path the dataset was loaded from (absolute), or the description given to the constructor.</summary>
    public string Source { get; }

    /// <summary>The format it was read from.</summary>
    public DatasetFormat Format { get; }

    /// <summary>Original category ids &lt;-&gt; contiguous class indices 0..K-1.</summary>
    public CategoryMap Categories { get; }

    /// <summary>The images in file order (COCO "images" order, VOC split-file order, CSV first-appearance order).</summary>
    public IReadOnlyList<DetectionImage> Images { get; }

    /// <summary>
    /// Problems found while reading that could not be kept in <see cref="Images"/>: annotations whose image id
    /// has no image record, CSV/VOC boxes of a class missing from the mapping file (those boxes are left out),
    /// duplicate category ids. <see cref="DatasetCheck.Check"/> reports them with the rest.
    /// </summary>
    public IReadOnlyList<DataProblem> LoadProblems { get; }

    /// <summary>The total number of boxes.</summary>
    public int BoxCount => Images.Sum(i => i.Boxes.Count);

    internal DataSource ImageSource(int imageIndex) => _imageSources[imageIndex];

    internal DataSource BoxSource(int imageIndex, int boxIndex) => _boxSources[imageIndex][boxIndex];

    /// <summary>
    /// Loads a dataset, detecting the format from <paramref name="path"/>:
    /// <list type="bullet">
    /// <item>a <c>*.json</c> file: COCO instances; each <c>file_name</c> is looked up relative to the json's folder,
    /// then relative to its <c>images/</c> subfolder; <c>bbox</c> XYWH becomes XYXY.</item>
    /// <item>a folder with <c>Annotations/</c>: Pascal VOC; images in <c>JPEGImages/</c>; the image list is
    /// <c>ImageSets/Main/&lt;split&gt;.txt</c> (default <c>trainval</c> when present, else every xml file);
    /// VOC's 1-based inclusive corners become x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax;
    /// the 20 VOC classes get ids 1..20 in the usual order when every name is one of them, otherwise the sorted
    /// names get ids 1..K, unless a <c>class,id</c> mapping file is given.</item>
    /// <item>a <c>*.csv</c> file: rows <c>path,x1,y1,x2,y2,class</c> (XYXY pixels; empty box fields mark an image
    /// with no objects; paths relative to the csv's folder; an optional header row), with the mapping file
    /// <c>classes.csv</c> (<c>class,id</c> rows) beside it or given by <paramref name="classesPath"/>; without one
    /// the sorted class names get ids 1..K.</item>
    /// </list>
    /// </summary>
    /// <param name="path">The json file, the VOC folder or the csv file.</param>
    /// <param name="split">VOC only: the split name (ImageSets/Main/&lt;split&gt;.txt).</param>
    /// <param name="classesPath">VOC and CSV: an explicit <c>class,id</c> mapping file.</param>
    /// <exception cref="DataFormatException">The file or folder is missing, empty, truncated or malformed (wrong CSV column count, bad XML,
    /// a non-numeric coordinate), or the image folder does not exist; the message names the file, the record and the field.</exception>
    public static DetectionDataset Load(string path, string? split = null, string? classesPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            if (Directory.Exists(Path.Combine(full, "Annotations")))
                return VocDatasetReader.Read(full, split, classesPath);
            var jsons = Directory.EnumerateFiles(full, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            var instances = jsons.Where(n => n!.StartsWith("instances", StringComparison.OrdinalIgnoreCase)).ToList();
            string hint = (instances.Count > 0 ? instances : jsons).Take(2).Select(n => Path.Combine(full, n!)).ToList() is { Count: > 0 } guess
                ? $"; did you mean {string.Join(" or ", guess)}?" : "";
            throw new DataFormatException(full, null, null,
                $"is a folder without Annotations/ (expected a COCO .json file, a Pascal VOC folder or a .csv file){hint}");
        }
        if (!File.Exists(full))
            throw new DataFormatException(full, null, null, "dataset not found (expected a COCO .json file, a Pascal VOC folder or a .csv file)");
        string ext = Path.GetExtension(full).ToLowerInvariant();
        return ext switch
        {
            ".json" => CocoDatasetReader.Read(full),
            ".csv" => CsvDatasetReader.Read(full, classesPath),
            _ => throw new DataFormatException(full, null, null, $"unknown dataset format '{ext}' (expected .json for COCO, .csv, or a Pascal VOC folder)"),
        };
    }

    /// <summary>
    /// The dataset as COCO instances: original image and category ids, boxes as XYWH (x1, y1, x2 - x1, y2 - y1),
    /// area = w * h, <c>iscrowd</c> set for crowd and VOC-difficult boxes (both are ignored in matching).
    /// This is the ground truth the COCO evaluator reads.
    /// </summary>
    /// <param name="relativeTo">When given, file names are written relative to this folder (for a json saved there); otherwise absolute.</param>
    public CocoInstances ToCoco(string? relativeTo = null)
    {
        var images = Images.Select(im => new CocoImage(im.Id,
            relativeTo is null ? im.FilePath : Path.GetRelativePath(Path.GetFullPath(relativeTo), im.FilePath).Replace('\\', '/'),
            im.Width, im.Height)).ToList();
        var annotations = new List<CocoAnnotation>(BoxCount);
        foreach (var im in Images)
            foreach (var b in im.Boxes)
            {
                double w = (double)b.X2 - b.X1, h = (double)b.Y2 - b.Y1;
                annotations.Add(new CocoAnnotation(b.AnnotationId, im.Id, b.CategoryId, b.X1, b.Y1, w, h, w * h, b.IsCrowd || b.Difficult));
            }
        return new CocoInstances(images, annotations, Categories.Categories);
    }

    /// <summary>A copy with other images (and the per-record sources of the kept ones); used by repair.</summary>
    internal DetectionDataset With(IReadOnlyList<DetectionImage> images, DataSource[] imageSources, DataSource[][] boxSources, CategoryMap? categories = null) =>
        new(Source, Format, categories ?? Categories, images, imageSources, boxSources, System.Array.Empty<DataProblem>());
}
