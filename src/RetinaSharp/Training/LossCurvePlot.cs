// The loss curve of a run as a PNG (ScottPlot 5): total loss and each term against the iteration,
// log-scaled y like detectron2/tensorboard loss plots are usually read, plus validation AP when present.
using RetinaSharp.IO;

namespace RetinaSharp.Training;

/// <summary>Draws a <see cref="TrainingLog"/>.</summary>
public static class LossCurvePlot
{
    /// <summary>Writes the loss curve of <paramref name="log"/> to <paramref name="path"/> (PNG, atomically).</summary>
    /// <param name="log">The run's log; skipped (non-finite) steps are left out.</param>
    /// <param name="path">The PNG file.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Write(TrainingLog log, string path, int width = 900, int height = 500)
    {
        var plot = new ScottPlot.Plot();
        var rows = log.Steps.Where(r => !r.Skipped && double.IsFinite(r.Loss) && r.Loss > 0).ToList();
        if (rows.Count > 0)
        {
            var xs = rows.Select(r => (double)r.Iteration).ToArray();
            var total = plot.Add.Scatter(xs, rows.Select(r => Math.Log10(r.Loss)).ToArray());
            total.LegendText = "total";
            total.LineWidth = 2;
            total.MarkerSize = 0;
            foreach (var term in rows.SelectMany(r => r.Terms.Keys).Distinct())
            {
                var pts = rows.Where(r => r.Terms.TryGetValue(term, out var v) && v > 0 && double.IsFinite(v)).ToList();
                if (pts.Count == 0) continue;
                var s = plot.Add.Scatter(pts.Select(r => (double)r.Iteration).ToArray(), pts.Select(r => Math.Log10(r.Terms[term])).ToArray());
                s.LegendText = term;
                s.MarkerSize = 0;
            }
            var ticks = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = y => Math.Pow(10, y).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            };
            plot.Axes.Left.TickGenerator = ticks;
        }
        var vals = log.Validations.Where(v => v.Metrics.ContainsKey("AP")).ToList();
        if (vals.Count > 0)
        {
            var right = plot.Axes.Right;
            var ap = plot.Add.Scatter(vals.Select(v => (double)v.Iteration).ToArray(), vals.Select(v => v.Metrics["AP"]).ToArray());
            ap.Axes.YAxis = right;
            ap.LegendText = "val AP";
            right.Label.Text = "validation AP";
        }
        plot.Title("Training loss");
        plot.XLabel("iteration");
        plot.YLabel("loss (log scale)");
        plot.ShowLegend();
        byte[] png = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, png);
    }
}
