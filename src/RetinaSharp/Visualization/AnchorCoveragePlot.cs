// The anchor coverage of a dataset as a PNG (ScottPlot 5): the histogram of every box's best anchor IoU, bars coloured
// by what the matcher does with it (below bg: only a low-quality match; [bg, fg): ignored only; >= fg: positive), the
// thresholds as vertical lines, and with a fit the fitted anchors' histogram as a line over it.
using RetinaSharp.Analysis;
using RetinaSharp.IO;

namespace RetinaSharp.Visualization;

/// <summary>Draws an <see cref="AnchorCoverageResult"/>.</summary>
public static class AnchorCoveragePlot
{
    /// <summary>Writes the best-IoU histogram of <paramref name="configured"/> (and <paramref name="fitted"/>) to <paramref name="path"/> (PNG, atomically).</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Write(AnchorCoverageResult configured, string path, AnchorCoverageResult? fitted = null, int width = 900, int height = 500) =>
        AtomicFile.WriteAllBytes(path, RenderPng(configured, fitted, width, height));

    /// <summary>Renders the picture of <see cref="Write"/> as PNG bytes.</summary>
    public static byte[] RenderPng(AnchorCoverageResult configured, AnchorCoverageResult? fitted = null, int width = 900, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(configured);
        const int Bins = 20;
        var plot = new ScottPlot.Plot();
        var hist = configured.BestIouHistogram(Bins);
        double fg = configured.Settings.FgIouThreshold, bg = configured.Settings.BgIouThreshold;
        var bars = new List<ScottPlot.Bar>();
        for (int i = 0; i < Bins; i++)
        {
            double centre = (i + 0.5) / Bins;
            var color = centre >= fg ? ScottPlot.Colors.SeaGreen : centre >= bg ? ScottPlot.Colors.Orange : ScottPlot.Colors.IndianRed;
            bars.Add(new ScottPlot.Bar { Position = centre, Value = hist[i], FillColor = color, Size = 0.9 / Bins, LineWidth = 0 });
        }
        plot.Add.Bars(bars);
        var o = configured.Overall;
        plot.Add.VerticalLine(bg, 1, ScottPlot.Colors.Gray).LegendText = $"bg {bg:0.##}";
        plot.Add.VerticalLine(fg, 2, ScottPlot.Colors.Black).LegendText = $"fg {fg:0.##}";
        var legend = $"configured: {o.PositiveFraction:P1} positive, {o.IgnoredOnlyFraction:P1} ignored only, {o.NoneFraction:P1} none";
        var marker = plot.Add.Marker(-1, 0);
        marker.LegendText = legend;
        marker.Color = ScottPlot.Colors.SeaGreen;
        if (fitted != null)
        {
            var fh = fitted.BestIouHistogram(Bins);
            var line = plot.Add.Scatter(Enumerable.Range(0, Bins).Select(i => (i + 0.5) / Bins).ToArray(), fh.Select(v => (double)v).ToArray());
            line.LineWidth = 2;
            line.Color = ScottPlot.Colors.RoyalBlue;
            var f = fitted.Overall;
            line.LegendText = $"fitted: {f.PositiveFraction:P1} positive, {f.IgnoredOnlyFraction:P1} ignored only, {f.NoneFraction:P1} none";
        }
        plot.Axes.SetLimitsX(0, 1);
        plot.Axes.SetLimitsY(0, Math.Max(1, Math.Max(hist.Max(), fitted?.BestIouHistogram(Bins).Max() ?? 0)) * 1.08);
        plot.Title($"Best anchor IoU per ground-truth box ({configured.BoxCount} boxes, {configured.ImageCount} images)");
        plot.XLabel("best anchor IoU (training resize)");
        plot.YLabel("boxes");
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }
}
