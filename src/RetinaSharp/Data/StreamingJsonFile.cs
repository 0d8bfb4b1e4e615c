// A JSON file read token by token (System.Text.Json's Utf8JsonReader over a FileStream and a growing buffer), so
// that a 46 MB COCO results file or a multi-hundred-MB instances file is never held whole in memory. Accepts what
// JsonDocument.Parse accepted before (comments skipped, trailing commas allowed) plus a UTF-8 byte-order mark;
// syntax errors and truncation become DataFormatException naming the file and the line.
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>
/// Parses one element of a JSON array from a reader positioned on the element's first token.
/// </summary>
/// <typeparam name="T">What the element becomes.</typeparam>
/// <param name="reader">Positioned on the element's first token; on success, on its last token.</param>
/// <param name="data">The bytes the reader runs over: <see cref="Utf8JsonReader.TokenStartIndex"/> and
/// <see cref="Utf8JsonReader.BytesConsumed"/> index into it (for quoting raw values in error messages).</param>
/// <param name="index">The element's index in its array (0-based).</param>
/// <param name="value">The parsed element.</param>
/// <returns>False when the buffer ended inside the element (nothing is kept; the element is parsed again from its
/// first token once more of the file is buffered).</returns>
/// <exception cref="DataFormatException">The element is wrong; thrown only for data the reader has seen.</exception>
internal delegate bool JsonElementParser<T>(ref Utf8JsonReader reader, ReadOnlySpan<byte> data, int index, out T value);

/// <summary>
/// Reads a JSON file front to back through a buffer that holds at least the largest array element being parsed
/// (it starts at <c>bufferSize</c> bytes and doubles as needed), never the whole file.
/// </summary>
internal sealed class StreamingJsonFile : IDisposable
{
    /// <summary>The buffer size used unless a test asks for another: large enough that refills are rare.</summary>
    public const int DefaultBufferSize = 1 << 20;

    private static readonly JsonReaderOptions ReaderOptions = new() { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip };

    private readonly FileStream _file;
    private byte[] _buffer;
    private int _start;   // first byte not consumed yet
    private int _end;     // end of the bytes read from the file
    private bool _atEnd;  // the whole file has been read into the buffer at least once
    private JsonReaderState _state = new(ReaderOptions);

    private StreamingJsonFile(string path, FileStream file, int bufferSize)
    {
        Path = path;
        _file = file;
        _buffer = new byte[Math.Max(bufferSize, 16)];
    }

    /// <summary>The file, as given (for error messages).</summary>
    public string Path { get; }

    /// <summary>The file's length in bytes.</summary>
    public long Length => _file.Length;

    /// <summary>The type of the token read last by <see cref="ReadToken"/>.</summary>
    public JsonTokenType TokenType { get; private set; }

    /// <summary>The depth of the token read last by <see cref="ReadToken"/> (0 for the root value).</summary>
    public int TokenDepth { get; private set; }

    /// <summary>Opens a JSON file for reading.</summary>
    /// <param name="path">The file.</param>
    /// <param name="bufferSize">Initial buffer size in bytes (tests use tiny ones to exercise refills).</param>
    /// <exception cref="DataFormatException">The path is a folder, does not exist, is empty (0 bytes) or cannot be opened.</exception>
    public static StreamingJsonFile Open(string path, int bufferSize = DefaultBufferSize)
    {
        if (Directory.Exists(path))
            throw new DataFormatException(path, null, null, "is a folder, expected a JSON file");
        if (!File.Exists(path))
            throw new DataFormatException(path, null, null, "file not found");
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, null, null, $"cannot be read: {e.Message}", e);
        }
        if (file.Length == 0)
        {
            file.Dispose();
            throw new DataFormatException(path, null, null, "file is empty (0 bytes)");
        }
        var json = new StreamingJsonFile(path, file, bufferSize);
        json.Fill();
        if (json._end >= 3 && json._buffer[0] == 0xEF && json._buffer[1] == 0xBB && json._buffer[2] == 0xBF)
            json._start = 3; // UTF-8 byte-order mark
        return json;
    }

    /// <summary>Reads the next token (one token: a start token does not read what it contains).</summary>
    /// <returns>The token type, also in <see cref="TokenType"/>.</returns>
    /// <exception cref="DataFormatException">The JSON is invalid or ends early (truncated file).</exception>
    public JsonTokenType ReadToken() => ReadNext(wantName: false, out _);

    /// <summary>Reads a property name (the next token) as a string.</summary>
    /// <returns>The name, or null when the next token is not a property name (the end of the object).</returns>
    /// <exception cref="DataFormatException">The JSON is invalid or ends early.</exception>
    public string? ReadPropertyName()
    {
        ReadNext(wantName: true, out string? name);
        return name;
    }

    private JsonTokenType ReadNext(bool wantName, out string? name)
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _atEnd, _state);
            if (ReadOrThrow(ref reader))
            {
                TokenType = reader.TokenType;
                TokenDepth = reader.CurrentDepth;
                name = wantName && reader.TokenType == JsonTokenType.PropertyName ? GetString(ref reader, Path) : null;
                Commit(ref reader);
                return TokenType;
            }
            if (_atEnd)
                throw new DataFormatException(Path, null, null, "not valid JSON (truncated or corrupt): the file ends before the JSON value does");
            Fill();
        }
    }

    /// <summary>Skips the value whose first token was just read by <see cref="ReadToken"/> (nothing to do for a
    /// primitive; an object or array is read token by token, so it need not fit in the buffer).</summary>
    /// <exception cref="DataFormatException">The JSON is invalid or ends early.</exception>
    public void SkipValue()
    {
        if (TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
        int depth = TokenDepth;
        while (ReadToken() is not (JsonTokenType.EndObject or JsonTokenType.EndArray) || TokenDepth != depth) { }
    }

    /// <summary>Reads the elements of the array whose start token was just read by <see cref="ReadToken"/>,
    /// through to its end token, adding each parsed element to <paramref name="into"/>.</summary>
    /// <param name="parse">Parses one element; it sees a buffer that holds the whole element.</param>
    /// <param name="into">Receives the elements in file order.</param>
    /// <returns>The number of elements read.</returns>
    /// <exception cref="DataFormatException">Invalid JSON, truncation, or whatever <paramref name="parse"/> throws.</exception>
    public int ReadArray<T>(JsonElementParser<T> parse, ICollection<T> into)
    {
        int index = 0;
        while (true)
        {
            var data = _buffer.AsSpan(_start, _end - _start);
            var reader = new Utf8JsonReader(data, _atEnd, _state);
            // Where the next element starts: reader state and bytes consumed just before its first token.
            JsonReaderState elementState = reader.CurrentState;
            long elementStart = 0;
            while (true)
            {
                if (!ReadOrThrow(ref reader)) break;
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    TokenType = JsonTokenType.EndArray;
                    TokenDepth = reader.CurrentDepth;
                    Commit(ref reader);
                    return index;
                }
                bool complete;
                T value;
                try
                {
                    complete = parse(ref reader, data, index, out value);
                }
                catch (JsonException e)
                {
                    throw NotJson(e);
                }
                if (!complete) break;
                into.Add(value);
                index++;
                elementState = reader.CurrentState;
                elementStart = reader.BytesConsumed;
            }
            // The buffer ended inside an element (or between two): keep it from its first token and read more.
            _start += (int)elementStart;
            _state = elementState;
            if (_atEnd)
                throw new DataFormatException(Path, null, null, $"not valid JSON (truncated or corrupt): the file ends inside element {index} of an array");
            Fill();
        }
    }

    /// <summary>Checks that nothing but whitespace and comments follows the root value.</summary>
    /// <exception cref="DataFormatException">Something follows it.</exception>
    public void ReadEnd()
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _atEnd, _state);
            if (ReadOrThrow(ref reader))
                throw new DataFormatException(Path, null, null, $"not valid JSON: {reader.TokenType} after the end of the JSON value");
            Commit(ref reader);
            if (_atEnd) return;
            Fill();
        }
    }

    /// <summary>The current string token (a property name or a string value) as a .NET string.</summary>
    /// <exception cref="DataFormatException">The string is not valid UTF-8.</exception>
    public static string GetString(ref Utf8JsonReader reader, string path)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new DataFormatException(path, null, null, $"not valid JSON: a string is not valid UTF-8 ({e.Message})", e);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();

    private bool ReadOrThrow(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.Read();
        }
        catch (JsonException e)
        {
            throw NotJson(e);
        }
    }

    // System.Text.Json's message ends in " LineNumber: 0 | BytePositionInLine: 5." (0-based): the record says "line 1" instead,
    // and the message keeps only the column (1-based), so one error shows one line number.
    private DataFormatException NotJson(JsonException e)
    {
        string message = System.Text.RegularExpressions.Regex.Replace(e.Message, @"\s*Path: \S*\s*\|?\s*LineNumber: \d+ \| BytePositionInLine: \d+\.?$|\s*LineNumber: \d+ \| BytePositionInLine: \d+\.?$", "").TrimEnd();
        if (e.BytePositionInLine is long col) message += $" (column {col + 1})";
        return new(Path, e.LineNumber is long l ? $"line {l + 1}" : null, null, $"not valid JSON (truncated or corrupt): {message}", e);
    }

    private void Commit(ref Utf8JsonReader reader)
    {
        _start += (int)reader.BytesConsumed;
        _state = reader.CurrentState;
    }

    // Moves the unconsumed bytes to the front (doubling the buffer when they fill it) and reads as much of the file
    // as fits behind them.
    private void Fill()
    {
        int kept = _end - _start;
        if (kept == _buffer.Length)
        {
            if (_buffer.Length > System.Array.MaxLength / 2)
                throw new DataFormatException(Path, null, null, $"a single JSON record is larger than {_buffer.Length / 1048576} MB");
            System.Array.Resize(ref _buffer, _buffer.Length * 2);
        }
        if (_start > 0)
        {
            _buffer.AsSpan(_start, kept).CopyTo(_buffer);
            _start = 0;
            _end = kept;
        }
        while (_end < _buffer.Length)
        {
            int n;
            try
            {
                n = _file.Read(_buffer, _end, _buffer.Length - _end);
            }
            catch (IOException e)
            {
                throw new DataFormatException(Path, null, null, $"cannot be read: {e.Message}", e);
            }
            if (n == 0)
            {
                _atEnd = true;
                return;
            }
            _end += n;
        }
    }
}
