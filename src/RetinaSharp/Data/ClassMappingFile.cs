// The `class,id` mapping file of CSV datasets (the keras-retinanet CSV convention), also accepted for VOC.
using System.Globalization;
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>Reads a <c>class,id</c> file: one class name and its integer category id per line.</summary>
internal static class ClassMappingFile
{
    /// <summary>Reads the mapping; a first line <c>class,id</c> is taken as a header.</summary>
    /// <exception cref="DataFormatException">Missing file, wrong column count, a non-integer id, a duplicate name or id, or no class at all.</exception>
    public static IReadOnlyList<CocoCategory> Read(string path)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, null, null, "class mapping file not found");
        var result = new List<CocoCategory>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var ids = new HashSet<long>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            var cols = CsvLine.Split(line, out bool unterminated);
            string record = $"line {lineNo}";
            if (unterminated)
                throw new DataFormatException(path, record, null, $"unterminated quote (\") in '{line}'");
            if (cols.Count != 2)
                throw new DataFormatException(path, record, null, $"expected 2 columns (class,id), found {cols.Count}: '{line}'");
            string name = cols[0].Trim(), idText = cols[1].Trim();
            if (lineNo == 1 && name.Equals("class", StringComparison.OrdinalIgnoreCase) && idText.Equals("id", StringComparison.OrdinalIgnoreCase))
                continue;
            if (name.Length == 0)
                throw new DataFormatException(path, record, "class", "empty class name");
            if (!long.TryParse(idText, NumberStyles.Integer, CultureInfo.InvariantCulture, out long id))
                throw new DataFormatException(path, record, "id", $"expected an integer, found '{idText}'");
            if (!names.Add(name))
                throw new DataFormatException(path, record, "class", $"duplicate class name '{name}'");
            if (!ids.Add(id))
                throw new DataFormatException(path, record, "id", $"duplicate id {id}");
            result.Add(new CocoCategory(id, name));
        }
        if (result.Count == 0)
            throw new DataFormatException(path, null, null, "no classes (expected class,id lines)");
        return result;
    }

    /// <summary>Categories for names without a mapping file: sorted (ordinal) names with ids 1..K.</summary>
    public static IReadOnlyList<CocoCategory> FromNames(IEnumerable<string> names) =>
        names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select((n, i) => new CocoCategory(i + 1, n)).ToList();
}
