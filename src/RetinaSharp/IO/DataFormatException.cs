namespace RetinaSharp.IO;

/// <summary>
/// Bad input data: names the file, the record (an id or a line) and the field, so that a user can fix it.
/// The CLI prints <see cref="Exception.Message"/> without a stack trace and exits with code 2.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>Creates the error; the message reads "FILE: record RECORD: field FIELD: PROBLEM".</summary>
    /// <param name="file">The file that holds the bad data.</param>
    /// <param name="record">The record (image id, annotation id, line number), or null for the whole file.</param>
    /// <param name="field">The field, or null.</param>
    /// <param name="problem">What is wrong, with the offending value.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public DataFormatException(string file, string? record, string? field, string problem, Exception? inner = null)
        : base(Format(file, record, field, problem), inner)
    {
        File = file;
        Record = record;
        Field = field;
        Problem = problem;
    }

    /// <summary>The file that holds the bad data.</summary>
    public string File { get; }
    /// <summary>The record (for example "annotation id 17" or "line 4"), or null.</summary>
    public string? Record { get; }
    /// <summary>The field (for example "bbox"), or null.</summary>
    public string? Field { get; }
    /// <summary>What is wrong.</summary>
    public string Problem { get; }

    private static string Format(string file, string? record, string? field, string problem)
    {
        var sb = new System.Text.StringBuilder(file);
        if (record != null) sb.Append(": ").Append(record);
        if (field != null) sb.Append(": field '").Append(field).Append('\'');
        sb.Append(": ").Append(problem);
        return sb.ToString();
    }
}
