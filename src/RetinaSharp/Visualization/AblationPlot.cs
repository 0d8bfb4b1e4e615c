// The miniature Table 1 as one picture (ScottPlot 5, composed with SkiaSharp): on top, AP per row of every sub-table as
// bars, ours beside the paper's (both in percent; the paper's on COCO, so compare the shape); below, the training loss
// curves of sub-table (c), where the zero classification bias shows as a loss that starts orders of magnitude higher.
using RetinaSharp.Ablation;
using RetinaSharp.IO;
using RetinaSharp.Training;
using SkiaSharp;

namespace RetinaSharp.Visualization;

/// <summary>Draws a finished ablation (<see cref="AblationRunner"/>).</summary>
public static class AblationPlot
{
    /// <summary>DIR/ablation.png.</summary>
    public const string FileName = "ablation.png";

    /// <summary>Writes the picture to <paramref name="path"/> (PNG, atomically).</summary>
    /// <returns><paramref name="path"/>.</returns>
    /// <exception cref="KeyNotFoundException">A row's cell has no result.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static string Write(string path, IReadOnlyList<AblationTableDefinition> tables, IReadOnlyList<AblationRow> rows,
        IReadOnlyDictionary<string, AblationCellResult> results, int width = 1100)
    {
        AtomicFile.WriteAllBytes(path, RenderPng(tables, rows, results, width));
        return path;
    }

    /// <summary>Renders the picture of <see cref="Write"/> as PNG bytes: the AP bars (and, when sub-table c is there, its loss curves below).</summary>
    public static byte[] RenderPng(IReadOnlyList<AblationTableDefinition> tables, IReadOnlyList<AblationRow> rows,
        IReadOnlyDictionary<string, AblationCellResult> results, int width = 1100)
    {
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(results);
        var panels = new List<byte[]> { RenderBars(tables, rows, results, width, 560) };
        var curves = rows.Where(r => r.Table == AblationTable.C).Select(r => r.CellId).Distinct()
            .Select(id => (Label: PaperTable1.Cell(id).Label, results[id].Log)).ToList();
        if (curves.Count > 0)
            panels.Add(LossCurvePlot.RenderComparisonPng(curves, width, 440, "(c) training loss: prior π = 0.01 against a zero classification bias"));
        return Stack(panels);
    }

    private static byte[] RenderBars(IReadOnlyList<AblationTableDefinition> tables, IReadOnlyList<AblationRow> rows,
        IReadOnlyDictionary<string, AblationCellResult> results, int width, int height)
    {
        var plot = new ScottPlot.Plot();
        var ours = new List<ScottPlot.Bar>();
        var paper = new List<ScottPlot.Bar>();
        var ticks = new List<(double X, string Label)>();
        double x = 0, top = 10;
        foreach (var t in tables)
        {
            foreach (var r in rows.Where(r => r.Table == t.Table))
            {
                double ap = Math.Max(0, 100 * results[r.CellId].Stats.Ap);
                ours.Add(new ScottPlot.Bar { Position = x - 0.2, Value = ap, Size = 0.38, FillColor = ScottPlot.Colors.RoyalBlue, LineWidth = 0 });
                if (r.Paper.Ap is double p)
                    paper.Add(new ScottPlot.Bar { Position = x + 0.2, Value = p, Size = 0.38, FillColor = ScottPlot.Colors.Gray.WithOpacity(0.55), LineWidth = 0 });
                else
                {
                    var note = plot.Add.Text(r.Paper.Source.StartsWith("diverged", StringComparison.Ordinal) ? "paper: diverged" : "paper: n/r", x + 0.2, 1);
                    note.LabelRotation = -90;
                    note.LabelFontSize = 11;
                    note.LabelFontColor = ScottPlot.Colors.DimGray;
                }
                top = Math.Max(top, Math.Max(ap, r.Paper.Ap ?? 0));
                ticks.Add((x, $"{t.Table.ToString().ToLowerInvariant()}) {r.ShortLabel}"));
                x += 1;
            }
            x += 0.6; // a gap between sub-tables
        }
        var oursPlot = plot.Add.Bars(ours);
        oursPlot.LegendText = "ours: AP on the validation scenes (%)";
        if (paper.Count > 0)
        {
            var paperPlot = plot.Add.Bars(paper);
            paperPlot.LegendText = "paper: COCO minival AP, ResNet-50-FPN, 600 px (%)";
        }
        plot.Axes.Bottom.SetTicks([.. ticks.Select(t => t.X)], [.. ticks.Select(t => t.Label)]);
        plot.Axes.Bottom.TickLabelStyle.Rotation = 35;
        plot.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 110;
        plot.Axes.SetLimitsX(-0.8, Math.Max(1, x + 0.2));   // room on the right for the last rotated label
        plot.Axes.SetLimitsY(0, top * 1.12);
        plot.Title("The paper's Table 1 in miniature: AP per cell");
        plot.YLabel("AP (%)");
        plot.ShowLegend(ScottPlot.Edge.Top);
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }

    /// <summary>The PNG panels one below the other on white.</summary>
    private static byte[] Stack(IReadOnlyList<byte[]> panels)
    {
        var bitmaps = panels.Select(p => SKBitmap.Decode(p) ?? throw new InvalidOperationException("ScottPlot returned an unreadable PNG")).ToList();
        try
        {
            int w = bitmaps.Max(b => b.Width), h = bitmaps.Sum(b => b.Height);
            using var canvasBitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
            using (var canvas = new SKCanvas(canvasBitmap))
            {
                canvas.Clear(SKColors.White);
                int y = 0;
                foreach (var b in bitmaps)
                {
                    canvas.DrawBitmap(b, 0, y);
                    y += b.Height;
                }
            }
            return DetectionDrawing.EncodePng(canvasBitmap);
        }
        finally
        {
            foreach (var b in bitmaps) b.Dispose();
        }
    }
}
