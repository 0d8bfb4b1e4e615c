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

    /// <summary>
    /// Reads the steps of a <c>log.csv</c> written by <see cref="WriteCsv"/> (<see cref="StepsCsv"/>'s columns; loss terms are
    /// the <c>_step</c> columns between <see cref="StepLossColumn"/> and <c>grad_norm</c>). Validations are not in that file and
    /// stay empty.
    /// </summary>
    /// <param name="path">The log.csv file.</param>
    /// <exception cref="DataFormatException">The file is missing, lacks a required column, or a field is not a number;
    /// the message names the file, the line and the column.</exception>
    public static TrainingLog ReadCsv(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new DataFormatException(path, null, null, "no such file (a training run writes log.csv into its output folder)");
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0) throw new DataFormatException(path, null, null, "empty file: expected a header line starting with iteration,epoch,lr," + StepLossColumn);
        var header = lines[0].Split(',');
        int Column(string name) => Array.IndexOf(header, name) is int i and >= 0 ? i
            : throw new DataFormatException(path, "line 1", name, $"missing column (header: {lines[0]})");
        int it = Column("iteration"), ep = Column("epoch"), lr = Column("lr"), loss = Column(StepLossColumn), gn = Column("grad_norm"),
            ips = Column("images_per_s"), el = Column("elapsed_s"), sk = Column("skipped");
        var terms = Enumerable.Range(loss + 1, Math.Max(0, gn - loss - 1)).Where(i => header[i].EndsWith("_step", StringComparison.Ordinal))
            .Select(i => (Index: i, Name: header[i][..^"_step".Length])).ToList();
        var log = new TrainingLog();
        for (int n = 1; n < lines.Length; n++)
        {
            if (lines[n].Length == 0) continue;
            var f = lines[n].Split(',');
            string record = $"line {n + 1}";
            if (f.Length != header.Length)
                throw new DataFormatException(path, record, null, $"{f.Length} fields, the header has {header.Length}");
            double D(int i) => double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new DataFormatException(path, record, header[i], $"'{f[i]}' is not a number");
            var values = new Dictionary<string, double>();
            foreach (var (i, name) in terms) if (f[i].Length > 0) values[name] = D(i);
            log.Steps.Add(new TrainingLogRow((long)D(it), (int)D(ep), D(lr), D(loss), values, D(gn), D(ips), D(el), f[sk] == "1"));
        }
        return log;
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
