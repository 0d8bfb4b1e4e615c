// Precision-recall curves of a COCO evaluation, one line per IoU threshold (the curves behind COCO AP: each is
// the interpolated precision of pycocotools' eval["precision"] at the 101 recall points), drawn with ScottPlot 5
// so that curves which coincide stay distinguishable (colour, width, dash pattern and offset markers per threshold).
using System.Globalization;
using RetinaSharp.Evaluation;
using RetinaSharp.IO;
using ScottPlot;

namespace RetinaSharp.Visualization;

/// <summary>Draws the precision-recall curves of a <see cref="CocoEvaluation"/> to PNG.</summary>
public static class PrCurvePlot
{
    /// <summary>
    /// Renders one curve per IoU threshold (0.50 ... 0.95, area all, 100 detections per image), precision averaged
    /// over the categories that have ground truth, or of one category. The legend gives each threshold's AP.
    /// </summary>
    /// <param name="evaluation">The evaluation to draw.</param>
    /// <param name="category">A category index k (into <see cref="CocoEvaluation.CategoryIds"/>), or null for the mean.</param>
    /// <param name="width">Image width, pixels.</param>
    /// <param name="height">Image height, pixels.</param>
    /// <returns>The PNG file's bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="category"/> is not a category index, or a size is below 100.</exception>
    public static byte[] RenderPng(CocoEvaluation evaluation, int? category = null, int width = 1000, int height = 650)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        if (category is int k && (k < 0 || k >= evaluation.CategoryIds.Count))
            throw new ArgumentOutOfRangeException(nameof(category), k, $"expected a category index in [0, {evaluation.CategoryIds.Count})");
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 100);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 100);

        var plot = new Plot();
        double[] recall = evaluation.RecallThresholds.ToArray();
        int numT = evaluation.IouThresholds.Count;
        bool any = false;
        for (int t = 0; t < numT; t++)
        {
            double[] precision = evaluation.PrecisionCurve(t, category);
            if (precision.All(p => p < 0)) continue;
            any = true;
            double ap = precision.Average();
            // Curves of neighbouring thresholds often coincide (every detection overlaps its object by more than 0.75, say).
            // Each keeps its own colour, dash pattern and marker shape; lines go from thick (IoU 0.50) to thin (0.95), so a
            // later curve drawn on an earlier one leaves the earlier one visible around it, and the markers of curve t sit at
            // recall 0.0t + 0.1k, so coinciding curves show their markers side by side.
            var color = Colormap(t / (double)Math.Max(1, numT - 1));
            float lineWidth = Math.Max(1.2f, 5.5f - 0.45f * t);
            var pattern = Patterns[t % Patterns.Length];
            var line = plot.Add.ScatterLine(recall, precision);
            line.Color = color;
            line.LineWidth = lineWidth;
            line.LinePattern = pattern;
            var idx = Enumerable.Range(0, 10).Select(j => 2 + t + 10 * j).Where(i => i < recall.Length && precision[i] >= 0).ToArray();
            var marks = plot.Add.ScatterPoints(idx.Select(i => recall[i]).ToArray(), idx.Select(i => precision[i]).ToArray());
            marks.Color = color;
            marks.MarkerShape = Markers[t % Markers.Length];
            marks.MarkerSize = 9;
            plot.Legend.ManualItems.Add(new LegendItem
            {
                LabelText = string.Create(CultureInfo.InvariantCulture, $"IoU={evaluation.IouThresholds[t]:0.00}  AP={ap:0.000}"),
                LineColor = color, LineWidth = Math.Min(lineWidth, 3f), LinePattern = pattern,
                MarkerShape = Markers[t % Markers.Length], MarkerSize = 9, MarkerColor = color,
            });
        }
        string what = category is int c
            ? $"category {evaluation.CategoryIds[c]} '{evaluation.CategoryNames[c]}'"
            : $"mean over categories";
        string ap5095 = (category is int ci ? evaluation.PerCategory[ci].Ap : evaluation.Stats.Ap).ToString("0.000", CultureInfo.InvariantCulture);
        plot.Title(any ? $"Precision-recall, {what} (area all, maxDets 100): AP@[.50:.95] = {ap5095}"
                       : $"Precision-recall, {what}: no ground truth");
        plot.XLabel("Recall");
        plot.YLabel("Precision (interpolated)");
        plot.Axes.SetLimits(-0.01, 1.01, -0.02, 1.02);
        if (any)
        {
            plot.ShowLegend(Edge.Right);
        }
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Writes <see cref="RenderPng"/> to <paramref name="path"/> atomically.</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Save(CocoEvaluation evaluation, string path, int? category = null, int width = 1000, int height = 650) =>
        AtomicFile.WriteAllBytes(path, RenderPng(evaluation, category, width, height));

    private static readonly LinePattern[] Patterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed];

    private static readonly MarkerShape[] Markers =
    [
        MarkerShape.FilledCircle, MarkerShape.OpenSquare, MarkerShape.FilledTriangleUp, MarkerShape.OpenDiamond, MarkerShape.Cross,
        MarkerShape.FilledSquare, MarkerShape.OpenCircle, MarkerShape.FilledTriangleDown, MarkerShape.Eks, MarkerShape.FilledDiamond,
    ];

    // Dark blue (IoU 0.50) to orange-red (IoU 0.95): distinct and readable on white.
    private static Color Colormap(double f)
    {
        var cmap = new ScottPlot.Colormaps.Turbo();
        return cmap.GetColor(0.1 + 0.8 * f);
    }
}
