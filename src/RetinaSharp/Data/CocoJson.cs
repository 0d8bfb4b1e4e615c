// The COCO "instances" and "results" JSON formats (cocodataset.org/#format-data), read with errors that
// name the file, the record and the field, and written atomically. One home for COCO JSON in RetinaSharp:
// the COCO dataset loader, the evaluator and `retina detect` all go through here.
using System.Globalization;
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>A COCO image record.</summary>
/// <param name="Id">The image id (any int64 value).</param>
/// <param name="FileName">Path relative to the image folder.</param>
/// <param name="Width">Width in pixels as declared in the JSON.</param>
/// <param name="Height">Height in pixels as declared in the JSON.</param>
public sealed record CocoImage(long Id, string FileName, int Width, int Height);

/// <summary>A COCO category record.</summary>
/// <param name="Id">The category id as in the file (COCO uses 1-90 with gaps).</param>
/// <param name="Name">The category name.</param>
/// <param name="Supercategory">The supercategory, or an empty string.</param>
public sealed record CocoCategory(long Id, string Name, string Supercategory = "");

/// <summary>A COCO instance annotation. The box is XYWH in absolute pixels, as in the file.</summary>
/// <param name="Id">The annotation id (any int64 value; none is a sentinel).</param>
/// <param name="ImageId">The image it belongs to.</param>
/// <param name="CategoryId">The original category id.</param>
/// <param name="X">Left edge, pixels.</param>
/// <param name="Y">Top edge, pixels.</param>
/// <param name="Width">Width, pixels.</param>
/// <param name="Height">Height, pixels.</param>
/// <param name="Area">The "area" field (segment area in COCO); w*h when absent.</param>
/// <param name="IsCrowd">The "iscrowd" flag: crowd regions are ignored for matching and evaluation.</param>
public sealed record CocoAnnotation(long Id, long ImageId, long CategoryId, double X, double Y, double Width, double Height, double Area, bool IsCrowd);

/// <summary>One detection of a COCO results file. The box is XYWH in absolute pixels of the original image.</summary>
/// <param name="ImageId">The image id of the ground truth.</param>
/// <param name="CategoryId">The original category id.</param>
/// <param name="X">Left edge, pixels.</param>
/// <param name="Y">Top edge, pixels.</param>
/// <param name="Width">Width, pixels (>= 0).</param>
/// <param name="Height">Height, pixels (>= 0).</param>
/// <param name="Score">Confidence in [0, 1] (any finite value is accepted).</param>
public sealed record CocoResult(long ImageId, long CategoryId, double X, double Y, double Width, double Height, double Score);

/// <summary>A whole COCO instances file.</summary>
/// <param name="Images">The image records, in file order.</param>
/// <param name="Annotations">The annotations, in file order.</param>
/// <param name="Categories">The categories, in file order.</param>
public sealed record CocoInstances(IReadOnlyList<CocoImage> Images, IReadOnlyList<CocoAnnotation> Annotations, IReadOnlyList<CocoCategory> Categories);

/// <summary>Reads and writes COCO instances and results JSON.</summary>
public static class CocoJson
{
    /// <summary>Reads a COCO instances file (images, annotations, categories).</summary>
    /// <param name="path">The JSON file.</param>
    /// <exception cref="DataFormatException">The file is missing, empty, truncated, not JSON, or a record lacks a field or has a wrong value; the message names the file, the record and the field.</exception>
    public static CocoInstances ReadInstances(string path)
    {
        using var doc = Open(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new DataFormatException(path, null, null, $"expected a JSON object with images, annotations and categories, found {root.ValueKind}");
        var images = new List<CocoImage>();
        foreach (var (e, i) in Array(path, root, "images"))
        {
            long id = GetInt64(path, e, $"images[{i}]", "id");
            string rec = $"image id {id}";
            images.Add(new CocoImage(id, GetString(path, e, rec, "file_name"),
                GetPositiveInt32(path, e, rec, "width"), GetPositiveInt32(path, e, rec, "height")));
        }
        var categories = new List<CocoCategory>();
        foreach (var (e, i) in Array(path, root, "categories"))
        {
            long id = GetInt64(path, e, $"categories[{i}]", "id");
            string rec = $"category id {id}";
            string super = e.TryGetProperty("supercategory", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
            categories.Add(new CocoCategory(id, GetString(path, e, rec, "name"), super));
        }
        var annotations = new List<CocoAnnotation>();
        if (root.TryGetProperty("annotations", out _))
        {
            foreach (var (e, i) in Array(path, root, "annotations"))
            {
                long id = GetInt64(path, e, $"annotations[{i}]", "id");
                string rec = $"annotation id {id}";
                var (x, y, w, h) = GetBbox(path, e, rec);
                double area = GetArea(path, e, rec, w * h);
                bool crowd = GetCrowd(path, e, rec);
                annotations.Add(new CocoAnnotation(id, GetInt64(path, e, rec, "image_id"), GetInt64(path, e, rec, "category_id"), x, y, w, h, area, crowd));
            }
        }
        return new CocoInstances(images, annotations, categories);
    }

    /// <summary>Reads a COCO results file: a JSON array of {image_id, category_id, bbox [x,y,w,h], score}.</summary>
    /// <param name="path">The JSON file.</param>
    /// <exception cref="DataFormatException">Missing/empty/invalid file, a missing field, a non-numeric score, a bbox that is not 4 finite numbers or has a negative width or height.</exception>
    public static IReadOnlyList<CocoResult> ReadResults(string path)
    {
        using var doc = Open(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(path, null, null, $"expected a JSON array of detections, found {root.ValueKind}");
        var results = new List<CocoResult>(root.GetArrayLength());
        int i = 0;
        foreach (var e in root.EnumerateArray())
        {
            string rec = $"result #{i}";
            long imageId = GetInt64(path, e, rec, "image_id");
            rec = $"result #{i} (image_id {imageId})";
            long cat = GetInt64(path, e, rec, "category_id");
            var (x, y, w, h) = GetBbox(path, e, rec);
            if (w < 0 || h < 0)
                throw new DataFormatException(path, rec, "bbox", $"negative width or height: [{Fmt(x)}, {Fmt(y)}, {Fmt(w)}, {Fmt(h)}]");
            if (!e.TryGetProperty("score", out var s))
                throw new DataFormatException(path, rec, "score", "missing");
            if (s.ValueKind != JsonValueKind.Number || !double.IsFinite(s.GetDouble()))
                throw new DataFormatException(path, rec, "score", $"not a finite number: {s.GetRawText()}");
            results.Add(new CocoResult(imageId, cat, x, y, w, h, s.GetDouble()));
            i++;
        }
        return results;
    }

    /// <summary>Writes a COCO instances file atomically (temp file + rename).</summary>
    /// <param name="path">Destination.</param>
    /// <param name="instances">What to write; boxes are written as XYWH.</param>
    public static void WriteInstances(string path, CocoInstances instances)
    {
        AtomicFile.Write(path, s =>
        {
            using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = false });
            w.WriteStartObject();
            w.WriteStartArray("images");
            foreach (var im in instances.Images)
            {
                w.WriteStartObject();
                w.WriteNumber("id", im.Id); w.WriteString("file_name", im.FileName);
                w.WriteNumber("width", im.Width); w.WriteNumber("height", im.Height);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("annotations");
            foreach (var a in instances.Annotations)
            {
                w.WriteStartObject();
                w.WriteNumber("id", a.Id); w.WriteNumber("image_id", a.ImageId); w.WriteNumber("category_id", a.CategoryId);
                WriteBbox(w, a.X, a.Y, a.Width, a.Height);
                w.WriteNumber("area", a.Area); w.WriteNumber("iscrowd", a.IsCrowd ? 1 : 0);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("categories");
            foreach (var c in instances.Categories)
            {
                w.WriteStartObject();
                w.WriteNumber("id", c.Id); w.WriteString("name", c.Name); w.WriteString("supercategory", c.Supercategory);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <summary>Writes a COCO results file atomically: an array of {image_id, category_id, bbox, score}.</summary>
    /// <param name="path">Destination.</param>
    /// <param name="results">Detections with XYWH boxes in original-image pixels and original category ids.</param>
    public static void WriteResults(string path, IEnumerable<CocoResult> results)
    {
        AtomicFile.Write(path, s =>
        {
            using var w = new Utf8JsonWriter(s);
            w.WriteStartArray();
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", r.ImageId); w.WriteNumber("category_id", r.CategoryId);
                WriteBbox(w, r.X, r.Y, r.Width, r.Height);
                w.WriteNumber("score", Math.Round(r.Score, 5));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    private static void WriteBbox(Utf8JsonWriter w, double x, double y, double width, double height)
    {
        w.WriteStartArray("bbox");
        w.WriteNumberValue(Math.Round(x, 3)); w.WriteNumberValue(Math.Round(y, 3));
        w.WriteNumberValue(Math.Round(width, 3)); w.WriteNumberValue(Math.Round(height, 3));
        w.WriteEndArray();
    }

    private static JsonDocument Open(string path)
    {
        if (Directory.Exists(path))
            throw new DataFormatException(path, null, null, "is a folder, expected a JSON file");
        if (!File.Exists(path))
            throw new DataFormatException(path, null, null, "file not found");
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length == 0)
            throw new DataFormatException(path, null, null, "file is empty (0 bytes)");
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new DataFormatException(path, e.LineNumber is long l ? $"line {l + 1}" : null, null,
                $"not valid JSON (truncated or corrupt): {e.Message}", e);
        }
    }

    private static IEnumerable<(JsonElement Element, int Index)> Array(string path, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var arr))
            throw new DataFormatException(path, null, name, "missing");
        if (arr.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(path, null, name, $"expected an array, found {arr.ValueKind}");
        int i = 0;
        foreach (var e in arr.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, $"{name}[{i}]", null, $"expected an object, found {e.ValueKind}");
            yield return (e, i++);
        }
    }

    private static long GetInt64(string path, JsonElement e, string record, string field)
    {
        if (!e.TryGetProperty(field, out var v))
            throw new DataFormatException(path, record, field, "missing");
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt64(out long l)) return l;
            double d = v.GetDouble();
            if (d == Math.Floor(d) && Math.Abs(d) < 9e15) return (long)d;
        }
        throw new DataFormatException(path, record, field, $"expected an integer, found {v.GetRawText()}");
    }

    private static int GetPositiveInt32(string path, JsonElement e, string record, string field)
    {
        long v = GetInt64(path, e, record, field);
        if (v < 1 || v > int.MaxValue)
            throw new DataFormatException(path, record, field, $"expected a positive number of pixels (1 to {int.MaxValue}), found {e.GetProperty(field).GetRawText()}");
        return (int)v;
    }

    // "area": absent or null -> width * height; otherwise a finite number (a string is never silently replaced; a negative
    // area comes with a degenerate box, which `data check` reports and `eval --gt` refuses).
    private static double GetArea(string path, JsonElement e, string record, double boxArea)
    {
        if (!e.TryGetProperty("area", out var a) || a.ValueKind == JsonValueKind.Null) return boxArea;
        if (a.ValueKind == JsonValueKind.Number && a.TryGetDouble(out double d) && double.IsFinite(d)) return d;
        throw new DataFormatException(path, record, "area", $"expected a finite number, found {a.GetRawText()}");
    }

    // "iscrowd": absent or null -> false; true/false or the numbers 0/1 (pycocotools' convention).
    private static bool GetCrowd(string path, JsonElement e, string record)
    {
        if (!e.TryGetProperty("iscrowd", out var c) || c.ValueKind == JsonValueKind.Null) return false;
        if (c.ValueKind == JsonValueKind.True) return true;
        if (c.ValueKind == JsonValueKind.False) return false;
        if (c.ValueKind == JsonValueKind.Number && c.TryGetDouble(out double d) && (d == 0 || d == 1)) return d == 1;
        throw new DataFormatException(path, record, "iscrowd", $"expected 0 or 1 (or true/false), found {c.GetRawText()}");
    }

    private static string GetString(string path, JsonElement e, string record, string field)
    {
        if (!e.TryGetProperty(field, out var v))
            throw new DataFormatException(path, record, field, "missing");
        if (v.ValueKind != JsonValueKind.String)
            throw new DataFormatException(path, record, field, $"expected a string, found {v.GetRawText()}");
        return v.GetString()!;
    }

    private static (double X, double Y, double W, double H) GetBbox(string path, JsonElement e, string record)
    {
        if (!e.TryGetProperty("bbox", out var b))
            throw new DataFormatException(path, record, "bbox", "missing");
        if (b.ValueKind != JsonValueKind.Array || b.GetArrayLength() != 4)
            throw new DataFormatException(path, record, "bbox", $"expected [x, y, width, height], found {b.GetRawText()}");
        var v = new double[4];
        int i = 0;
        foreach (var n in b.EnumerateArray())
        {
            if (n.ValueKind != JsonValueKind.Number || !double.IsFinite(n.GetDouble()))
                throw new DataFormatException(path, record, "bbox", $"expected 4 finite numbers, found {b.GetRawText()}");
            v[i++] = n.GetDouble();
        }
        return (v[0], v[1], v[2], v[3]);
    }

    private static string Fmt(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
