// The record of a run: one row per logged step (CSV, like detectron2's metrics.json lines) and one per
// validation. Kept in memory, saved inside each checkpoint (so a resumed run's log equals an uninterrupted
// run's) and written as CSV atomically.
using System.Globalization;
using System.Text;
using System.Text.Json;
using RetinaSharp.IO;

namespace RetinaSharp.Training;

/// <summary>One logged training step.</summary>
/// <param name="Iteration">Completed iterations after this step (1-based).</param>
/// <param name="Epoch">0-based epoch of the step.</param>
/// <param name="LearningRate">The learning rate used by the step.</param>
/// <param name="Loss">The total loss (NaN or infinity for a skipped step).</param>
/// <param name="Terms">Each loss term by name.</param>
/// <param name="GradientNorm">Global gradient L2 norm before clipping (NaN when not computed).</param>
/// <param name="ImagesPerSecond">Throughput over the recent steps.</param>
/// <param name="ElapsedSeconds">Wall time since this session of the run started.</param>
/// <param name="Skipped">True when the step was skipped by the non-finite guard.</param>
public sealed record TrainingLogRow(long Iteration, int Epoch, double LearningRate, double Loss,
    IReadOnlyDictionary<string, double> Terms, double GradientNorm, double ImagesPerSecond, double ElapsedSeconds, bool Skipped);

/// <summary>One validation run.</summary>
/// <param name="Iteration">Completed iterations when it ran.</param>
/// <param name="Metrics">The metrics by name (for example "AP", "AP50").</param>
public sealed record ValidationLogRow(long Iteration, IReadOnlyDictionary<string, double> Metrics);

/// <summary>The rows of a run's log.</summary>
public sealed class TrainingLog
{
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>The logged steps, by iteration.</summary>
    public List<TrainingLogRow> Steps { get; init; } = [];
    /// <summary>The validations, by iteration.</summary>
    public List<ValidationLogRow> Validations { get; init; } = [];

    /// <summary>Steps the non-finite guard skipped (every skipped step is logged, whatever the log interval); 0 on a
    /// healthy run.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int SkippedSteps => Steps.Count(s => s.Skipped);

    /// <summary>Serialises the log for a checkpoint.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Restores a log from <see cref="ToJson"/>.</summary>
    /// <exception cref="JsonException">The text is not a log.</exception>
    public static TrainingLog FromJson(string json) =>
        string.IsNullOrWhiteSpace(json) ? new TrainingLog() : JsonSerializer.Deserialize<TrainingLog>(json, Json) ?? new TrainingLog();

    /// <summary>
    /// The steps as CSV: <c>iteration,epoch,lr,loss_step,&lt;term&gt;_step...,grad_norm,images_per_s,elapsed_s,skipped</c>.
    /// The <c>_step</c> columns are the losses of that one logged step (not smoothed: they are noisy); the console
    /// progress shows the running mean of the last <see cref="TrainingProgress.SmoothingSteps"/> steps instead.
    /// <c>images_per_s</c> is averaged over the recent steps.
    /// </summary>
    public string StepsCsv()
    {
        var terms = Steps.SelectMany(r => r.Terms.Keys).Distinct().ToList();
        var sb = new StringBuilder("iteration,epoch,lr," + StepLossColumn);
        foreach (var t in terms) sb.Append(',').Append(t).Append("_step");
        sb.Append(",grad_norm,images_per_s,elapsed_s,skipped\n");
        foreach (var r in Steps)
        {
            sb.Append(r.Iteration.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(r.Epoch.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(r.LearningRate.ToString("G12", CultureInfo.InvariantCulture)).Append(',').Append(F(r.Loss));
            foreach (var t in terms) sb.Append(',').Append(r.Terms.TryGetValue(t, out var v) ? F(v) : "");
            sb.Append(',').Append(F(r.GradientNorm)).Append(',').Append(F(r.ImagesPerSecond)).Append(',')
              .Append(F(r.ElapsedSeconds)).Append(',').Append(r.Skipped ? "1" : "0").Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The column of log.csv holding the total loss of the logged step (not a running mean).</summary>
    public const string StepLossColumn = "loss_step";

    /// <summary>The validations as CSV: iteration,&lt;metrics&gt;.</summary>
    public string ValidationsCsv()
    {
        var names = Validations.SelectMany(r => r.Metrics.Keys).Distinct().ToList();
        var sb = new StringBuilder("iteration");
        foreach (var n in names) sb.Append(',').Append(n);
        sb.Append('\n');
        foreach (var r in Validations)
        {
            sb.Append(r.Iteration.ToString(CultureInfo.InvariantCulture));
            foreach (var n in names) sb.Append(',').Append(r.Metrics.TryGetValue(n, out var v) ? F(v) : "");
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Writes <c>log.csv</c> (and <c>validation.csv</c> when there were validations) into <paramref name="folder"/> atomically.</summary>
    public void WriteCsv(string folder)
    {
        AtomicFile.WriteAllText(Path.Combine(folder, "log.csv"), StepsCsv());
        if (Validations.Count > 0)
            AtomicFile.WriteAllText(Path.Combine(folder, "validation.csv"), ValidationsCsv());
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
