using RetinaSharp.Data;
using RetinaSharp.IO;
using SkiaSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Data;

public class ImageIOTests
{
    [Fact]
    public void Png_round_trip_is_exact_and_to_tensor_is_chw_in_0_1()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        var px = new byte[] { 255, 0, 51, 10, 20, 30, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }; // 3x2
        var im = new RgbImage(px, 3, 2);
        ImageIO.SavePng(im, dir["x.png"]);
        var back = ImageIO.Load(dir["x.png"]);
        Assert.Equal((3, 2), (back.Width, back.Height));
        Assert.Equal(px, back.Pixels);
        var t = ImageIO.ToTensor(back);
        Assert.Equal(new long[] { 3, 2, 3 }, t.shape);
        Assert.Equal(1f, t[0, 0, 0].item<float>());
        Assert.Equal(0f, t[1, 0, 0].item<float>());
        Assert.Equal(0.2f, t[2, 0, 0].item<float>(), 6);
        Assert.Equal(9f / 255f, t[2, 1, 2].item<float>(), 6);
    }

    [Fact]
    public void Grey_images_become_three_equal_channels()
    {
        using var dir = new TempDir();
        var info = new SKImageInfo(4, 2, SKColorType.Gray8, SKAlphaType.Opaque);
        using (var bmp = new SKBitmap(info))
        {
            for (int y = 0; y < 2; y++) for (int x = 0; x < 4; x++) bmp.SetPixel(x, y, new SKColor((byte)(x * 60), (byte)(x * 60), (byte)(x * 60)));
            using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(dir["g.png"], data.ToArray());
        }
        var im = ImageIO.Load(dir["g.png"]);
        Assert.Equal(24, im.Pixels.Length);
        Assert.Equal(new byte[] { 180, 180, 180 }, im.Pixels[9..12]); // pixel (3, 0)
    }

    [Fact]
    public void Exif_orientation_is_applied()
    {
        using var dir = new TempDir();
        // 16x8 stored: left half red, right half blue. EXIF orientation 6 = the viewer rotates 90 degrees clockwise,
        // so the displayed image is 8x16 with red on top.
        var px = new byte[16 * 8 * 3];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 16; x++)
            {
                int i = 3 * (y * 16 + x);
                if (x < 8) px[i] = 255; else px[i + 2] = 255;
            }
        var info = new SKImageInfo(16, 8, SKColorType.Rgba8888, SKAlphaType.Opaque);
        byte[] jpeg;
        using (var bmp = new SKBitmap(info))
        {
            for (int y = 0; y < 8; y++) for (int x = 0; x < 16; x++) bmp.SetPixel(x, y, x < 8 ? SKColors.Red : SKColors.Blue);
            using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, 95);
            jpeg = data.ToArray();
        }
        byte[] app1 =
        {
            0xFF, 0xE1, 0, 34, (byte)'E', (byte)'x', (byte)'i', (byte)'f', 0, 0,
            (byte)'I', (byte)'I', 0x2A, 0, 8, 0, 0, 0,     // TIFF header, little-endian, IFD at 8
            1, 0,                                          // one entry
            0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0,      // Orientation (0x0112), SHORT, 1, value 6
            0, 0, 0, 0,                                    // no next IFD
        };
        File.WriteAllBytes(dir["o.jpg"], jpeg[..2].Concat(app1).Concat(jpeg[2..]).ToArray());
        var im = ImageIO.Load(dir["o.jpg"]);
        Assert.Equal((8, 16), (im.Width, im.Height));
        Assert.Equal((8, 16), ImageIO.ReadSize(dir["o.jpg"]));
        byte[] top = im.Pixels[(3 * (2 * 8 + 4))..(3 * (2 * 8 + 4) + 3)], bottom = im.Pixels[(3 * (13 * 8 + 4))..(3 * (13 * 8 + 4) + 3)];
        Assert.True(top[0] > 200 && top[2] < 60, $"top should be red, is {string.Join(",", top)}");
        Assert.True(bottom[2] > 200 && bottom[0] < 60, $"bottom should be blue, is {string.Join(",", bottom)}");
    }

    [Fact]
    public void Empty_missing_or_corrupt_files_name_the_file()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["empty.png"], System.Array.Empty<byte>());
        Assert.Contains("empty.png: image file is empty", Assert.Throws<DataFormatException>(() => ImageIO.Load(dir["empty.png"])).Message);
        Assert.Contains("nope.jpg", Assert.Throws<DataFormatException>(() => ImageIO.Load(dir["nope.jpg"])).Message);
        File.WriteAllText(dir["text.jpg"], "not an image");
        Assert.Contains("not a readable image", Assert.Throws<DataFormatException>(() => ImageIO.ReadSize(dir["text.jpg"])).Message);
    }
}
