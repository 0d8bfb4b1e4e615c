// One field of a JSON record read by StreamingJsonFile: what JsonElement.TryGetProperty + GetInt64/GetDouble/
// GetRawText gave before (kind, number, raw text for error messages), captured from a Utf8JsonReader while the
// record's bytes are in the buffer, so that a record's fields are checked in a fixed order whatever their order in
// the file. When a field occurs twice in a record the last one counts, as with JsonElement.TryGetProperty.
using System.Text;
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>The value of one field of a buffered JSON record: absent (<see cref="Kind"/> = None), a number, or anything
/// else kept as its raw JSON text range. For a "bbox"-like array of numbers see <see cref="TryCaptureNumbers"/>.</summary>
internal struct JsonField
{
    /// <summary>The value's first token (None = the field is absent; StartObject/StartArray for containers).</summary>
    public JsonTokenType Kind;
    /// <summary>The value's raw JSON text: start offset in the record's data span.</summary>
    public int RawStart;
    /// <summary>The value's raw JSON text: end offset (exclusive) in the record's data span.</summary>
    public int RawEnd;
    /// <summary>The number, when <see cref="IsDouble"/> (a finite double; 1e400 is not one).</summary>
    public double Double;
    /// <summary>The number as an exact int64, when <see cref="IsInt64"/> (no fraction or exponent in the text).</summary>
    public long Int64;
    /// <summary>The value is a number that fits a finite double.</summary>
    public bool IsDouble;
    /// <summary>The value is an integer literal that fits an int64.</summary>
    public bool IsInt64;
    /// <summary>For <see cref="TryCaptureNumbers"/>: how many elements the array had.</summary>
    public int Count;
    /// <summary>For <see cref="TryCaptureNumbers"/>: every element was a number that fits a finite double.</summary>
    public bool AllFinite;

    /// <summary>True when the field occurred in the record.</summary>
    public readonly bool Present => Kind != JsonTokenType.None;

    /// <summary>Captures the value after its property name: reads its first token and, for an object or array,
    /// skips to its end.</summary>
    /// <param name="reader">Positioned on the property name; on success, on the value's last token.</param>
    /// <param name="field">The captured value.</param>
    /// <returns>False when the buffer ends inside the value.</returns>
    public static bool TryCapture(ref Utf8JsonReader reader, out JsonField field)
    {
        field = default;
        if (!reader.Read()) return false;
        field.Kind = reader.TokenType;
        field.RawStart = (int)reader.TokenStartIndex;
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            if (!reader.TrySkip()) return false;
        }
        else if (reader.TokenType == JsonTokenType.Number)
        {
            // An integer literal converts to the same double parsing would give (both round to nearest); ids skip the parse.
            field.IsInt64 = reader.TryGetInt64(out field.Int64);
            if (field.IsInt64) field.Double = field.Int64;
            field.IsDouble = field.IsInt64 || (reader.TryGetDouble(out field.Double) && double.IsFinite(field.Double));
        }
        field.RawEnd = (int)reader.BytesConsumed;
        return true;
    }

    /// <summary>Captures an array of numbers after its property name, keeping the first <paramref name="values"/>.Length
    /// of them; anything else is captured as by <see cref="TryCapture"/>.</summary>
    /// <param name="reader">Positioned on the property name; on success, on the value's last token.</param>
    /// <param name="values">Receives the first numbers (elements that are not finite numbers leave 0 and clear
    /// <see cref="AllFinite"/>).</param>
    /// <param name="field">The captured value, with <see cref="Count"/> and <see cref="AllFinite"/>.</param>
    /// <returns>False when the buffer ends inside the value.</returns>
    public static bool TryCaptureNumbers(ref Utf8JsonReader reader, scoped Span<double> values, out JsonField field)
    {
        field = default;
        if (!reader.Read()) return false;
        field.Kind = reader.TokenType;
        field.RawStart = (int)reader.TokenStartIndex;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            if (reader.TokenType == JsonTokenType.StartObject && !reader.TrySkip()) return false;
            field.RawEnd = (int)reader.BytesConsumed;
            return true;
        }
        field.AllFinite = true;
        while (true)
        {
            if (!reader.Read()) return false;
            if (reader.TokenType == JsonTokenType.EndArray) break;
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out double d) && double.IsFinite(d))
            {
                if (field.Count < values.Length) values[field.Count] = d;
            }
            else
            {
                field.AllFinite = false;
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip()) return false;
            }
            field.Count++;
        }
        field.RawEnd = (int)reader.BytesConsumed;
        return true;
    }

    /// <summary>The value's raw JSON text, as JsonElement.GetRawText gave it (strings keep their quotes).</summary>
    /// <param name="data">The record's data span the field was captured from.</param>
    public readonly string Raw(ReadOnlySpan<byte> data) => Encoding.UTF8.GetString(data[RawStart..RawEnd]);

    /// <summary>The name JsonElement.ValueKind gives a value starting with this token.</summary>
    public static string KindName(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "Object",
        JsonTokenType.StartArray => "Array",
        JsonTokenType.String => "String",
        JsonTokenType.Number => "Number",
        JsonTokenType.True => "True",
        JsonTokenType.False => "False",
        JsonTokenType.Null => "Null",
        _ => token.ToString(),
    };

    /// <summary>The value as an int64: an integer literal, or a number with no fractional part below 9e15 in
    /// magnitude (so 1.0 and 1e2 are accepted).</summary>
    /// <param name="value">The integer.</param>
    /// <returns>False when the field is absent or not such a number (see <see cref="Int64Error"/>).</returns>
    public readonly bool TryGetInt64(out long value)
    {
        if (IsInt64)
        {
            value = Int64;
            return true;
        }
        bool ok = IsDouble && Double == Math.Floor(Double) && Math.Abs(Double) < 9e15;
        value = ok ? (long)Double : 0;
        return ok;
    }

    /// <summary>The error for a field that <see cref="TryGetInt64"/> refused: "missing" or "expected an integer, found RAW".</summary>
    /// <param name="data">The record's data span.</param>
    /// <param name="path">The file.</param>
    /// <param name="record">The record (for example "result #3").</param>
    /// <param name="name">The field name.</param>
    public readonly DataFormatException Int64Error(ReadOnlySpan<byte> data, string path, string record, string name) =>
        Present ? new DataFormatException(path, record, name, $"expected an integer, found {Raw(data)}")
                : new DataFormatException(path, record, name, "missing");

    /// <summary>The value as an int64 (see <see cref="TryGetInt64"/>).</summary>
    /// <param name="data">The record's data span.</param>
    /// <param name="path">The file, for errors.</param>
    /// <param name="record">The record, for errors.</param>
    /// <param name="name">The field name, for errors.</param>
    /// <exception cref="DataFormatException">The field is missing or not an integer (<see cref="Int64Error"/>).</exception>
    public readonly long GetInt64(ReadOnlySpan<byte> data, string path, string record, string name) =>
        TryGetInt64(out long v) ? v : throw Int64Error(data, path, record, name);

    /// <summary>The value as a string.</summary>
    /// <param name="data">The record's data span.</param>
    /// <param name="path">The file, for errors.</param>
    /// <param name="record">The record, for errors.</param>
    /// <param name="name">The field name, for errors.</param>
    /// <exception cref="DataFormatException">The field is missing or not a string ("expected a string, found RAW").</exception>
    public readonly string GetString(ReadOnlySpan<byte> data, string path, string record, string name)
    {
        if (!Present)
            throw new DataFormatException(path, record, name, "missing");
        if (Kind != JsonTokenType.String)
            throw new DataFormatException(path, record, name, $"expected a string, found {Raw(data)}");
        return StringValue(data, path);
    }

    /// <summary>The value of a string field (<see cref="Kind"/> must be String), unescaped.</summary>
    /// <param name="data">The record's data span.</param>
    /// <param name="path">The file, for errors.</param>
    /// <exception cref="DataFormatException">The string is not valid UTF-8.</exception>
    public readonly string StringValue(ReadOnlySpan<byte> data, string path)
    {
        var reader = new Utf8JsonReader(data[RawStart..RawEnd]);
        reader.Read();
        return StreamingJsonFile.GetString(ref reader, path);
    }
}
