using System.CommandLine;
using RetinaSharp.IO;

namespace RetinaSharp.Cli;

/// <summary>Shared plumbing of the <c>retina</c> commands: exit codes and user-facing errors.</summary>
public static class CliApp
{
    /// <summary>Exit code of a successful run.</summary>
    public const int Ok = 0;
    /// <summary>Exit code when the run finished but something failed (for example skipped images).</summary>
    public const int Failed = 1;
    /// <summary>Exit code for bad input (data, arguments, files): the message says what and where.</summary>
    public const int BadInput = 2;

    /// <summary>Parses and runs <paramref name="args"/> against <paramref name="root"/>. Parse errors (an unknown option, a value
    /// of the wrong type) and user errors (<see cref="IsUserError"/>) print one "error: ..." line each, no stack trace, and
    /// return <see cref="BadInput"/>.</summary>
    public static int Invoke(RootCommand root, string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output != null) config.Output = output;
        if (error != null) config.Error = error;
        try
        {
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0)
            {
                // A mistyped option value ("--size abc") or an unknown option is bad input too: exit code 2, not
                // System.CommandLine's 1, one line per error and a pointer to the help instead of the whole help text.
                var err = error ?? Console.Error;
                foreach (var e in parsed.Errors) err.WriteLine($"error: {e.Message}");
                err.WriteLine($"(run '{string.Join(' ', CommandPath(parsed))} --help' for the options)");
                return BadInput;
            }
            return parsed.Invoke(config);
        }
        catch (Exception e) when (IsUserError(e))
        {
            (error ?? Console.Error).WriteLine($"error: {e.Message}");
            return BadInput;
        }
    }

    private static IEnumerable<string> CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (var r = parsed.CommandResult; r != null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(r.Command is RootCommand ? "retina" : r.Command.Name);
        names.Reverse();
        return names;
    }

    /// <summary>Errors caused by the user's input, shown as one message without a stack trace.</summary>
    public static bool IsUserError(Exception e) =>
        e is DataFormatException or ArgumentException or FileNotFoundException or DirectoryNotFoundException
            or IOException or UnauthorizedAccessException or InvalidDataException or FormatException;
}
