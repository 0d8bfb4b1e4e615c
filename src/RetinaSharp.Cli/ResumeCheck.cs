// The --resume check of `retina train` and `retina demo`: compares the configuration stored in a run's checkpoint
// with the one asked for now, field by field, and names each differing field by the option the user types
// ("--lr: checkpoint 0.01, now 0.02"). Fields that cannot change the trained weights (logging and checkpoint
// intervals, plot thresholds, the time budget once the run length is fixed) never block a resume: the checkpoint
// is rewritten with the new values so the trainer continues with them. Same idea as detectron2's
// `--resume`, which reloads the last checkpoint whatever the logging configuration.
using System.Globalization;
using System.Text.Json;
using RetinaSharp.Training;

namespace RetinaSharp.Cli;

/// <summary>How one stored configuration field shows to the user when it differs on --resume.</summary>
/// <param name="Option">What the user types or sees: an option name such as <c>--lr</c>, or a short phrase.</param>
/// <param name="ChangesResult">False for fields that cannot change the trained weights (logging, display): they never block a resume.</param>
/// <param name="Format">Turns a stored JSON value into the text the user typed (null: the JSON value, "not given" for null).</param>
internal sealed record ResumeField(string Option, bool ChangesResult = true, Func<JsonElement, string>? Format = null);

/// <summary>The comparison of a checkpoint's configuration with the current one.</summary>
internal static class ResumeCheck
{
    /// <summary>
    /// Compares the stored and current configuration and options JSON objects. Keys are flattened as
    /// <c>config.settings.Lr</c> / <c>options.LogEvery</c> (nested objects joined with dots, arrays compared whole).
    /// Returns one line per differing field, "<c>--lr: checkpoint 0.01, now 0.02</c>", split into fields that change
    /// the result and those that do not; a field named the same way twice (stored in settings and options) is listed once.
    /// A field missing from <paramref name="fields"/> changes the result and is shown by its JSON path.
    /// </summary>
    /// <exception cref="JsonException">A JSON text is malformed.</exception>
    public static (IReadOnlyList<string> Blocking, IReadOnlyList<string> Free) Differences(
        string storedConfiguration, string configuration, string storedOptions, string options, IReadOnlyDictionary<string, ResumeField> fields)
    {
        var before = new Dictionary<string, JsonElement>();
        var now = new Dictionary<string, JsonElement>();
        using var a = JsonDocument.Parse(storedConfiguration);
        using var b = JsonDocument.Parse(configuration);
        using var c = JsonDocument.Parse(storedOptions);
        using var d = JsonDocument.Parse(options);
        Flatten(a.RootElement, "config", before);
        Flatten(c.RootElement, "options", before);
        Flatten(b.RootElement, "config", now);
        Flatten(d.RootElement, "options", now);
        var blocking = new List<string>();
        var free = new List<string>();
        var seen = new HashSet<string>();
        foreach (var key in before.Keys.Concat(now.Keys).Distinct())
        {
            bool hasOld = before.TryGetValue(key, out var old);
            bool hasNew = now.TryGetValue(key, out var cur);
            if (hasOld && hasNew && JsonElement.DeepEquals(old, cur)) continue;
            // A field added since the checkpoint was written, at its "not given" value (null), is the same run.
            if ((!hasOld || old.ValueKind == JsonValueKind.Null) && (!hasNew || cur.ValueKind == JsonValueKind.Null)) continue;
            var field = fields.TryGetValue(key, out var f) ? f : new ResumeField(key);
            if (!seen.Add(field.Option)) continue;
            string line = $"{field.Option}: checkpoint {Show(field, hasOld ? old : null)}, now {Show(field, hasNew ? cur : null)}";
            (field.ChangesResult ? blocking : free).Add(line);
        }
        return (blocking, free);
    }

    /// <summary>
    /// Before a resume: compares the checkpoint at <paramref name="checkpointPath"/> with the run about to start. Differences
    /// in result-changing fields throw; differences only in fields that do not change the result are accepted: the
    /// checkpoint is rewritten (atomically) with the current configuration and options so the trainer continues with them.
    /// Returns the accepted differences (empty when nothing differs or there is no checkpoint).
    /// </summary>
    /// <exception cref="ArgumentException">A result-changing field differs; the message lists each as "--option: checkpoint X, now Y".</exception>
    public static IReadOnlyList<string> Reconcile(string checkpointPath, string configuration, string options, IReadOnlyDictionary<string, ResumeField> fields)
    {
        if (!File.Exists(checkpointPath)) return [];
        using var state = TrainingCheckpoint.Load(checkpointPath);
        var (blocking, free) = Differences(state.ConfigurationJson, configuration, state.OptionsJson, options, fields);
        if (blocking.Count > 0)
            throw new ArgumentException(
                $"--resume: the run in '{Path.GetDirectoryName(checkpointPath)}' was started with other settings that change the result; " +
                "resume with the checkpoint's values or train into another --out:\n  " + string.Join("\n  ", blocking) + LengthHint(blocking, checkpointPath));
        // Also when only the text differs (fields added since, at null): the trainer then finds the options it expects.
        if (free.Count > 0 || state.ConfigurationJson != configuration || state.OptionsJson != options)
            TrainingCheckpoint.Save(checkpointPath, state with { ConfigurationJson = configuration, OptionsJson = options });
        return free;
    }

    /// <summary>
    /// When the run length differs: why a run cannot be extended exactly, and how to train further instead. The learning
    /// rate of every step (warm-up, decay at fixed fractions of the run, or the cosine) depends on the total, so the
    /// iterations already done would not be those of the longer run.
    /// </summary>
    internal static string LengthHint(IReadOnlyList<string> blocking, string checkpointPath)
    {
        if (!blocking.Any(b => b.StartsWith("--iterations:", StringComparison.Ordinal) || b.StartsWith("--epochs:", StringComparison.Ordinal))) return "";
        string model = Path.Combine(Path.GetDirectoryName(checkpointPath)!, "model.rsnet");
        return "\n(a run cannot be lengthened on --resume: its learning-rate schedule (warm-up and decay points) is computed from the total " +
               $"length, so the steps already taken would not match a longer run; to train further, start a new run in another --out with --init {model})";
    }

    /// <summary>Fields of <see cref="TrainingOptions"/> shared by `train` and `demo`; callers add their own.</summary>
    public static Dictionary<string, ResumeField> TrainingOptionFields() => new()
    {
        ["options.Iterations"] = new("--iterations"),
        ["options.Epochs"] = new("--epochs"),
        ["options.Optimizer"] = new("--optimizer", Format: Lower),
        ["options.BaseLearningRate"] = new("--lr"),
        ["options.Momentum"] = new("momentum"),
        ["options.WeightDecay"] = new("--weight-decay"),
        ["options.WarmupIterations"] = new("--warmup"),
        ["options.WarmupFactor"] = new("warm-up factor"),
        ["options.Decay"] = new("--schedule", Format: Lower),
        ["options.GradientClipNorm"] = new("--clip-grad"),
        ["options.CheckpointEvery"] = new("--checkpoint-every", ChangesResult: false),
        ["options.LogEvery"] = new("--log-every", ChangesResult: false),
        ["options.ValidateEvery"] = new("--val-every", ChangesResult: false),
        ["options.Seed"] = new("--seed"),
        ["options.MaxConsecutiveBadSteps"] = new("bad steps allowed in a row"),
        ["config.model.NumClasses"] = new("number of classes in the data"),
    };

    /// <summary>A JSON enum or string value in lower case (as typed: "resnet50", "sgd").</summary>
    public static string Lower(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()!.ToLowerInvariant() : e.GetRawText();

    private static string Show(ResumeField field, JsonElement? value)
    {
        if (value is not JsonElement e || e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return "not given";
        if (field.Format != null) return field.Format(e);
        return e.ValueKind switch
        {
            JsonValueKind.String => e.GetString()!,
            JsonValueKind.Number => e.GetDouble().ToString("G", CultureInfo.InvariantCulture),
            JsonValueKind.Array => string.Join(",", e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Array ? "[" + string.Join(",", x.EnumerateArray()) + "]" : x.ToString())),
            _ => e.GetRawText(),
        };
    }

    private static void Flatten(JsonElement e, string prefix, Dictionary<string, JsonElement> into)
    {
        if (e.ValueKind != JsonValueKind.Object) { into[prefix] = e.Clone(); return; }
        foreach (var p in e.EnumerateObject()) Flatten(p.Value, prefix + "." + p.Name, into);
    }
}
