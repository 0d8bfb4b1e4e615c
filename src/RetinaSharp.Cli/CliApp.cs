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
        AddRuntimeOptions(root);
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
                foreach (var e in parsed.Errors) err.WriteLine($"error: {FriendlyParseError(e.Message)}");
                err.WriteLine($"(run '{string.Join(' ', CommandPath(parsed))} --help' for the options)");
                return BadInput;
            }
            // --onednn (any command) overrides RETINA_ONEDNN; applied before any network is built.
            if (parsed.GetResult(OneDnnOption) is { Implicit: false })
                TorchRuntime.Initialize(RetinaSharp.Runtime.OneDnnPolicy.Parse(parsed.GetValue(OneDnnOption), "--onednn"), error);
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

    /// <summary>The global <c>--onednn auto|full|forward|off</c> option (see <see cref="RetinaSharp.Runtime.OneDnnPolicy"/>).</summary>
    internal static readonly Option<string> OneDnnOption = CreateOneDnnOption();

    private static Option<string> CreateOneDnnOption()
    {
        var o = new Option<string>("--onednn")
        {
            Description = "How much of libtorch's oneDNN runs: auto decides from the CPU (forward-only on CPUs that report " +
                          "no cache sizes, else full), or full, forward or off. Overrides the RETINA_ONEDNN environment variable",
            HelpName = "auto|full|forward|off",
            Recursive = true,
        };
        o.AcceptOnlyFromAmong("auto", "full", "forward", "off");
        return o;
    }

    private static void AddRuntimeOptions(RootCommand root)
    {
        if (!root.Options.Contains(OneDnnOption)) root.Options.Add(OneDnnOption);
    }
    /// <summary>
    /// System.CommandLine's "Cannot parse argument 'abc' for option '--iterations' as expected type 'System.Nullable`1[System.Int64]'."
    /// with the .NET type replaced by what to type: "... for option '--iterations': expected a whole number."
    /// </summary>
    internal static string FriendlyParseError(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, @" as expected type '(?:System\.Nullable`1\[)?System\.(\w+)\]?'\.?", m => m.Groups[1].Value switch
        {
            "Int16" or "Int32" or "Int64" or "UInt16" or "UInt32" or "UInt64" or "Byte" => ": expected a whole number.",
            "Single" or "Double" or "Decimal" => ": expected a number (for example 0.5 or 1e-4).",
            "Boolean" => ": expected true or false.",
            var t => $": expected a {t.ToLowerInvariant()} value.",
        });

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

    /// <summary>
    /// Before any work (and any banner): checks that <paramref name="folder"/> can receive output, creating it when missing
    /// (<see cref="AtomicFile.EnsureWritableFolder"/>). A file in its place or above it, a folder that cannot be created
    /// (for example under /proc) or written becomes one line naming <paramref name="option"/>.
    /// </summary>
    /// <returns>True when the folder was created by this call (the caller may remove it again if it stays empty).</returns>
    /// <exception cref="ArgumentException">The folder cannot be used; the message starts with <paramref name="option"/> and the path.</exception>
    public static bool EnsureOutFolder(string folder, string option = "--out")
    {
        string full = Path.GetFullPath(folder);
        if (File.Exists(full)) throw new ArgumentException($"{option} '{full}' is a file; give a folder.");
        bool existed = Directory.Exists(full);
        try { AtomicFile.EnsureWritableFolder(full); }
        catch (IOException e)
        {
            string reason = Directory.Exists(full)
                ? "cannot create files in it" + (e.InnerException is UnauthorizedAccessException ? ": permission denied" : "")
                : e.InnerException?.Message ?? e.Message;
            for (string? p = Path.GetDirectoryName(full); !string.IsNullOrEmpty(p); p = Path.GetDirectoryName(p))
                if (File.Exists(p)) { reason = $"'{p}' is a file, not a folder"; break; }
            throw new ArgumentException($"{option} '{full}': cannot write there ({reason.TrimEnd('.')}); give a writable folder.", e);
        }
        return !existed;
    }

    /// <summary>Removes <paramref name="folder"/> when <paramref name="created"/> and it is still empty (after an error before any output).</summary>
    public static void RemoveIfEmpty(string folder, bool created)
    {
        if (!created) return;
        try { if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any()) Directory.Delete(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Placeholders of the options that take a path, the same in every command (<c>--out &lt;dir&gt;</c>, <c>--weights &lt;model&gt;</c>).</summary>
    internal static IReadOnlyDictionary<string, string> PathPlaceholders { get; } = new Dictionary<string, string>
    {
        ["--out"] = "dir", ["--data"] = "dataset", ["--weights"] = "model", ["--init"] = "model", ["--classes"] = "file",
        ["--gt"] = "instances.json", ["--dt"] = "results.json", ["--fashion-mnist"] = "dir",
    };

    /// <summary>
    /// Makes --help read the same in every command: options without a placeholder get one (paths from
    /// <see cref="PathPlaceholders"/>, whole numbers N, other numbers X, other text the option's own name) and descriptions
    /// end without a full stop.
    /// </summary>
    public static void UniformHelp(Command command)
    {
        foreach (var option in command.Options)
        {
            if (option.Description is { } d && d.EndsWith('.') && !d.EndsWith("...", StringComparison.Ordinal)) option.Description = d[..^1];
            if (option.HelpName != null || option.ValueType == typeof(bool)) continue;
            var t = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
            option.HelpName = PathPlaceholders.TryGetValue(option.Name, out var p) && t == typeof(string) ? p
                : t == typeof(int) || t == typeof(long) ? "N"
                : t == typeof(double) || t == typeof(float) ? "X"
                : null;
        }
        foreach (var sub in command.Subcommands) UniformHelp(sub);
    }

    /// <summary>The <c>--device</c> option of train, eval and detect.</summary>
    public static Option<string> DeviceOption() => new("--device")
    {
        HelpName = "cpu|cuda[:N]",
        Description = "Where the network runs: cpu, cuda or cuda:N (CUDA needs the libtorch-cuda-12.8-linux-x64 package; this build has the CPU libtorch)",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>Resolves a <c>--device</c> value (<see cref="ComputeDevice.Resolve"/>) before any work; prints what falls back on it.</summary>
    /// <exception cref="ArgumentException">A malformed value or a device this process cannot use (the message names the CUDA package).</exception>
    public static TorchSharp.torch.Device ResolveDevice(string? value, TextWriter? notices = null)
    {
        var device = ComputeDevice.Resolve(value ?? "cpu", "--device");
        foreach (var note in ComputeDevice.Fallbacks(device)) (notices ?? Console.Out).WriteLine($"note: {note}");
        return device;
    }

    /// <summary>Errors caused by the user's input, shown as one message without a stack trace.</summary>
    public static bool IsUserError(Exception e) =>
        e is DataFormatException or ArgumentException or FileNotFoundException or DirectoryNotFoundException
            or IOException or UnauthorizedAccessException or InvalidDataException or FormatException;
}
