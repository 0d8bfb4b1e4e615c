// CSV detection dataset -> DetectionDataset. Format of keras-retinanet's CSVGenerator: one row per box,
// `path,x1,y1,x2,y2,class` in absolute pixels (XYXY), a row `path,,,,,` for an image with no objects,
// and a `class,id` mapping file.
using System.Globalization;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>Reads a CSV detection dataset into a <see cref="DetectionDataset"/>.</summary>
internal static class CsvDatasetReader
{
    private static readonly string[] Columns = { "path", "x1", "y1", "x2", "y2", "class" };

    /// <summary>Reads <paramref name="csvPath"/>; see <see cref="DetectionDataset.Load"/>.</summary>
    public static DetectionDataset Read(string csvPath, string? classesPath)
    {
        string dir = Path.GetDirectoryName(csvPath)!;
        if (new FileInfo(csvPath).Length == 0)
            throw new DataFormatException(csvPath, null, null, "file is empty (0 bytes)");
        string? mapping = classesPath != null ? Path.GetFullPath(classesPath)
            : File.Exists(Path.Combine(dir, "classes.csv")) && !Path.GetFileName(csvPath).Equals("classes.csv", StringComparison.OrdinalIgnoreCase)
                ? Path.Combine(dir, "classes.csv") : null;

        var order = new List<string>();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        var rows = new List<(string Path, int Line, double[] Box, string Class)>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(csvPath))
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            var cols = CsvLine.Split(line, out bool unterminated);
            string record = $"line {lineNo}";
            if (unterminated)
                throw new DataFormatException(csvPath, record, null, $"unterminated quote (\") in '{line}'");
            if (cols.Count != 6)
                throw new DataFormatException(csvPath, record, null, $"expected 6 columns (path,x1,y1,x2,y2,class), found {cols.Count}: '{line}'");
            if (rows.Count == 0 && order.Count == 0 && cols[0].Trim().Equals("path", StringComparison.OrdinalIgnoreCase)
                && cols[1].Trim().Equals("x1", StringComparison.OrdinalIgnoreCase))
                continue; // header row
            string p = cols[0].Trim();
            if (p.Length == 0)
                throw new DataFormatException(csvPath, record, "path", "empty image path");
            string full = Path.GetFullPath(Path.Combine(dir, p));
            if (firstLine.TryAdd(full, lineNo)) order.Add(full);
            bool allEmpty = cols.Skip(1).All(c => c.Trim().Length == 0);
            if (allEmpty) continue; // an image with no objects
            var box = new double[4];
            for (int j = 0; j < 4; j++)
            {
                string t = cols[j + 1].Trim();
                if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out box[j]))
                    throw new DataFormatException(csvPath, record, Columns[j + 1],
                        t.Length == 0 ? "empty (leave all five box fields empty for an image with no objects)" : $"expected a number, found '{t}'");
            }
            string cls = cols[5].Trim();
            if (cls.Length == 0)
                throw new DataFormatException(csvPath, record, "class", "empty class name");
            rows.Add((full, lineNo, box, cls));
        }

        if (order.Count > 0 && !order.Any(File.Exists))
        {
            string folder = Path.GetDirectoryName(order[0])!;
            if (!Directory.Exists(folder))
                throw new DataFormatException(csvPath, $"line {firstLine[order[0]]}", "path", $"image folder not found: '{folder}' (paths are relative to the csv's folder)");
        }

        var categories = mapping != null ? ClassMappingFile.Read(mapping) : ClassMappingFile.FromNames(rows.Select(r => r.Class));
        var idOfName = categories.ToDictionary(c => c.Name, c => c.Id, StringComparer.Ordinal);
        var problems = new List<DataProblem>();
        var boxes = order.ToDictionary(p => p, _ => new List<DetectionBox>(), StringComparer.Ordinal);
        var sources = order.ToDictionary(p => p, _ => new List<DataSource>(), StringComparer.Ordinal);
        long annotationId = 0;
        foreach (var r in rows)
        {
            annotationId++;
            string record = $"line {r.Line}";
            if (!idOfName.TryGetValue(r.Class, out long cat))
            {
                problems.Add(new DataProblem(DataProblemKind.UnknownCategory, csvPath, record, "class", $"'{r.Class}'",
                    $"class is not in the mapping file {mapping}; the box is left out"));
                continue;
            }
            boxes[r.Path].Add(new DetectionBox(annotationId, (float)r.Box[0], (float)r.Box[1], (float)r.Box[2], (float)r.Box[3], cat));
            sources[r.Path].Add(new DataSource(csvPath, record, "x1,y1,x2,y2", "class", "path"));
        }

        var images = new DetectionImage[order.Count];
        var imageSources = new DataSource[order.Count];
        for (int i = 0; i < order.Count; i++)
        {
            string p = order[i];
            int w = 0, h = 0;
            if (File.Exists(p))
            {
                try { (w, h) = ImageIO.ReadSize(p); } catch (DataFormatException) { }
            }
            images[i] = new DetectionImage(i + 1, p, w, h, boxes[p]);
            imageSources[i] = new DataSource(csvPath, $"line {firstLine[p]}", "x1,y1,x2,y2", "class", "path");
        }
        return new DetectionDataset(csvPath, DatasetFormat.Csv, new CategoryMap(categories), images, imageSources,
            order.Select(p => sources[p].ToArray()).ToArray(), problems);
    }
}
