// The record of one finished ablation cell, DIR/cells/<id>/result.json: its resolved configuration (what a re-run
// compares), the 12 COCO numbers on the validation scenes, how the training went and its loss log (for the curves of
// table c). Written atomically when the cell finishes, so a cell either has a whole result or none.
using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.Evaluation;
using RetinaSharp.IO;
using RetinaSharp.Training;

namespace RetinaSharp.Ablation;

/// <summary>How a cell's training ended.</summary>
public enum AblationCellStatus
{
    /// <summary>Every iteration was trained.</summary>
    Completed,
    /// <summary>The trainer stopped after too many non-finite steps in a row (<see cref="TrainingStatus.Diverged"/>); the
    /// numbers are those of the weights at that point (never updated with a non-finite step).</summary>
    Diverged,
}

/// <summary>One finished cell.</summary>
/// <param name="CellId">The <see cref="AblationCell.Id"/>.</param>
/// <param name="Status">How the training ended.</param>
/// <param name="Iterations">Iterations trained (the run length unless diverged).</param>
/// <param name="Stats">COCO AP (pycocotools-exact, <see cref="CocoEvaluator"/>) on the validation scenes; values in [0, 1], -1 where COCO has no value.</param>
/// <param name="SkippedSteps">Steps the non-finite guard skipped (0 on a healthy run).</param>
/// <param name="FinalLoss">Mean total loss of the last tenth of the logged steps (at least one), NaN when none was finite.</param>
/// <param name="TrainingSeconds">Wall time of the training (the last session when it was resumed).</param>
/// <param name="EvaluationSeconds">Wall time of the evaluation.</param>
/// <param name="Configuration">The resolved configuration (<see cref="AblationOptions.Configuration"/>).</param>
/// <param name="Log">The training log (logged steps).</param>
public sealed record AblationCellResult(string CellId, AblationCellStatus Status, long Iterations, CocoStats Stats, int SkippedSteps,
    double FinalLoss, double TrainingSeconds, double EvaluationSeconds, JsonObject Configuration, TrainingLog Log)
{
    /// <summary>The file name inside the cell's folder.</summary>
    public const string FileName = "result.json";

    /// <summary>The file name of the configuration written when a cell starts (an interrupted cell is recognised by it).</summary>
    public const string ConfigurationFileName = "configuration.json";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The mean total loss of the last tenth of <paramref name="log"/>'s finite logged steps (at least one), or NaN.</summary>
    public static double FinalLossOf(TrainingLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var finite = log.Steps.Where(s => !s.Skipped && double.IsFinite(s.Loss)).ToList();
        if (finite.Count == 0) return double.NaN;
        int n = Math.Max(1, finite.Count / 10);
        return finite.TakeLast(n).Average(s => s.Loss);
    }

    /// <summary>The result as JSON: cell, status, iterations, stats (the 12 COCO names), skipped_steps, final_loss (null when NaN),
    /// training_seconds, evaluation_seconds, configuration, log.</summary>
    public JsonObject ToJson()
    {
        var stats = new JsonObject();
        var values = Stats.ToArray();
        for (int i = 0; i < values.Length; i++) stats[CocoStats.Names[i]] = values[i];
        return new JsonObject
        {
            ["cell"] = CellId,
            ["status"] = Status.ToString().ToLowerInvariant(),
            ["iterations"] = Iterations,
            ["stats"] = stats,
            ["skipped_steps"] = SkippedSteps,
            ["final_loss"] = double.IsFinite(FinalLoss) ? FinalLoss : null,
            ["training_seconds"] = Math.Round(TrainingSeconds, 1),
            ["evaluation_seconds"] = Math.Round(EvaluationSeconds, 1),
            ["configuration"] = Configuration.DeepClone(),
            ["log"] = JsonNode.Parse(Log.ToJson()),
        };
    }

    /// <summary>Writes the result into <paramref name="cellFolder"/>/<see cref="FileName"/> atomically.</summary>
    public void Write(string cellFolder) => AtomicFile.WriteAllText(Path.Combine(cellFolder, FileName), ToJson().ToJsonString(Indented));

    /// <summary>Reads a result written by <see cref="Write"/>.</summary>
    /// <exception cref="DataFormatException">The file is not a whole result; the message names the file and the field.</exception>
    public static AblationCellResult Read(string path)
    {
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new DataFormatException(path, "the file", "(root)", "is not a JSON object"); }
        catch (JsonException e) { throw new DataFormatException(path, "the file", "(root)", $"is not valid JSON ({e.Message})"); }
        T Field<T>(string name)
        {
            try { return o[name] is { } n ? n.GetValue<T>() : throw new DataFormatException(path, "the result", name, "is missing"); }
            catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new DataFormatException(path, "the result", name, $"has the wrong type ({e.Message})"); }
        }
        var stats = o["stats"] as JsonObject ?? throw new DataFormatException(path, "the result", "stats", "is missing");
        var v = CocoStats.Names.Select(n => stats[n] is { } x ? x.GetValue<double>() : throw new DataFormatException(path, "stats", n, "is missing")).ToArray();
        var status = Field<string>("status") switch
        {
            "completed" => AblationCellStatus.Completed,
            "diverged" => AblationCellStatus.Diverged,
            var s => throw new DataFormatException(path, "the result", "status", $"'{s}' is neither completed nor diverged"),
        };
        return new AblationCellResult(Field<string>("cell"), status, Field<long>("iterations"),
            new CocoStats(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]),
            Field<int>("skipped_steps"), o["final_loss"] is { } fl ? fl.GetValue<double>() : double.NaN,
            Field<double>("training_seconds"), Field<double>("evaluation_seconds"),
            o["configuration"] as JsonObject is { } c ? (JsonObject)c.DeepClone() : throw new DataFormatException(path, "the result", "configuration", "is missing"),
            TrainingLog.FromJson(o["log"]?.ToJsonString() ?? ""));
    }
}
