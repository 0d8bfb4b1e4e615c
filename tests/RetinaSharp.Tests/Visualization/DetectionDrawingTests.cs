using RetinaSharp.Tests.Training;
using RetinaSharp.Visualization;
using RetinaSharp.Data;
using RetinaSharp.Training;
using SkiaSharp;

namespace RetinaSharp.Tests.Visualization;

public class DetectionDrawingTests
{
    [Fact]
    public void A_box_is_drawn_in_its_class_colour_and_the_inside_is_untouched()
    {
        var image = new RgbImage(new byte[40 * 30 * 3], 40, 30);
        using var bmp = DetectionDrawing.Render(image, [new DrawnBox(10, 8, 30, 24, 3, "")], scale: 2);
        Assert.Equal(80, bmp.Width);
        Assert.Equal(60, bmp.Height);
        var edge = bmp.GetPixel(40, 16); // top edge at y = 8 * 2
        Assert.Equal(DetectionDrawing.ColorOf(3), new SKColor(edge.Red, edge.Green, edge.Blue));
        Assert.Equal(SKColors.Black, bmp.GetPixel(40, 32)); // the centre stays black
        Assert.Equal(SKColors.Black, bmp.GetPixel(2, 2));
    }

    [Fact]
    public void Grid_png_holds_every_cell_and_labels_are_drawn()
    {
        string path = Path.Combine(TempDir.Create(), "grid.png");
        var img = new RgbImage(Enumerable.Repeat((byte)255, 32 * 32 * 3).ToArray(), 32, 32);
        var cells = Enumerable.Range(0, 5).Select(i => (img, (IReadOnlyList<DrawnBox>)[new DrawnBox(4, 12, 28, 30, i, $"class{i} 0.9")])).ToList();
        DetectionDrawing.WriteGrid(path, cells, columns: 4, scale: 2);
        using var grid = SKBitmap.Decode(path);
        Assert.Equal(4 * 64 + 5 * 4, grid.Width);
        Assert.Equal(2 * 64 + 3 * 4, grid.Height);
        // The label background sits above the box (box top y = 24 px scaled, label 14 px high) in the class colour.
        var label = grid.GetPixel(4 + 8 + 1, 4 + 24 - 12);
        Assert.NotEqual(SKColors.White, label);
        Assert.Throws<ArgumentException>(() => DetectionDrawing.WriteGrid(path, [], 4));
    }
}
