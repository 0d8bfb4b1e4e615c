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

    /// <summary>Environment variable that, set to 1, lets libtorch errors propagate with their full stack.</summary>
    public const string TraceVariable = "RETINA_TRACE";

    /// <summary>Parses and runs <paramref name="args"/> against <paramref name="root"/>. Parse errors (an unknown option, a value
    /// of the wrong type) and user errors (<see cref="IsUserError"/>) print one "error: ..." line each, no stack trace, and
    /// return <see cref="BadInput"/>. A libtorch failure (<see cref="System.Runtime.InteropServices.ExternalException"/>) prints its first
    /// line and returns <see cref="Failed"/> unless <see cref="TraceVariable"/> is 1.</summary>
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
            (error ?? Console.Error).WriteLine($"error: {UserMessage(e)}");
            return BadInput;
        }
        catch (System.Runtime.InteropServices.ExternalException e) when (Environment.GetEnvironmentVariable(TraceVariable) != "1")
        {
            // libtorch failures carry a page of C++ frames: show the first line (what failed, with the sizes involved).
            int n = e.Message.IndexOf('\n');
            var err = error ?? Console.Error;
            err.WriteLine($"error: libtorch: {(n < 0 ? e.Message : e.Message[..n])}");
            err.WriteLine($"(set {TraceVariable}=1 for the full native and managed stack)");
            return Failed;
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

    /// <summary>
    /// Library parameter and property names that come from a CLI option, and that option: an <see cref="ArgumentException"/>
    /// thrown deep in the library ("Iterations must be positive") is shown with the option the user typed ("--iterations ...").
    /// </summary>
    internal static IReadOnlyDictionary<string, string> OptionOfParameter { get; } = new Dictionary<string, string>
    {
        ["Iterations"] = "--iterations", ["totalIterations"] = "--iterations", ["Epochs"] = "--epochs",
        ["BaseLearningRate"] = "--lr", ["baseLearningRate"] = "--lr",
        ["CheckpointEvery"] = "--checkpoint-every", ["LogEvery"] = "--log-every", ["ValidateEvery"] = "--val-every",
        ["GradientClipNorm"] = "--clip-grad", ["WeightDecay"] = "--weight-decay", ["weightDecay"] = "--weight-decay",
        ["WarmupIterations"] = "--warmup", ["warmupIterations"] = "--warmup", ["batchSize"] = "--batch-size",
        ["outputDirectory"] = "--out", ["OutputFolder"] = "--out", ["resume"] = "--resume", ["ShorterSideScales"] = "--scales",
        ["MinSize"] = "--min-size", ["MaxSize"] = "--max-size", ["FpnChannels"] = "--fpn-channels",
        ["TrainableBackboneLayers"] = "--trainable-layers", ["trainableLayers"] = "--trainable-layers",
        ["ScoreThreshold"] = "--score-threshold", ["scoreThreshold"] = "--score-threshold",
        ["DetectionsPerImage"] = "--max-detections", ["detectionsPerImage"] = "--max-detections",
        ["TrainImages"] = "--train", ["ValImages"] = "--val",
    };

    /// <summary>
    /// The one-line message shown for a user error. For an <see cref="ArgumentException"/> .NET's " (Parameter 'x')" suffix
    /// is removed (an <see cref="ArgumentOutOfRangeException"/>'s "Actual value was v." stays, on the same line), and a
    /// library parameter name that comes from a CLI option (<see cref="OptionOfParameter"/>) is replaced by that option.
    /// </summary>
    public static string UserMessage(Exception e)
    {
        string message = e.Message;
        if (e is not ArgumentException { ParamName: string p }) return message;
        message = message.Replace($" (Parameter '{p}')", "").Replace("\nActual value was", " Actual value was").Trim();
        if (!OptionOfParameter.TryGetValue(p, out var option) || message.Contains(option, StringComparison.Ordinal)) return message;
        // "RetinaNetOptions.MinSize = 0: ..." -> "--min-size = 0: ...", "Iterations must be positive" -> "--iterations must be positive";
        // every other known name in the message too ("Give exactly one of Iterations and Epochs").
        bool replaced = false;
        foreach (var (name, opt) in OptionOfParameter)
        {
            var rx = new System.Text.RegularExpressions.Regex($@"(?<![\w-])(?:\w+Options\.)?{name}(?![\w-])");
            if (!rx.IsMatch(message)) continue;
            message = rx.Replace(message, opt);
            replaced |= name == p;
        }
        return replaced ? message : $"{option}: {message}";
    }

    /// <summary>Errors caused by the user's input, shown as one message without a stack trace.</summary>
    public static bool IsUserError(Exception e) =>
        e is DataFormatException or ArgumentException or FileNotFoundException or DirectoryNotFoundException
            or IOException or UnauthorizedAccessException or InvalidDataException or FormatException;
}
