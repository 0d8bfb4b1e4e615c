// Hostile datasets: a PNG whose header claims 100000x100000 pixels (used to overflow the decode buffer and kill the
// process with SIGSEGV), VOC sizes that were cast silently (NaN -> 0, 1e12 -> int.MaxValue, 400.7 -> 400), a VOC file
// whose root is not <annotation> (read as an image without objects), and a dataset without images ("no problems").
using System.Buffers.Binary;
using System.IO.Compression;
using RetinaSharp.Data;
using RetinaSharp.IO;

namespace RetinaSharp.Tests.BadInput;

public sealed class DatasetBadInputTests : IDisposable
{
    private readonly Scratch _s = new();

    public void Dispose() => _s.Dispose();

    /// <summary>A valid-looking PNG of <paramref name="width"/> x <paramref name="height"/> with a tiny IDAT (a decompression bomb header).</summary>
    private static byte[] PngHeader(int width, int height)
    {
        static byte[] Chunk(string type, byte[] data)
        {
            var t = System.Text.Encoding.ASCII.GetBytes(type);
            var c = new byte[12 + data.Length];
            BinaryPrimitives.WriteInt32BigEndian(c, data.Length);
            t.CopyTo(c, 4);
            data.CopyTo(c, 8);
            BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + data.Length), Crc32([.. t, .. data]));
            return c;
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2;
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true)) zs.Write(new byte[1000]);
        return [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])];
    }

    // CRC-32 of PNG chunks (ISO 3309, polynomial 0xEDB88320, reflected).
    private static uint Crc32(byte[] bytes)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Fact]
    public void Image_header_beyond_the_pixel_limit_is_refused_naming_the_file()
    {
        string png = _s["images/bomb.png"];
        Directory.CreateDirectory(_s["images"]);
        File.WriteAllBytes(png, PngHeader(100_000, 100_000));
        Assert.Equal((100_000, 100_000), ImageIO.ReadSize(png));
        var e = Assert.Throws<DataFormatException>(() => ImageIO.Load(png));
        Assert.Equal(png, e.File);
        Assert.Contains("100000x100000", e.Problem);

        string json = _s["instances.json"];
        CocoJson.WriteInstances(json, new CocoInstances([new CocoImage(7, "bomb.png", 100_000, 100_000)], [], [new CocoCategory(1, "cat")]));
        var r = Retina.Run("data", "check", json);
        Retina.AssertBadInput(r, json, "image id 7", "field 'file_name'", "bomb.png", "100000x100000");
    }

    [Theory]
    [InlineData("<width>NaN</width>", "'NaN'")]
    [InlineData("<width>1e12</width>", "'1e12'")]
    [InlineData("<width>400.7</width>", "'400.7'")]
    [InlineData("<width>-4</width>", "'-4'")]
    public void Voc_size_that_is_not_a_whole_number_of_pixels_is_refused(string width, string value)
    {
        string xml = WriteVoc($"<annotation><filename>1.png</filename><size>{width}<height>30</height></size></annotation>");
        Retina.AssertBadInput(Retina.Run("data", "check", _s["voc"]), xml, "size", "field 'size/width'", value);
    }

    [Fact]
    public void Voc_file_with_another_root_element_is_refused()
    {
        string xml = WriteVoc("<html><body>not VOC</body></html>");
        Retina.AssertBadInput(Retina.Run("data", "check", _s["voc"]), xml, "field 'html'", "<annotation>");
    }

    private string WriteVoc(string xml)
    {
        Directory.CreateDirectory(_s["voc/JPEGImages"]);
        return _s.Write("voc/Annotations/1.xml", xml);
    }

    [Theory]
    [InlineData("path,x1,y1,x2,y2,class\n")]
    [InlineData("\uFEFFpath,x1,y1,x2,y2,class\r\n\r\n")]
    public void Dataset_without_images_is_a_problem(string csv)
    {
        string path = _s.Write("data.csv", csv);
        var r = Retina.Run("data", "check", path);
        Retina.AssertBadInput(r, path, "field 'images'", "0 images", "EmptyDataset 1");
    }
}
