// The loss curve of a run as a PNG (ScottPlot 5): total loss and each term against the iteration,
// log-scaled y like detectron2/tensorboard loss plots are usually read (labelled 1-2-5 ticks per decade, the
// other integers as minor ticks), plus validation AP on a right axis fixed to 0..1 (or 0..max) when present.
using System.Globalization;
using RetinaSharp.IO;
using RetinaSharp.Training;

namespace RetinaSharp.Visualization;

/// <summary>Draws a <see cref="TrainingLog"/>.</summary>
public static class LossCurvePlot
{
    /// <summary>Writes the loss curve of <paramref name="log"/> to <paramref name="path"/> (PNG, atomically).</summary>
    /// <param name="log">The run's log; skipped (non-finite) steps are left out.</param>
    /// <param name="path">The PNG file.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Write(TrainingLog log, string path, int width = 900, int height = 500) =>
        AtomicFile.WriteAllBytes(path, RenderPng(log, width, height));

    /// <summary>
    /// Writes the total training loss of several runs into one picture (PNG, atomically), log-scaled y, one line per run
    /// (for example the demo from scratch and from ImageNet weights at the same budget).
    /// </summary>
    /// <param name="runs">Label and log of each run; skipped (non-finite) steps are left out.</param>
    /// <param name="path">The PNG file.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException">No runs.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void WriteComparison(IReadOnlyList<(string Label, TrainingLog Log)> runs, string path, int width = 900, int height = 500) =>
        AtomicFile.WriteAllBytes(path, RenderComparisonPng(runs, width, height));

    /// <summary>Renders the picture of <see cref="WriteComparison"/> as PNG bytes, with <paramref name="title"/> as its title.</summary>
    /// <exception cref="ArgumentException">No runs.</exception>
    public static byte[] RenderComparisonPng(IReadOnlyList<(string Label, TrainingLog Log)> runs, int width = 900, int height = 500,
        string title = "Training loss (total, per logged step)")
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0) throw new ArgumentException("no runs to draw", nameof(runs));
        var plot = new ScottPlot.Plot();
        var positive = new List<double>();
        double last = 1;
        foreach (var (label, log) in runs)
        {
            var rows = log.Steps.Where(r => !r.Skipped && double.IsFinite(r.Loss) && r.Loss > 0).ToList();
            if (rows.Count == 0) continue;
            var line = plot.Add.Scatter(rows.Select(r => (double)r.Iteration).ToArray(), rows.Select(r => Math.Log10(r.Loss)).ToArray());
            line.LegendText = label;
            line.LineWidth = 2;
            line.MarkerSize = 0;
            positive.AddRange(rows.Select(r => r.Loss));
            last = Math.Max(last, rows[^1].Iteration);
        }
        if (positive.Count > 0)
        {
            LogAxis(plot, positive, minorGrid: false);
        }
        plot.Axes.SetLimitsX(0, last * 1.02, plot.Axes.Bottom);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.Title(title);
        plot.XLabel("iteration");
        plot.YLabel("loss (log scale)");
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }

    /// <summary>Renders the loss curve of <paramref name="log"/> as PNG bytes (see <see cref="Write"/>).</summary>
    public static byte[] RenderPng(TrainingLog log, int width = 900, int height = 500)
    {
        var plot = new ScottPlot.Plot();
        var rows = log.Steps.Where(r => !r.Skipped && double.IsFinite(r.Loss) && r.Loss > 0).ToList();
        if (rows.Count > 0)
        {
            var xs = rows.Select(r => (double)r.Iteration).ToArray();
            var total = plot.Add.Scatter(xs, rows.Select(r => Math.Log10(r.Loss)).ToArray());
            total.LegendText = "total (per logged step)";
            total.LineWidth = 2;
            total.MarkerSize = 0;
            var positive = new List<double>(rows.Select(r => r.Loss));
            foreach (var term in rows.SelectMany(r => r.Terms.Keys).Distinct())
            {
                var pts = rows.Where(r => r.Terms.TryGetValue(term, out var v) && v > 0 && double.IsFinite(v)).ToList();
                if (pts.Count == 0) continue;
                var s = plot.Add.Scatter(pts.Select(r => (double)r.Iteration).ToArray(), pts.Select(r => Math.Log10(r.Terms[term])).ToArray());
                s.LegendText = term;
                s.MarkerSize = 0;
                s.LineWidth = 1.5f;
                positive.AddRange(pts.Select(r => r.Terms[term]));
            }
            LogAxis(plot, positive, minorGrid: true);
        }
        var vals = log.Validations.Where(v => v.Metrics.ContainsKey("AP") && double.IsFinite(v.Metrics["AP"])).ToList();
        if (vals.Count > 0)
        {
            var right = plot.Axes.Right;
            var ap = plot.Add.Scatter(vals.Select(v => (double)v.Iteration).ToArray(), vals.Select(v => v.Metrics["AP"]).ToArray());
            ap.Axes.YAxis = right;
            ap.LegendText = "validation AP (right axis)";
            ap.MarkerSize = 7;
            ap.LineWidth = 2;
            ap.LinePattern = ScottPlot.LinePattern.Dashed;
            right.Label.Text = "validation AP";
            double top = ApAxisTop(vals.Max(v => v.Metrics["AP"]));
            plot.Axes.SetLimitsY(-0.02 * top, top, right); // ticks from 0; a little room so markers at AP 0 are not cut by the frame
        }
        double lastIteration = log.Steps.Select(r => (double)r.Iteration).Concat(vals.Select(v => (double)v.Iteration)).DefaultIfEmpty(1).Max();
        plot.Axes.SetLimitsX(0, Math.Max(1, lastIteration) * 1.02, plot.Axes.Bottom);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };   // iterations are whole numbers
        plot.Title("Training loss");
        plot.XLabel("iteration");
        plot.YLabel("loss (log scale)");
        plot.ShowLegend(ScottPlot.Edge.Bottom); // outside the data area: it never hides a curve or a validation point
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }

    /// <summary>
    /// Ticks of a log axis from <paramref name="min"/> to <paramref name="max"/> (positive values): labelled (major) ticks
    /// at 1, 2 and 5 times powers of ten; when fewer than three would be in range or more than 40% of the axis would have
    /// no label, the first denser set that avoids both: 1-2-3-5, 1-1.5-2-3-5-7, every integer mantissa, then every half.
    /// The other integer mantissas are minor ticks. Both lists are ascending and within [min, max].
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is not a positive finite number, or min &gt; max.</exception>
    internal static (IReadOnlyList<double> Major, IReadOnlyList<double> Minor) LogTicks(double min, double max)
    {
        if (!(min > 0 && double.IsFinite(min))) throw new ArgumentOutOfRangeException(nameof(min), min, "must be a positive number");
        if (!(max >= min && double.IsFinite(max))) throw new ArgumentOutOfRangeException(nameof(max), max, "must be a number >= min");
        int d0 = (int)Math.Floor(Math.Log10(min)), d1 = (int)Math.Floor(Math.Log10(max));
        double[][] mantissas = [[1, 2, 5], [1, 2, 3, 5], [1, 1.5, 2, 3, 5, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9], [.. Enumerable.Range(2, 18).Select(i => i / 2.0)]];
        List<double> In(IEnumerable<double> m) =>
            [.. Enumerable.Range(d0, d1 - d0 + 1).SelectMany(d => m.Select(x => Round(x * Math.Pow(10, d)))).Where(v => v >= min * (1 - 1e-12) && v <= max * (1 + 1e-12))];
        // The first set with three labels in range and no stretch (ends included) over 40% of the axis without a label.
        double span = Math.Max(1e-9, Math.Log10(max / min));
        bool Dense(List<double> t) => t.Count >= 3 &&
            t.Prepend(min).Append(max).Zip(t.Append(max)).All(p => Math.Log10(p.Second / p.First) <= 0.4 * span + 1e-12);
        List<double> major = [];
        foreach (var m in mantissas)
        {
            major = In(m);
            if (Dense(major)) break;
        }
        var minor = In([1, 2, 3, 4, 5, 6, 7, 8, 9]).Where(v => !major.Contains(v)).ToList();
        return (major, minor);
    }

    /// <summary>The top of the validation-AP axis: 1 when AP passes 0.5, else the next tenth above 1.2 x the best AP (at least 0.1).</summary>
    internal static double ApAxisTop(double maxAp) => maxAp > 0.5 ? 1 : Math.Max(0.1, Math.Ceiling(maxAp * 1.2 * 10 - 1e-9) / 10);

    private static double Round(double v) => double.Parse(v.ToString("G6", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static string Format(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    /// <summary>A log10 left axis over the positive <paramref name="values"/> (plotted as log10 of the value): labelled
    /// decade and 2/5 ticks, 5 % padding; optionally visible minor grid lines.</summary>
    private static void LogAxis(ScottPlot.Plot plot, IReadOnlyCollection<double> values, bool minorGrid)
    {
        double lo = Math.Log10(values.Min()), hi = Math.Log10(values.Max());
        double pad = Math.Max(0.03, 0.05 * (hi - lo));
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        var (major, minor) = LogTicks(Math.Pow(10, lo - pad), Math.Pow(10, hi + pad));
        foreach (var m in major) ticks.AddMajor(Math.Log10(m), Format(m));
        foreach (var m in minor) ticks.AddMinor(Math.Log10(m));
        plot.Axes.Left.TickGenerator = ticks;
        if (minorGrid)
        {
            plot.Grid.YAxisStyle.MinorLineStyle.Width = 1;
            plot.Grid.YAxisStyle.MinorLineStyle.Color = ScottPlot.Colors.Black.WithOpacity(0.06);
        }
        plot.Axes.SetLimitsY(lo - pad, hi + pad, plot.Axes.Left);
    }
}
