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

    /// <summary>Parses and runs <paramref name="args"/> against <paramref name="root"/>.</summary>
    public static int Invoke(RootCommand root, string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output != null) config.Output = output;
        if (error != null) config.Error = error;
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (Exception e) when (IsUserError(e))
        {
            (error ?? Console.Error).WriteLine($"error: {e.Message}");
            return BadInput;
        }
    }

    /// <summary>Errors caused by the user's input, shown as one message without a stack trace.</summary>
    public static bool IsUserError(Exception e) =>
        e is DataFormatException or ArgumentException or FileNotFoundException or DirectoryNotFoundException
            or IOException or UnauthorizedAccessException or InvalidDataException or FormatException;
}
