// JSON Lines (jsonlines.org) of detections, one line per image, appended as each image finishes: what `retina detect`
// streams beside its COCO results JSON, so a folder of any size needs memory for one batch only, a killed run keeps
// every finished image, and a re-run skips them. Boxes and scores are written as CocoJson writes results (XYWH pixels
// rounded to 1e-3, scores to 1e-5), so the COCO file built from the lines holds the same numbers.
using System.Buffers;
using System.Text;
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>One line of a detections JSON Lines file: an image and its detections.</summary>
/// <param name="ImageId">The image id the detections carry in the COCO results JSON.</param>
/// <param name="FileName">The image file (full path).</param>
/// <param name="Width">Image width, pixels.</param>
/// <param name="Height">Image height, pixels.</param>
/// <param name="Drawn">The drawn copy's path relative to the output folder, or null.</param>
/// <param name="Detections">The image's detections (XYWH pixels of the image, original category ids), best first.</param>
public sealed record ImageDetections(long ImageId, string FileName, int Width, int Height, string? Drawn, IReadOnlyList<CocoResult> Detections);

/// <summary>
/// Appends <see cref="ImageDetections"/> to a JSON Lines file, one line per image written and flushed to the operating
/// system as soon as it is added (a killed process loses at most the line being written, which
/// <see cref="DetectionsJsonLines.RemoveIncompleteLastLine"/> removes). Line format:
/// <c>{"image_id":1,"file_name":"/data/a.jpg","width":640,"height":480,"drawn":"a.detections.png","detections":[{"category_id":3,"bbox":[x,y,w,h],"score":0.9}]}</c>.
/// </summary>
public sealed class DetectionsJsonLinesWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly ArrayBufferWriter<byte> _buffer = new();

    /// <summary>Opens <paramref name="path"/> for appending (created when missing).</summary>
    /// <exception cref="IOException">The file cannot be opened for writing; the message names it.</exception>
    public DetectionsJsonLinesWriter(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        try { _stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot write '{Path}': {e.Message}", e);
        }
    }

    /// <summary>The file (full path).</summary>
    public string Path { get; }

    /// <summary>Writes one line for <paramref name="image"/> and flushes it.</summary>
    public void Append(ImageDetections image)
    {
        ArgumentNullException.ThrowIfNull(image);
        _buffer.Clear();
        using (var w = new Utf8JsonWriter(_buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("image_id", image.ImageId);
            w.WriteString("file_name", image.FileName);
            w.WriteNumber("width", image.Width);
            w.WriteNumber("height", image.Height);
            if (image.Drawn != null) w.WriteString("drawn", image.Drawn);
            w.WriteStartArray("detections");
            foreach (var r in image.Detections)
            {
                w.WriteStartObject();
                w.WriteNumber("category_id", r.CategoryId);
                w.WriteStartArray("bbox");
                w.WriteNumberValue(Math.Round(r.X, 3)); w.WriteNumberValue(Math.Round(r.Y, 3));
                w.WriteNumberValue(Math.Round(r.Width, 3)); w.WriteNumberValue(Math.Round(r.Height, 3));
                w.WriteEndArray();
                w.WriteNumber("score", Math.Round(r.Score, 5));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        _stream.Write(_buffer.WrittenSpan);
        _stream.WriteByte((byte)'\n');
        _stream.Flush();
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();
}

/// <summary>Reads detections JSON Lines files written by <see cref="DetectionsJsonLinesWriter"/>, and turns them into COCO results JSON.</summary>
public static class DetectionsJsonLines
{
    /// <summary>
    /// Removes a last line that has no line end (what a process killed while writing it leaves), so that appending
    /// continues on a line of its own.
    /// </summary>
    /// <returns>The number of bytes removed (0 when the file ends with a line end, is empty or does not exist).</returns>
    public static long RemoveIncompleteLastLine(string path)
    {
        if (!File.Exists(path)) return 0;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        long length = fs.Length, end = length;
        var one = new byte[1];
        while (end > 0)
        {
            fs.Position = end - 1;
            fs.ReadExactly(one);
            if (one[0] == (byte)'\n') break;
            end--;
        }
        if (end < length) fs.SetLength(end);
        return length - end;
    }

    /// <summary>Streams the lines of <paramref name="path"/> (blank lines are skipped); only the line being read is in memory.</summary>
    /// <exception cref="DataFormatException">A line is not JSON or lacks a field; the message names the file, the line and the field.</exception>
    public static IEnumerable<ImageDetections> Read(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        using var reader = new StreamReader(full, Encoding.UTF8);
        int number = 0;
        while (reader.ReadLine() is string line)
        {
            number++;
            if (line.Length == 0) continue;
            yield return Parse(full, number, line);
        }
    }

    private static ImageDetections Parse(string path, int number, string line)
    {
        string record = $"line {number}";
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, record, null, $"expected an object, found {root.ValueKind}");
            JsonElement Need(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v
                : throw new DataFormatException(path, record, name, "missing");
            long id = Need(root, "image_id").GetInt64();
            string file = Need(root, "file_name").GetString() ?? throw new DataFormatException(path, record, "file_name", "is null");
            int width = Need(root, "width").GetInt32(), height = Need(root, "height").GetInt32();
            string? drawn = root.TryGetProperty("drawn", out var d) ? d.GetString() : null;
            var dets = new List<CocoResult>();
            foreach (var r in Need(root, "detections").EnumerateArray())
            {
                var box = Need(r, "bbox");
                if (box.GetArrayLength() != 4) throw new DataFormatException(path, record, "bbox", $"expected 4 numbers, found {box.GetRawText()}");
                dets.Add(new CocoResult(id, Need(r, "category_id").GetInt64(), box[0].GetDouble(), box[1].GetDouble(), box[2].GetDouble(), box[3].GetDouble(),
                    Need(r, "score").GetDouble()));
            }
            return new ImageDetections(id, file, width, height, drawn, dets);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new DataFormatException(path, record, null, $"not a detections line: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes the COCO results JSON of every line of <paramref name="jsonLinesPath"/> atomically (CocoJson.WriteResults,
    /// each record with its image's <c>file_name</c>), reading the lines as it writes: memory does not grow with the file.
    /// </summary>
    /// <returns>The number of images and of detections written.</returns>
    /// <exception cref="DataFormatException">A line of <paramref name="jsonLinesPath"/> is malformed.</exception>
    public static (int Images, long Detections) WriteCocoResults(string jsonLinesPath, string cocoPath)
    {
        int images = 0;
        long detections = 0;
        string current = "";
        IEnumerable<CocoResult> All()
        {
            foreach (var image in Read(jsonLinesPath))
            {
                images++;
                current = image.FileName;
                foreach (var r in image.Detections)
                {
                    detections++;
                    yield return r;
                }
            }
        }
        CocoJson.WriteResults(cocoPath, All(), _ => current);
        return (images, detections);
    }
}
