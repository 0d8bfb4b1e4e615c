// The anchors file written by `retina data anchors --fit` and read by `retina train --anchors FILE`:
// {"format": "retinasharp-anchors/1", "anchorSizes": [[32, 40, 50], ... 5 levels], "aspectRatios": [0.5, 1, 2], ...};
// other fields (the resize and thresholds it was fitted for, coverage before/after) are informative.
using System.Text.Json;
using RetinaSharp.IO;
using RetinaSharp.Modeling;

namespace RetinaSharp.Analysis;

/// <summary>Reads and writes anchor files (sizes per level P3..P7 and aspect ratios).</summary>
public static class AnchorFile
{
    /// <summary>The value of the "format" field.</summary>
    public const string Format = "retinasharp-anchors/1";

    /// <summary>Writes <paramref name="settings"/> (and, when given, the coverage before and after the fit) to <paramref name="path"/>, atomically.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Write(string path, AnchorSettings settings, AnchorCoverageBin? before = null, AnchorCoverageBin? after = null, string? fittedOn = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("format", Format);
            WriteFields(w, settings);
            if (fittedOn != null) w.WriteString("fittedOn", fittedOn);
            if (before != null) w.WriteNumber("positiveFractionBefore", Math.Round(before.PositiveFraction, 6));
            if (after != null) w.WriteNumber("positiveFractionAfter", Math.Round(after.PositiveFraction, 6));
            w.WriteEndObject();
        });
    }

    internal static void WriteSettings(Utf8JsonWriter w, AnchorSettings s)
    {
        w.WriteStartObject();
        WriteFields(w, s);
        w.WriteEndObject();
    }

    private static void WriteFields(Utf8JsonWriter w, AnchorSettings s)
    {
        w.WriteStartArray("anchorSizes");
        foreach (var level in s.Sizes)
        {
            w.WriteStartArray();
            foreach (var v in level) w.WriteNumberValue(v);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartArray("aspectRatios");
        foreach (var r in s.AspectRatios) w.WriteNumberValue(Math.Round(r, 6));
        w.WriteEndArray();
        w.WriteNumber("minSize", s.MinSize);
        w.WriteNumber("maxSize", s.MaxSize);
        w.WriteNumber("sizeDivisible", s.SizeDivisible);
        w.WriteNumber("fgIouThreshold", s.FgIouThreshold);
        w.WriteNumber("bgIouThreshold", s.BgIouThreshold);
    }

    /// <summary>Reads the anchor sizes and aspect ratios of an anchors file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>Sizes per level (5 levels, the same positive count each) and ratios (non-empty, positive).</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The JSON is malformed or a field is missing or wrong; the message names the file and field.</exception>
    public static (int[][] Sizes, double[] AspectRatios) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"anchors file '{full}' does not exist", full);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(full)); }
        catch (JsonException e) { throw new DataFormatException(full, null, null, $"not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DataFormatException(full, null, null, "expected a JSON object");
            if (root.TryGetProperty("format", out var f) && (f.ValueKind != JsonValueKind.String || f.GetString() != Format))
                throw new DataFormatException(full, null, "format", $"expected \"{Format}\", got {f.GetRawText()}");
            if (!root.TryGetProperty("anchorSizes", out var sizesEl)) throw new DataFormatException(full, null, "anchorSizes", "missing (5 lists of sizes in pixels, P3..P7)");
            if (sizesEl.ValueKind != JsonValueKind.Array || sizesEl.GetArrayLength() != 5)
                throw new DataFormatException(full, null, "anchorSizes", $"expected 5 lists (P3..P7), got {Describe(sizesEl)}");
            var sizes = new int[5][];
            int l = 0;
            foreach (var level in sizesEl.EnumerateArray())
            {
                string field = $"anchorSizes[{l}]";
                if (level.ValueKind != JsonValueKind.Array || level.GetArrayLength() == 0)
                    throw new DataFormatException(full, null, field, $"expected a non-empty list of sizes, got {Describe(level)}");
                sizes[l] = [.. level.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i > 0 ? i
                    : throw new DataFormatException(full, null, field, $"sizes must be positive integers (pixels), got {v.GetRawText()}"))];
                if (sizes[l].Length != sizes[0].Length)
                    throw new DataFormatException(full, null, field, $"has {sizes[l].Length} sizes; every level needs the same count as level 0 ({sizes[0].Length})");
                l++;
            }
            if (!root.TryGetProperty("aspectRatios", out var ratiosEl)) throw new DataFormatException(full, null, "aspectRatios", "missing (height / width ratios)");
            if (ratiosEl.ValueKind != JsonValueKind.Array || ratiosEl.GetArrayLength() == 0)
                throw new DataFormatException(full, null, "aspectRatios", $"expected a non-empty list, got {Describe(ratiosEl)}");
            double[] ratios = [.. ratiosEl.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double r) && double.IsFinite(r) && r > 0 ? r
                : throw new DataFormatException(full, null, "aspectRatios", $"ratios must be positive numbers (height / width), got {v.GetRawText()}"))];
            return (sizes, ratios);
        }
    }

    /// <summary><paramref name="options"/> with the anchor sizes and ratios of the file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is malformed (see <see cref="Read"/>).</exception>
    public static RetinaNetOptions ApplyTo(string path, RetinaNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (sizes, ratios) = Read(path);
        return options with { AnchorSizes = sizes, AspectRatios = ratios };
    }

    private static string Describe(JsonElement e) => e.ValueKind == JsonValueKind.Array ? $"a list of {e.GetArrayLength()}" : e.GetRawText();
}
