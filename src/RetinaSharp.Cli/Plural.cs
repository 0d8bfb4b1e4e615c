// "1 iteration", "2 iterations": counts in user-facing messages.
namespace RetinaSharp.Cli;

/// <summary>Counts with the noun in the right number (English: regular plurals, plus the few irregular ones we print).</summary>
internal static class Plural
{
    /// <summary>"<paramref name="count"/> <paramref name="noun"/>" with the noun singular for 1 and plural otherwise ("0 images").</summary>
    /// <param name="count">The count.</param>
    /// <param name="noun">The singular noun ("image", "category", "unreadable image").</param>
    public static string Of(long count, string noun) =>
        count.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + (count == 1 ? noun : PluralOf(noun));

    /// <summary>The plural of <paramref name="noun"/> (its last word): "category" -> "categories", "class" -> "classes".</summary>
    public static string PluralOf(string noun)
    {
        if (noun.EndsWith("y", StringComparison.Ordinal) && noun.Length > 1 && !"aeiou".Contains(noun[^2], StringComparison.Ordinal)) return noun[..^1] + "ies";
        if (noun.EndsWith("s", StringComparison.Ordinal) || noun.EndsWith("x", StringComparison.Ordinal) || noun.EndsWith("ch", StringComparison.Ordinal)
            || noun.EndsWith("sh", StringComparison.Ordinal)) return noun + "es";
        return noun + "s";
    }
}
