// Progress of a counted job ("37/500 images") on a TextWriter: rewritten in place with "\r" on a terminal, and as
// sparse whole lines (every 10%, and the last) when the writer is redirected to a file or a pipe, so logs stay
// readable (as tqdm and pip switch to line output when stderr is not a TTY).

namespace RetinaSharp.Cli;

/// <summary>Reports "label: done/total unit" on <see cref="Writer"/>; call <see cref="Report"/> as work completes and <see cref="Finish"/> at the end.</summary>
internal sealed class CountProgress
{
    private int _nextTenth = 1;

    /// <summary>Creates a progress reporter for <paramref name="total"/> items.</summary>
    /// <param name="writer">Where to write (usually the command's error writer).</param>
    /// <param name="label">Text before the count, e.g. "retina eval".</param>
    /// <param name="total">The number of items (0 or more).</param>
    /// <param name="unit">What is counted, e.g. "images".</param>
    /// <param name="interactive">Force in-place (true) or line (false) output; null: in place only when <paramref name="writer"/>
    /// is the process's console stream and that stream is a terminal.</param>
    public CountProgress(TextWriter writer, string label, int total, string unit, bool? interactive = null)
    {
        Writer = writer;
        Label = label;
        Total = total;
        Unit = unit;
        Interactive = interactive ?? IsTerminal(writer);
    }

    /// <summary>The writer.</summary>
    public TextWriter Writer { get; }
    /// <summary>Text before the count.</summary>
    public string Label { get; }
    /// <summary>The number of items.</summary>
    public int Total { get; }
    /// <summary>What is counted.</summary>
    public string Unit { get; }
    /// <summary>True: one line rewritten with "\r"; false: a line every 10%.</summary>
    public bool Interactive { get; }

    /// <summary>True when <paramref name="writer"/> is the console's error or output stream and that stream is not redirected.</summary>
    public static bool IsTerminal(TextWriter writer) =>
        (ReferenceEquals(writer, Console.Error) && !Console.IsErrorRedirected) || (ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected);

    /// <summary>Reports that <paramref name="done"/> items of <see cref="Total"/> are finished.</summary>
    public void Report(int done)
    {
        if (Interactive)
        {
            Writer.Write($"\r{Label}: {done}/{Total} {Unit}");
            return;
        }
        if (done < Total && (long)done * 10 < (long)_nextTenth * Total) return;
        while ((long)_nextTenth * Total <= (long)done * 10 && _nextTenth <= 10) _nextTenth++;
        Writer.WriteLine($"{Label}: {done}/{Total} {Unit} ({(Total == 0 ? 100 : 100L * done / Total)}%)");
        if (done >= Total) _nextTenth = 11;
    }

    /// <summary>Ends the in-place line (nothing to do in line mode).</summary>
    public void Finish()
    {
        if (Interactive) Writer.WriteLine();
    }
}
