using System.Globalization;
using RetinaSharp.Data;

namespace RetinaSharp.Tests.Data;

/// <summary>A temporary folder deleted at the end of a test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "retinasharp-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Small datasets written by the tests themselves, the same content in COCO, VOC and CSV.</summary>
internal static class TinyDatasets
{
    /// <summary>An image of the tiny dataset: file, size, boxes as (x1, y1, x2, y2, class name).</summary>
    public sealed record TinyImage(string File, int Width, int Height, (float X1, float Y1, float X2, float Y2, string Class)[] Boxes);

    /// <summary>Category ids with gaps, as in COCO.</summary>
    public static readonly (long Id, string Name)[] Classes = { (3, "cat"), (7, "dog"), (90, "bird") };

    public static readonly TinyImage[] Images =
    {
        new("a.png", 40, 30, new[] { (2f, 3f, 12f, 20f, "cat"), (20f, 5f, 39f, 29f, "bird") }),
        new("b.png", 24, 32, new[] { (0f, 0f, 24f, 32f, "dog") }),
        new("c.png", 16, 16, System.Array.Empty<(float, float, float, float, string)>()),
    };

    public static RgbImage Solid(int w, int h, byte r, byte g, byte b)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) { px[3 * i] = r; px[3 * i + 1] = g; px[3 * i + 2] = b; }
        return new RgbImage(px, w, h);
    }

    public static void WriteImages(string folder)
    {
        byte v = 40;
        foreach (var im in Images) ImageIO.SavePng(Solid(im.Width, im.Height, v, (byte)(v + 10), (byte)(v + 20)), Path.Combine(folder, im.File));
    }

    public static long IdOf(string name) => Classes.First(c => c.Name == name).Id;

    /// <summary>COCO json at root/instances.json with the images in root/images/.</summary>
    public static string WriteCoco(string root, bool imagesSubfolder = true)
    {
        WriteImages(imagesSubfolder ? Path.Combine(root, "images") : root);
        var images = Images.Select((im, i) => new CocoImage(i + 1, im.File, im.Width, im.Height)).ToList();
        var anns = new List<CocoAnnotation>();
        for (int i = 0; i < Images.Length; i++)
            foreach (var b in Images[i].Boxes)
                anns.Add(new CocoAnnotation(100 + anns.Count, i + 1, IdOf(b.Class), b.X1, b.Y1, b.X2 - b.X1, b.Y2 - b.Y1, (b.X2 - b.X1) * (b.Y2 - b.Y1), false));
        var cats = Classes.Select(c => new CocoCategory(c.Id, c.Name)).ToList();
        string path = Path.Combine(root, "instances.json");
        CocoJson.WriteInstances(path, new CocoInstances(images, anns, cats));
        return path;
    }

    /// <summary>Pascal VOC folder (1-based inclusive corners: xmin = x1 + 1), with a class,id file.</summary>
    public static (string Root, string Classes) WriteVoc(string root)
    {
        WriteImages(Path.Combine(root, "JPEGImages"));
        Directory.CreateDirectory(Path.Combine(root, "Annotations"));
        Directory.CreateDirectory(Path.Combine(root, "ImageSets", "Main"));
        var stems = new List<string>();
        foreach (var im in Images)
        {
            string stem = Path.GetFileNameWithoutExtension(im.File);
            stems.Add(stem);
            var objects = string.Concat(im.Boxes.Select(b =>
                $"<object><name>{b.Class}</name><difficult>0</difficult><bndbox><xmin>{F(b.X1 + 1)}</xmin><ymin>{F(b.Y1 + 1)}</ymin><xmax>{F(b.X2)}</xmax><ymax>{F(b.Y2)}</ymax></bndbox></object>"));
            File.WriteAllText(Path.Combine(root, "Annotations", stem + ".xml"),
                $"<annotation><filename>{im.File}</filename><size><width>{im.Width}</width><height>{im.Height}</height><depth>3</depth></size>{objects}</annotation>");
        }
        File.WriteAllLines(Path.Combine(root, "ImageSets", "Main", "trainval.txt"), stems);
        string classes = Path.Combine(root, "classes.csv");
        File.WriteAllLines(classes, Classes.Select(c => $"{c.Name},{c.Id}"));
        return (root, classes);
    }

    /// <summary>CSV file root/annotations.csv with classes.csv beside it and images in root/img/.</summary>
    public static string WriteCsv(string root)
    {
        WriteImages(Path.Combine(root, "img"));
        var lines = new List<string> { "path,x1,y1,x2,y2,class" };
        foreach (var im in Images)
        {
            if (im.Boxes.Length == 0) lines.Add($"img/{im.File},,,,,");
            foreach (var b in im.Boxes) lines.Add($"img/{im.File},{F(b.X1)},{F(b.Y1)},{F(b.X2)},{F(b.Y2)},{b.Class}");
        }
        string path = Path.Combine(root, "annotations.csv");
        File.WriteAllLines(path, lines);
        File.WriteAllLines(Path.Combine(root, "classes.csv"), Classes.Select(c => $"{c.Name},{c.Id}"));
        return path;
    }

    public static string F(float v) => v.ToString(CultureInfo.InvariantCulture);
}
