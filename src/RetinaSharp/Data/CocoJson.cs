// The COCO "instances" and "results" JSON formats (cocodataset.org/#format-data), read with errors that
// name the file, the record and the field, and written atomically. One home for COCO JSON in RetinaSharp:
// the COCO dataset loader, the evaluator and `retina detect` all go through here. Files are streamed record by
// record (StreamingJsonFile) with the checks JsonElement-based reading had: same record, field and value in errors.
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
    /// <summary>Reads a COCO instances file (images, annotations, categories), streaming it: the file is never held
    /// whole in memory, only the record being read. Other top-level fields (info, licenses) and other record fields
    /// (segmentation, ...) are skipped; "annotations" may be absent.</summary>
    /// <param name="path">The JSON file.</param>
    /// <returns>The records in file order.</returns>
    /// <exception cref="DataFormatException">The file is missing, empty, truncated, not JSON, or a record lacks a field or has a wrong value; the message names the file, the record and the field.
    /// Errors are reported in file order (the first wrong record found), a missing "images" or "categories" at the end.</exception>
    public static CocoInstances ReadInstances(string path) => ReadInstances(path, StreamingJsonFile.DefaultBufferSize);

    /// <summary><see cref="ReadInstances(string)"/> with a given initial buffer size (tests use tiny ones to cross buffer refills).</summary>
    internal static CocoInstances ReadInstances(string path, int bufferSize)
    {
        using var json = StreamingJsonFile.Open(path, bufferSize);
        var root = json.ReadToken();
        if (root != JsonTokenType.StartObject)
            throw new DataFormatException(path, null, null, $"expected a JSON object with images, annotations and categories, found {JsonField.KindName(root)}");
        List<CocoImage>? images = null;
        List<CocoCategory>? categories = null;
        List<CocoAnnotation>? annotations = null;
        while (json.ReadPropertyName() is string name)
        {
            switch (name)
            {
                case "images":
                    images = ReadRecords(json, name, (ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoImage v) => TryParseImage(path, ref r, data, i, out v));
                    break;
                case "categories":
                    categories = ReadRecords(json, name, (ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoCategory v) => TryParseCategory(path, ref r, data, i, out v));
                    break;
                case "annotations":
                    annotations = ReadRecords(json, name, (ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoAnnotation v) => TryParseAnnotation(path, ref r, data, i, out v));
                    break;
                default:
                    json.ReadToken();
                    json.SkipValue();
                    break;
            }
        }
        json.ReadEnd();
        if (images == null)
            throw new DataFormatException(path, null, "images", "missing");
        if (categories == null)
            throw new DataFormatException(path, null, "categories", "missing");
        return new CocoInstances(images, annotations ?? [], categories);
    }

    /// <summary>Reads a COCO results file: a JSON array of {image_id, category_id, bbox [x,y,w,h], score}, streaming it
    /// (one record in memory at a time besides the list returned). Other fields of a record are skipped.</summary>
    /// <param name="path">The JSON file.</param>
    /// <returns>The detections in file order.</returns>
    /// <exception cref="DataFormatException">Missing/empty/truncated/invalid file, a record that is not an object, a missing field,
    /// an image_id or category_id that is not an integer (1.0 and 1e2 are), a score that is not a finite number, a bbox that is
    /// not 4 finite numbers or has a negative width or height. The message names the file, the record ("result #3 (image_id 42)"),
    /// the field and the offending value; the first wrong record in file order is reported.</exception>
    public static IReadOnlyList<CocoResult> ReadResults(string path) => ReadResults(path, StreamingJsonFile.DefaultBufferSize);

    /// <summary><see cref="ReadResults(string)"/> with a given initial buffer size (tests use tiny ones to cross buffer refills).</summary>
    internal static IReadOnlyList<CocoResult> ReadResults(string path, int bufferSize)
    {
        using var json = StreamingJsonFile.Open(path, bufferSize);
        var root = json.ReadToken();
        if (root != JsonTokenType.StartArray)
            throw new DataFormatException(path, null, null, $"expected a JSON array of detections, found {JsonField.KindName(root)}");
        // About 90 bytes a record in a compact results file: reserving for 80 avoids growing the list (8 bytes a slot).
        var results = new List<CocoResult>((int)Math.Min(json.Length / 80, 1 << 24));
        json.ReadArray((ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoResult v) => TryParseResult(path, ref r, data, i, out v), results);
        json.ReadEnd();
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
    /// <param name="fileNameOf">Optional: the image file of an image id, written as each record's extra <c>file_name</c>
    /// field (COCO readers, pycocotools' loadRes included, ignore it), so a record says which file it is about.</param>
    public static void WriteResults(string path, IEnumerable<CocoResult> results, Func<long, string>? fileNameOf = null)
    {
        AtomicFile.Write(path, s =>
        {
            using var w = new Utf8JsonWriter(s);
            w.WriteStartArray();
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", r.ImageId);
                if (fileNameOf != null) w.WriteString("file_name", fileNameOf(r.ImageId));
                w.WriteNumber("category_id", r.CategoryId);
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

    // The array value of a top-level field of an instances file, parsed record by record.
    private static List<T> ReadRecords<T>(StreamingJsonFile json, string name, JsonElementParser<T> parse)
    {
        var token = json.ReadToken();
        if (token != JsonTokenType.StartArray)
            throw new DataFormatException(json.Path, null, name, $"expected an array, found {JsonField.KindName(token)}");
        var list = new List<T>();
        json.ReadArray(parse, list);
        return list;
    }

    private static DataFormatException NotAnObject(string path, string record, JsonTokenType token) =>
        new(path, record, null, $"expected an object, found {JsonField.KindName(token)}");

    private static bool TryParseResult(string path, ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoResult result)
    {
        result = null!;
        if (r.TokenType != JsonTokenType.StartObject)
            throw NotAnObject(path, $"result #{i}", r.TokenType);
        JsonField imageId = default, categoryId = default, bbox = default, score = default;
        Span<double> box = stackalloc double[4];
        while (true)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndObject) break;
            bool complete =
                r.ValueTextEquals("image_id"u8) ? JsonField.TryCapture(ref r, out imageId)
                : r.ValueTextEquals("category_id"u8) ? JsonField.TryCapture(ref r, out categoryId)
                : r.ValueTextEquals("bbox"u8) ? JsonField.TryCaptureNumbers(ref r, box, out bbox)
                : r.ValueTextEquals("score"u8) ? JsonField.TryCapture(ref r, out score)
                : JsonField.TryCapture(ref r, out _);
            if (!complete) return false;
        }
        // Checked in this order whatever the order in the file; record names are built only for an error.
        if (!imageId.TryGetInt64(out long img))
            throw imageId.Int64Error(data, path, $"result #{i}", "image_id");
        if (!categoryId.TryGetInt64(out long cat))
            throw categoryId.Int64Error(data, path, ResultRecord(i, img), "category_id");
        if (!IsBbox(bbox))
            throw BboxError(bbox, data, path, ResultRecord(i, img));
        if (box[2] < 0 || box[3] < 0)
            throw new DataFormatException(path, ResultRecord(i, img), "bbox", $"negative width or height: [{Fmt(box[0])}, {Fmt(box[1])}, {Fmt(box[2])}, {Fmt(box[3])}]");
        if (!score.Present)
            throw new DataFormatException(path, ResultRecord(i, img), "score", "missing");
        if (!score.IsDouble)
            throw new DataFormatException(path, ResultRecord(i, img), "score", $"not a finite number: {score.Raw(data)}");
        result = new CocoResult(img, cat, box[0], box[1], box[2], box[3], score.Double);
        return true;
    }

    private static string ResultRecord(int index, long imageId) => $"result #{index} (image_id {imageId})";

    private static bool TryParseImage(string path, ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoImage image)
    {
        image = null!;
        if (r.TokenType != JsonTokenType.StartObject)
            throw NotAnObject(path, $"images[{i}]", r.TokenType);
        JsonField id = default, fileName = default, width = default, height = default;
        while (true)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndObject) break;
            bool complete =
                r.ValueTextEquals("id"u8) ? JsonField.TryCapture(ref r, out id)
                : r.ValueTextEquals("file_name"u8) ? JsonField.TryCapture(ref r, out fileName)
                : r.ValueTextEquals("width"u8) ? JsonField.TryCapture(ref r, out width)
                : r.ValueTextEquals("height"u8) ? JsonField.TryCapture(ref r, out height)
                : JsonField.TryCapture(ref r, out _);
            if (!complete) return false;
        }
        long imageId = id.GetInt64(data, path, $"images[{i}]", "id");
        string rec = $"image id {imageId}";
        image = new CocoImage(imageId, fileName.GetString(data, path, rec, "file_name"),
            GetPositiveInt32(width, data, path, rec, "width"), GetPositiveInt32(height, data, path, rec, "height"));
        return true;
    }

    private static bool TryParseCategory(string path, ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoCategory category)
    {
        category = null!;
        if (r.TokenType != JsonTokenType.StartObject)
            throw NotAnObject(path, $"categories[{i}]", r.TokenType);
        JsonField id = default, name = default, super = default;
        while (true)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndObject) break;
            bool complete =
                r.ValueTextEquals("id"u8) ? JsonField.TryCapture(ref r, out id)
                : r.ValueTextEquals("name"u8) ? JsonField.TryCapture(ref r, out name)
                : r.ValueTextEquals("supercategory"u8) ? JsonField.TryCapture(ref r, out super)
                : JsonField.TryCapture(ref r, out _);
            if (!complete) return false;
        }
        long categoryId = id.GetInt64(data, path, $"categories[{i}]", "id");
        string rec = $"category id {categoryId}";
        // "supercategory": a string, anything else (or absent) reads as "".
        string supercategory = super.Kind == JsonTokenType.String ? super.StringValue(data, path) : "";
        category = new CocoCategory(categoryId, name.GetString(data, path, rec, "name"), supercategory);
        return true;
    }

    private static bool TryParseAnnotation(string path, ref Utf8JsonReader r, ReadOnlySpan<byte> data, int i, out CocoAnnotation annotation)
    {
        annotation = null!;
        if (r.TokenType != JsonTokenType.StartObject)
            throw NotAnObject(path, $"annotations[{i}]", r.TokenType);
        JsonField id = default, imageId = default, categoryId = default, bbox = default, area = default, crowd = default;
        Span<double> box = stackalloc double[4];
        while (true)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndObject) break;
            bool complete =
                r.ValueTextEquals("id"u8) ? JsonField.TryCapture(ref r, out id)
                : r.ValueTextEquals("image_id"u8) ? JsonField.TryCapture(ref r, out imageId)
                : r.ValueTextEquals("category_id"u8) ? JsonField.TryCapture(ref r, out categoryId)
                : r.ValueTextEquals("bbox"u8) ? JsonField.TryCaptureNumbers(ref r, box, out bbox)
                : r.ValueTextEquals("area"u8) ? JsonField.TryCapture(ref r, out area)
                : r.ValueTextEquals("iscrowd"u8) ? JsonField.TryCapture(ref r, out crowd)
                : JsonField.TryCapture(ref r, out _);
            if (!complete) return false;
        }
        long annotationId = id.GetInt64(data, path, $"annotations[{i}]", "id");
        string rec = $"annotation id {annotationId}";
        if (!IsBbox(bbox))
            throw BboxError(bbox, data, path, rec);
        double areaValue = GetArea(area, data, path, rec, box[2] * box[3]);
        bool isCrowd = GetCrowd(crowd, data, path, rec);
        annotation = new CocoAnnotation(annotationId, imageId.GetInt64(data, path, rec, "image_id"), categoryId.GetInt64(data, path, rec, "category_id"),
            box[0], box[1], box[2], box[3], areaValue, isCrowd);
        return true;
    }

    private static int GetPositiveInt32(in JsonField field, ReadOnlySpan<byte> data, string path, string record, string name)
    {
        long v = field.GetInt64(data, path, record, name);
        if (v < 1 || v > int.MaxValue)
            throw new DataFormatException(path, record, name, $"expected a positive number of pixels (1 to {int.MaxValue}), found {field.Raw(data)}");
        return (int)v;
    }

    // "area": absent or null -> width * height; otherwise a finite number (a string is never silently replaced; a negative
    // area comes with a degenerate box, which `data check` reports and `eval --gt` refuses).
    private static double GetArea(in JsonField area, ReadOnlySpan<byte> data, string path, string record, double boxArea)
    {
        if (!area.Present || area.Kind == JsonTokenType.Null) return boxArea;
        if (area.IsDouble) return area.Double;
        throw new DataFormatException(path, record, "area", $"expected a finite number, found {area.Raw(data)}");
    }

    // "iscrowd": absent or null -> false; true/false or the numbers 0/1 (pycocotools' convention).
    private static bool GetCrowd(in JsonField crowd, ReadOnlySpan<byte> data, string path, string record)
    {
        switch (crowd.Kind)
        {
            case JsonTokenType.None or JsonTokenType.Null or JsonTokenType.False: return false;
            case JsonTokenType.True: return true;
            case JsonTokenType.Number when crowd.IsDouble && (crowd.Double == 0 || crowd.Double == 1): return crowd.Double == 1;
            default: throw new DataFormatException(path, record, "iscrowd", $"expected 0 or 1 (or true/false), found {crowd.Raw(data)}");
        }
    }

    // "bbox": an array of exactly 4 finite numbers [x, y, width, height] (its values are in the span given to TryCaptureNumbers).
    private static bool IsBbox(in JsonField bbox) => bbox.Kind == JsonTokenType.StartArray && bbox.Count == 4 && bbox.AllFinite;

    private static DataFormatException BboxError(in JsonField bbox, ReadOnlySpan<byte> data, string path, string record) =>
        !bbox.Present ? new DataFormatException(path, record, "bbox", "missing")
        : bbox.Kind != JsonTokenType.StartArray || bbox.Count != 4 ? new DataFormatException(path, record, "bbox", $"expected [x, y, width, height], found {bbox.Raw(data)}")
        : new DataFormatException(path, record, "bbox", $"expected 4 finite numbers, found {bbox.Raw(data)}");

    private static string Fmt(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
