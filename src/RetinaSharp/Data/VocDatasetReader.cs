// Pascal VOC folder -> DetectionDataset. Behaviour matched: detectron2's load_voc_instances (image list from
// ImageSets/Main/<split>.txt, one Annotations/<id>.xml per image, corners shifted by -1 on x1/y1 because VOC
// counts pixels from 1 and includes xmax/ymax) and torchvision's VOCDetection layout.
using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>Reads a Pascal VOC folder into a <see cref="DetectionDataset"/>.</summary>
internal static class VocDatasetReader
{
    /// <summary>The 20 Pascal VOC classes in their usual order; they get ids 1..20.</summary>
    public static readonly string[] VocClasses =
    {
        "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    };

    private sealed record VocObject(string Name, bool Difficult, float X1, float Y1, float X2, float Y2, string Record);

    private sealed record VocFile(string XmlPath, string ImagePath, int Width, int Height, List<VocObject> Objects, string Stem);

    /// <summary>Reads the folder <paramref name="root"/>; see <see cref="DetectionDataset.Load"/>.</summary>
    public static DetectionDataset Read(string root, string? split, string? classesPath)
    {
        string annotations = Path.Combine(root, "Annotations");
        string jpegs = Path.Combine(root, "JPEGImages");
        if (!Directory.Exists(jpegs))
            throw new DataFormatException(root, null, "JPEGImages", $"image folder not found: '{jpegs}'");

        var stems = ListStems(root, annotations, split);
        var files = new List<VocFile>(stems.Count);
        foreach (var (stem, listFile, line) in stems)
        {
            string xml = Path.Combine(annotations, stem + ".xml");
            if (!File.Exists(xml))
                throw new DataFormatException(listFile, $"line {line}", null, $"annotation file not found: '{xml}'");
            files.Add(ReadXml(xml, jpegs, stem));
        }

        IReadOnlyList<CocoCategory> categories;
        if (classesPath != null) categories = ClassMappingFile.Read(Path.GetFullPath(classesPath));
        else
        {
            var names = files.SelectMany(f => f.Objects).Select(o => o.Name).Distinct().ToList();
            categories = names.All(n => VocClasses.Contains(n))
                ? VocClasses.Select((n, i) => new CocoCategory(i + 1, n)).ToList()
                : ClassMappingFile.FromNames(names);
        }
        var idOfName = categories.ToDictionary(c => c.Name, c => c.Id, StringComparer.Ordinal);

        var ids = ImageIds(files);
        var problems = new List<DataProblem>();
        var images = new DetectionImage[files.Count];
        var imageSources = new DataSource[files.Count];
        var boxSources = new DataSource[files.Count][];
        long annotationId = 0;
        for (int i = 0; i < files.Count; i++)
        {
            var f = files[i];
            var boxes = new List<DetectionBox>();
            var sources = new List<DataSource>();
            foreach (var o in f.Objects)
            {
                annotationId++;
                if (!idOfName.TryGetValue(o.Name, out long cat))
                {
                    problems.Add(new DataProblem(DataProblemKind.UnknownCategory, f.XmlPath, o.Record, "name", $"'{o.Name}'",
                        "class is not in the class mapping file; the box is left out"));
                    continue;
                }
                boxes.Add(new DetectionBox(annotationId, o.X1, o.Y1, o.X2, o.Y2, cat, IsCrowd: false, Difficult: o.Difficult));
                sources.Add(new DataSource(f.XmlPath, o.Record, "bndbox", "name", "filename"));
            }
            images[i] = new DetectionImage(ids[i], f.ImagePath, f.Width, f.Height, boxes);
            imageSources[i] = new DataSource(f.XmlPath, $"image '{f.Stem}' (id {ids[i]})", "bndbox", "name", "filename");
            boxSources[i] = sources.ToArray();
        }
        return new DetectionDataset(root, DatasetFormat.Voc, new CategoryMap(categories), images, imageSources, boxSources, problems);
    }

    private static List<(string Stem, string ListFile, int Line)> ListStems(string root, string annotations, string? split)
    {
        string main = Path.Combine(root, "ImageSets", "Main");
        string? listFile = split != null ? Path.Combine(main, split + ".txt")
            : File.Exists(Path.Combine(main, "trainval.txt")) ? Path.Combine(main, "trainval.txt") : null;
        var stems = new List<(string, string, int)>();
        if (listFile is null)
        {
            foreach (var xml in Directory.EnumerateFiles(annotations, "*.xml").Order(StringComparer.Ordinal))
                stems.Add((Path.GetFileNameWithoutExtension(xml), annotations, 0));
            return stems;
        }
        if (!File.Exists(listFile))
            throw new DataFormatException(listFile, null, null, $"split file not found (split '{split}')");
        int line = 0;
        foreach (var text in File.ReadLines(listFile))
        {
            line++;
            // Class-specific lists ("000005 -1") carry a second column; the image id is the first.
            string stem = text.Trim().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
            if (stem.Length > 0) stems.Add((stem, listFile, line));
        }
        return stems;
    }

    private static VocFile ReadXml(string xml, string jpegs, string stem)
    {
        XDocument doc;
        try { doc = XDocument.Load(xml); }
        catch (XmlException e)
        {
            throw new DataFormatException(xml, e.LineNumber > 0 ? $"line {e.LineNumber}" : null, null, $"not valid XML: {e.Message}", e);
        }
        var ann = doc.Root!;
        if (ann.Name.LocalName != "annotation")
            throw new DataFormatException(xml, null, ann.Name.LocalName, $"expected the root element <annotation> of a Pascal VOC file, found <{ann.Name.LocalName}>");
        string fileName = ann.Element("filename")?.Value.Trim() is { Length: > 0 } fn ? fn : stem + ".jpg";
        string imagePath = Path.GetFullPath(Path.Combine(jpegs, fileName));
        int width = 0, height = 0;
        var size = ann.Element("size");
        if (size != null)
        {
            width = Pixels(xml, "size/width", size.Element("width")?.Value);
            height = Pixels(xml, "size/height", size.Element("height")?.Value);
        }
        else if (File.Exists(imagePath))
        {
            try { (width, height) = ImageIO.ReadSize(imagePath); } catch (DataFormatException) { }
        }
        var objects = new List<VocObject>();
        int k = 0;
        foreach (var o in ann.Elements("object"))
        {
            k++;
            string name = o.Element("name")?.Value.Trim() ?? "";
            string record = $"object #{k} ('{name}')";
            if (name.Length == 0)
                throw new DataFormatException(xml, $"object #{k}", "name", "missing or empty class name");
            bool difficult = o.Element("difficult")?.Value.Trim() is "1" or "true";
            var bb = o.Element("bndbox") ?? throw new DataFormatException(xml, record, "bndbox", "missing");
            double xmin = Number(xml, record, "bndbox/xmin", bb.Element("xmin")?.Value);
            double ymin = Number(xml, record, "bndbox/ymin", bb.Element("ymin")?.Value);
            double xmax = Number(xml, record, "bndbox/xmax", bb.Element("xmax")?.Value);
            double ymax = Number(xml, record, "bndbox/ymax", bb.Element("ymax")?.Value);
            objects.Add(new VocObject(name, difficult, (float)(xmin - 1), (float)(ymin - 1), (float)xmax, (float)ymax, record));
        }
        return new VocFile(xml, imagePath, width, height, objects, stem);
    }

    // <size><width>/<height>: a whole number of pixels, 0 allowed (some VOC files write 0 for "unknown"; `data check`
    // then reports the size mismatch). NaN, fractions, negatives and values beyond int32 are refused, never cast.
    private static int Pixels(string file, string field, string? text)
    {
        double v = Number(file, "size", field, text);
        if (!(v >= 0 && v <= int.MaxValue && v == Math.Floor(v)))
            throw new DataFormatException(file, "size", field, $"expected a whole number of pixels (0 to {int.MaxValue}), found '{text!.Trim()}'");
        return (int)v;
    }

    private static double Number(string file, string record, string field, string? text)
    {
        if (text is null)
            throw new DataFormatException(file, record, field, "missing");
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
            throw new DataFormatException(file, record, field, $"expected a number, found '{text.Trim()}'");
        return v;
    }

    // VOC file stems are "000005" (2007) or "2008_000002" (2012): their digits make a unique int64 id;
    // otherwise (other names, collisions) images are numbered 1..N in list order.
    private static long[] ImageIds(List<VocFile> files)
    {
        var ids = new long[files.Count];
        var seen = new HashSet<long>();
        for (int i = 0; i < files.Count; i++)
        {
            string digits = files[i].Stem.Replace("_", "");
            if (digits.Length is 0 or > 18 || !digits.All(char.IsAsciiDigit) || !seen.Add(ids[i] = long.Parse(digits, CultureInfo.InvariantCulture)))
                return Enumerable.Range(1, files.Count).Select(x => (long)x).ToArray();
        }
        return ids;
    }
}
