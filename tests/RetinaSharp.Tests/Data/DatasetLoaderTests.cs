using FsCheck;
using FsCheck.Fluent;
using RetinaSharp.Data;
using RetinaSharp.IO;

namespace RetinaSharp.Tests.Data;

public class DatasetLoaderTests
{
    private static List<(long Image, string File, int W, int H, float X1, float Y1, float X2, float Y2, long Cat)> Flatten(DetectionDataset ds) =>
        ds.Images.SelectMany(im => im.Boxes.Count == 0
                ? new[] { (im.Id, Path.GetFileName(im.FilePath), im.Width, im.Height, 0f, 0f, 0f, 0f, -1L) }
                : im.Boxes.Select(b => (im.Id, Path.GetFileName(im.FilePath), im.Width, im.Height, b.X1, b.Y1, b.X2, b.Y2, b.CategoryId)))
            .ToList();

    [Fact]
    public void Coco_voc_and_csv_give_the_same_boxes_for_the_same_images()
    {
        using var dir = new TempDir();
        var coco = DetectionDataset.Load(TinyDatasets.WriteCoco(dir["coco"]));
        var (vocRoot, vocClasses) = TinyDatasets.WriteVoc(dir["voc"]);
        var voc = DetectionDataset.Load(vocRoot, classesPath: vocClasses);
        var csv = DetectionDataset.Load(TinyDatasets.WriteCsv(dir["csv"]));

        Assert.Equal(DatasetFormat.Coco, coco.Format);
        Assert.Equal(DatasetFormat.Voc, voc.Format);
        Assert.Equal(DatasetFormat.Csv, csv.Format);
        var expected = Flatten(coco);
        Assert.Equal(4, expected.Count); // 3 boxes + 1 image without boxes
        Assert.Equal(expected, Flatten(voc));
        Assert.Equal(expected, Flatten(csv));
        // The reference values, written by hand: image a.png, second box (20, 5, 39, 29) of class bird (id 90).
        Assert.Contains((1L, "a.png", 40, 30, 20f, 5f, 39f, 29f, 90L), expected);
        foreach (var ds in new[] { coco, voc, csv })
        {
            Assert.Equal(new long[] { 3, 7, 90 }, ds.Categories.Categories.Select(c => c.Id));
            Assert.Empty(ds.Images[2].Boxes); // the negative image is kept
            Assert.True(Path.IsPathRooted(ds.Images[0].FilePath) && File.Exists(ds.Images[0].FilePath));
            Assert.Empty(DatasetCheck.Check(ds));
        }
    }

    [Fact]
    public void Coco_bbox_xywh_becomes_xyxy_and_back()
    {
        using var dir = new TempDir();
        ImageIO.SavePng(TinyDatasets.Solid(100, 80, 1, 2, 3), dir["im.png"]);
        var inst = new CocoInstances(
            new[] { new CocoImage(42, "im.png", 100, 80) },
            new[] { new CocoAnnotation(5, 42, 1, 10, 20, 30, 40, 1200, true) },
            new[] { new CocoCategory(1, "thing") });
        CocoJson.WriteInstances(dir["x.json"], inst);
        var ds = DetectionDataset.Load(dir["x.json"]);
        var b = Assert.Single(ds.Images[0].Boxes);
        Assert.Equal(new DetectionBox(5, 10, 20, 40, 60, 1, IsCrowd: true), b);
        Assert.Equal(dir["im.png"], ds.Images[0].FilePath); // file_name relative to the json's folder

        var back = ds.ToCoco();
        var a = Assert.Single(back.Annotations);
        Assert.Equal((10.0, 20.0, 30.0, 40.0, 1200.0, true), (a.X, a.Y, a.Width, a.Height, a.Area, a.IsCrowd));
        Assert.Equal(42, a.ImageId);
        Assert.Equal(dir["im.png"], back.Images[0].FileName);
        Assert.Equal("im.png", ds.ToCoco(relativeTo: dir.Path).Images[0].FileName);
    }

    [Fact]
    public void Coco_images_are_found_in_the_images_subfolder()
    {
        using var dir = new TempDir();
        var ds = DetectionDataset.Load(TinyDatasets.WriteCoco(dir.Path, imagesSubfolder: true));
        Assert.Equal(dir["images/a.png"], ds.Images[0].FilePath);
        using var dir2 = new TempDir();
        var ds2 = DetectionDataset.Load(TinyDatasets.WriteCoco(dir2.Path, imagesSubfolder: false));
        Assert.Equal(dir2["a.png"], ds2.Images[0].FilePath);
    }

    [Fact]
    public void Category_ids_with_gaps_map_to_contiguous_indices_in_id_order()
    {
        var map = new CategoryMap(new[] { new CocoCategory(90, "toothbrush"), new CocoCategory(1, "person"), new CocoCategory(17, "cat") });
        Assert.Equal(3, map.Count);
        Assert.Equal(0, map.ToIndex(1));
        Assert.Equal(1, map.ToIndex(17));
        Assert.Equal(2, map.ToIndex(90));
        Assert.Equal(90, map.ToCategoryId(2));
        Assert.Equal("cat", map.Name(1));
        var e = Assert.Throws<ArgumentException>(() => map.ToIndex(2));
        Assert.Contains("2", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => map.ToCategoryId(3));
        Assert.Throws<ArgumentException>(() => new CategoryMap(new[] { new CocoCategory(1, "a"), new CocoCategory(1, "b") }));
    }

    [Fact]
    public void Category_map_round_trips_for_any_distinct_ids()
    {
        Prop.ForAll(Gen.ListOf(ArbMap.Default.GeneratorFor<long>()).Select(l => l.Distinct().ToArray()).ToArbitrary(), ids =>
        {
            var map = new CategoryMap(ids.Select(i => new CocoCategory(i, $"c{i}")));
            bool idsRoundTrip = ids.All(id => map.ToCategoryId(map.ToIndex(id)) == id);
            bool indicesRoundTrip = Enumerable.Range(0, map.Count).All(i => map.ToIndex(map.ToCategoryId(i)) == i);
            bool ordered = Enumerable.Range(1, Math.Max(0, map.Count - 1)).All(i => map.ToCategoryId(i - 1) < map.ToCategoryId(i));
            return idsRoundTrip && indicesRoundTrip && ordered && map.Count == ids.Length;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Voc_uses_the_standard_class_ids_and_shifts_one_based_corners()
    {
        using var dir = new TempDir();
        string root = dir.Path;
        ImageIO.SavePng(TinyDatasets.Solid(50, 40, 9, 9, 9), Path.Combine(root, "JPEGImages", "000005.png"));
        Directory.CreateDirectory(Path.Combine(root, "Annotations"));
        File.WriteAllText(Path.Combine(root, "Annotations", "000005.xml"),
            "<annotation><filename>000005.png</filename><size><width>50</width><height>40</height></size>" +
            "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object></annotation>");
        var ds = DetectionDataset.Load(root);
        Assert.Equal(20, ds.Categories.Count);
        var im = Assert.Single(ds.Images);
        Assert.Equal(5, im.Id); // digits of the file stem
        Assert.Equal(new DetectionBox(1, 0, 1, 30, 40, 12, Difficult: true), Assert.Single(im.Boxes)); // dog is VOC class 12
        Assert.True(ds.ToCoco().Annotations[0].IsCrowd); // difficult is ignored in matching, like crowd
    }

    [Fact]
    public void Csv_without_mapping_file_numbers_sorted_names_from_one_and_keeps_empty_images()
    {
        using var dir = new TempDir();
        ImageIO.SavePng(TinyDatasets.Solid(20, 10, 9, 9, 9), dir["p.png"]);
        ImageIO.SavePng(TinyDatasets.Solid(10, 20, 9, 9, 9), dir["q.png"]);
        File.WriteAllLines(dir["d.csv"], new[] { "p.png,1,2,3,4,zebra", "q.png,,,,,", "p.png,5,6,7,8,ant" });
        var ds = DetectionDataset.Load(dir["d.csv"]);
        Assert.Equal(new[] { (1L, "ant"), (2L, "zebra") }, ds.Categories.Categories.Select(c => (c.Id, c.Name)));
        Assert.Equal(2, ds.Images.Count);
        Assert.Equal((20, 10), (ds.Images[0].Width, ds.Images[0].Height)); // CSV sizes come from the image headers
        Assert.Equal(new[] { 2L, 1L }, ds.Images[0].Boxes.Select(b => b.CategoryId));
        Assert.Empty(ds.Images[1].Boxes);
    }

    [Fact]
    public void Unknown_dataset_kinds_are_clear_errors()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir["nope.json"]));
        Assert.Contains("nope.json", e.Message);
        File.WriteAllText(dir["x.txt"], "hello");
        Assert.Contains(".txt", Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir["x.txt"])).Message);
        Assert.Contains("Annotations", Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir.Path)).Message);
    }
}
