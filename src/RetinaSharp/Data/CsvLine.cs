// Minimal RFC 4180 field splitting for the CSV dataset and class mapping files.
namespace RetinaSharp.Data;

/// <summary>Splits one CSV line (RFC 4180 quoting: "a,b" and doubled quotes inside quotes).</summary>
internal static class CsvLine
{
    /// <summary>The fields of <paramref name="line"/>, unquoted.</summary>
    public static List<string> Split(string line) => Split(line, out _);

    /// <summary>The fields of <paramref name="line"/>, unquoted; <paramref name="unterminated"/> is true when the line
    /// ends inside a quoted field (a <c>"</c> that is never closed).</summary>
    public static List<string> Split(string line, out bool unterminated)
    {
        var fields = new List<string>();
        var sb = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                    else quoted = false;
                }
                else sb.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(sb.ToString()); sb.Clear(); }
            else sb.Append(c);
        }
        fields.Add(sb.ToString().TrimEnd('\r'));
        unterminated = quoted;
        return fields;
    }
}
