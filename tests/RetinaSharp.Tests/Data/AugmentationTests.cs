using RetinaSharp.Data;

namespace RetinaSharp.Tests.Data;

public class AugmentationTests
{
    private static RgbImage Indexed(int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(i % 251);
        return new RgbImage(px, w, h);
    }

    private static RgbImage WithWhiteRect(int w, int h, int x1, int y1, int x2, int y2)
    {
        var px = new byte[w * h * 3];
        for (int y = y1; y < y2; y++)
            for (int x = x1; x < x2; x++)
                px[3 * (y * w + x)] = px[3 * (y * w + x) + 1] = px[3 * (y * w + x) + 2] = 255;
        return new RgbImage(px, w, h);
    }

    private static byte At(RgbImage im, int x, int y) => im.Pixels[3 * (y * im.Width + x)];

    [Fact]
    public void Horizontal_flip_mirrors_pixels_and_moves_boxes_exactly()
    {
        var im = Indexed(5, 3);
        var (flipped, boxes) = Augmentation.HorizontalFlip(im, new float[] { 1, 0, 3, 2, 0, 1, 5, 3 });
        Assert.Equal(new float[] { 2, 0, 4, 2, 0, 1, 5, 3 }, boxes); // x1' = W - x2, x2' = W - x1 with W = 5
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 5; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(im.Pixels[3 * (y * 5 + 4 - x) + c], flipped.Pixels[3 * (y * 5 + x) + c]);
        var (twice, back) = Augmentation.HorizontalFlip(flipped, boxes);
        Assert.Equal(im.Pixels, twice.Pixels);
        Assert.Equal(new float[] { 1, 0, 3, 2, 0, 1, 5, 3 }, back);
    }

    [Fact]
    public void Flipped_box_still_encloses_exactly_the_object()
    {
        var im = WithWhiteRect(10, 6, 1, 2, 4, 5);
        var (flipped, boxes) = Augmentation.HorizontalFlip(im, new float[] { 1, 2, 4, 5 });
        Assert.Equal(new float[] { 6, 2, 9, 5 }, boxes);
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 10; x++)
                Assert.Equal(x >= 6 && x < 9 && y >= 2 && y < 5 ? 255 : 0, At(flipped, x, y));
    }

    [Fact]
    public void Resize_of_the_shorter_side_scales_boxes_by_the_size_ratio()
    {
        var im = WithWhiteRect(20, 10, 4, 2, 8, 6);
        var (resized, boxes) = Augmentation.ResizeShorterSide(im, new float[] { 4, 2, 8, 6 }, 20);
        Assert.Equal((40, 20), (resized.Width, resized.Height));
        Assert.Equal(new float[] { 8, 4, 16, 12 }, boxes);
        // Inside the box (one pixel in from the edge) the object is white; one pixel outside it is black.
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 40; x++)
            {
                if (x >= 9 && x < 15 && y >= 5 && y < 11) Assert.Equal(255, At(resized, x, y));
                if (x < 7 || x >= 17 || y < 3 || y >= 13) Assert.Equal(0, At(resized, x, y));
            }
        // Bilinear with half-pixel centres: x = 8 samples source 3.75 = 0.25 * 0 + 0.75 * 255.
        Assert.Equal(191, At(resized, 8, 8));
    }

    [Fact]
    public void Resize_rounds_the_size_and_scales_each_axis_by_its_own_ratio()
    {
        var (r, boxes) = Augmentation.ResizeShorterSide(Indexed(30, 20), new float[] { 3, 2, 30, 20 }, 25);
        Assert.Equal((38, 25), (r.Width, r.Height)); // 30 * 1.25 = 37.5 -> 38
        Assert.Equal(new[] { 3f * 38 / 30, 2f * 25 / 20, 38f, 25f }, boxes);
        var (capped, _) = Augmentation.ResizeShorterSide(Indexed(100, 50), System.Array.Empty<float>(), 100, maxLongerSide: 150);
        Assert.Equal((150, 75), (capped.Width, capped.Height));
        Assert.Throws<ArgumentException>(() => Augmentation.HorizontalFlip(Indexed(2, 2), new float[] { 1, 2, 3 }));
    }

    [Fact]
    public void Apply_is_deterministic_for_a_seed_and_picks_from_the_scale_list()
    {
        var options = new AugmentationOptions(ShorterSideScales: new[] { 16, 24, 32 });
        var sizes = new HashSet<int>();
        for (int seed = 0; seed < 40; seed++)
        {
            var (a, ba) = Augmentation.Apply(Indexed(20, 10), new float[] { 1, 1, 5, 5 }, options, new Random(seed));
            var (b, bb) = Augmentation.Apply(Indexed(20, 10), new float[] { 1, 1, 5, 5 }, options, new Random(seed));
            Assert.Equal(a.Pixels, b.Pixels);
            Assert.Equal(ba, bb);
            sizes.Add(a.Height);
        }
        Assert.Equal(new HashSet<int> { 16, 24, 32 }, sizes);
        Assert.Throws<ArgumentException>(() => new AugmentationOptions(ShorterSideRange: (10, 5)).Validate());
        Assert.Throws<ArgumentException>(() => new AugmentationOptions(ShorterSideScales: new[] { 0 }).Validate());
    }
}
