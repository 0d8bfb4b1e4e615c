using System.CommandLine;
using RetinaSharp.Cli;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Data;
using RetinaSharp.IO;

namespace RetinaSharp.Tests.Data;

public class DataCheckTests
{
    private static string WriteCoco(TempDir dir, IEnumerable<CocoImage> images, IEnumerable<CocoAnnotation> annotations, bool writeImages = true)
    {
        var imgs = images.ToList();
        if (writeImages)
            foreach (var im in imgs.DistinctBy(i => i.FileName)) ImageIO.SavePng(TinyDatasets.Solid(im.Width, im.Height, 50, 60, 70), dir[im.FileName]);
        string path = dir["ds.json"];
        CocoJson.WriteInstances(path, new CocoInstances(imgs, annotations.ToList(), new[] { new CocoCategory(1, "a"), new CocoCategory(5, "b") }));
        return path;
    }

    private static CocoAnnotation Ann(long id, long image, double x, double y, double w, double h, long cat = 1) => new(id, image, cat, x, y, w, h, w * h, false);

    private static DataProblem Single(IReadOnlyList<DataProblem> problems, DataProblemKind kind, string file, string record, string field)
    {
        var p = Assert.Single(problems);
        Assert.Equal(kind, p.Kind);
        Assert.Equal(file, p.File);
        Assert.Equal(record, p.Record);
        Assert.Equal(field, p.Field);
        string text = p.ToString();
        Assert.Contains(file, text);
        Assert.Contains(record, text);
        Assert.Contains($"'{field}'", text);
        return p;
    }

    private static IReadOnlyList<DataProblem> Check(string path) => DatasetCheck.Check(DetectionDataset.Load(path));

    [Fact]
    public void Missing_image_names_the_json_the_image_record_and_file_name()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 20, 20), new CocoImage(2, "gone.png", 20, 20) }, new CocoAnnotation[0]);
        File.Delete(dir["gone.png"]);
        var p = Single(Check(json), DataProblemKind.MissingImage, json, "image id 2", "file_name");
        Assert.Contains("gone.png", p.Value);
    }

    [Fact]
    public void Unreadable_image_is_reported()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 20, 20), new CocoImage(7, "bad.png", 20, 20) }, new CocoAnnotation[0]);
        File.WriteAllBytes(dir["bad.png"], new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 });
        var p = Single(Check(json), DataProblemKind.UnreadableImage, json, "image id 7", "file_name");
        Assert.Contains("bad.png", p.Value);
        // Decoding it directly names the file too.
        Assert.Contains("bad.png", Assert.Throws<DataFormatException>(() => ImageIO.Load(dir["bad.png"])).Message);
    }

    [Fact]
    public void Truncated_image_data_is_found_when_decoding()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(3, "t.png", 64, 64) }, new CocoAnnotation[0], writeImages: false);
        var noisy = new byte[64 * 64 * 3];
        new Random(1).NextBytes(noisy);
        byte[] png = ImageIO.EncodePng(new RgbImage(noisy, 64, 64));
        File.WriteAllBytes(dir["t.png"], png[..(png.Length / 2)]);
        Single(Check(json), DataProblemKind.UnreadableImage, json, "image id 3", "file_name");
    }

    [Fact]
    public void Size_different_from_the_file_is_reported_with_both_sizes()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(4, "a.png", 20, 30) }, new CocoAnnotation[0]);
        ImageIO.SavePng(TinyDatasets.Solid(20, 31, 1, 1, 1), dir["a.png"]);
        var p = Single(Check(json), DataProblemKind.SizeMismatch, json, "image id 4", "height");
        Assert.Equal("20x30", p.Value);
        Assert.Contains("20x31", p.Message);
    }

    [Theory]
    [InlineData(0, 10, "x2 <= x1")]
    [InlineData(10, 0, "y2 <= y1")]
    [InlineData(-3, 10, "x2 <= x1")]
    public void Degenerate_box_names_the_annotation_and_bbox(double w, double h, string why)
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 40) }, new[] { Ann(1, 1, 1, 1, 5, 5), Ann(17, 1, 5, 5, w, h) });
        var p = Single(Check(json), DataProblemKind.DegenerateBox, json, "annotation id 17", "bbox");
        Assert.Contains(why, p.Message);
        Assert.Equal($"[5, 5, {w}, {h}]", p.Value);
    }

    [Fact]
    public void Nan_box_in_a_csv_names_the_line_and_columns()
    {
        using var dir = new TempDir();
        ImageIO.SavePng(TinyDatasets.Solid(20, 20, 1, 1, 1), dir["p.png"]);
        File.WriteAllLines(dir["d.csv"], new[] { "p.png,1,2,3,4,a", "p.png,nan,2,3,4,a" });
        File.WriteAllLines(dir["classes.csv"], new[] { "a,1" });
        var p = Single(Check(dir["d.csv"]), DataProblemKind.DegenerateBox, dir["d.csv"], "line 2", "x1,y1,x2,y2");
        Assert.Contains("NaN", p.Value);
        Assert.Contains("not a finite number", p.Message);
    }

    [Fact]
    public void Voc_problems_name_the_xml_file_the_object_and_show_the_values_as_written()
    {
        using var dir = new TempDir();
        ImageIO.SavePng(TinyDatasets.Solid(50, 40, 1, 1, 1), dir["JPEGImages/000007.png"]);
        Directory.CreateDirectory(dir["Annotations"]);
        string xml = dir["Annotations/000007.xml"];
        File.WriteAllText(xml, "<annotation><filename>000007.png</filename><size><width>50</width><height>40</height></size>" +
            "<object><name>dog</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>5</xmax><ymax>40</ymax></bndbox></object></annotation>");
        var p = Single(Check(dir.Path), DataProblemKind.DegenerateBox, xml, "object #1 ('dog')", "bndbox");
        Assert.Equal("[xmin 10, ymin 10, xmax 5, ymax 40]", p.Value);
    }

    [Fact]
    public void Box_outside_the_image_is_reported()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 30) }, new[] { Ann(9, 1, 30, 10, 15, 5) });
        var p = Single(Check(json), DataProblemKind.BoxOutsideImage, json, "annotation id 9", "bbox");
        Assert.Equal("[30, 10, 15, 5]", p.Value); // as written in the file (x, y, width, height)
        Assert.Contains("x2 45", p.Message);
        Assert.Contains("40x30", p.Message);
    }

    [Fact]
    public void Unknown_category_is_reported_for_coco_and_csv()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 30) }, new[] { Ann(2, 1, 1, 1, 5, 5, cat: 3) });
        var p = Single(Check(json), DataProblemKind.UnknownCategory, json, "annotation id 2", "category_id");
        Assert.Equal("3", p.Value);

        File.WriteAllLines(dir["d.csv"], new[] { "a.png,1,2,3,4,a", "a.png,1,2,3,4,unicorn" });
        File.WriteAllLines(dir["classes.csv"], new[] { "class,id", "a,1" });
        var q = Single(Check(dir["d.csv"]), DataProblemKind.UnknownCategory, dir["d.csv"], "line 2", "class");
        Assert.Contains("unicorn", q.Value);
    }

    [Fact]
    public void Duplicate_image_and_annotation_ids_are_reported()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 30), new CocoImage(1, "b.png", 40, 30) }, new CocoAnnotation[0]);
        var p = Single(Check(json), DataProblemKind.DuplicateId, json, "image id 1", "id");
        Assert.Equal("1", p.Value);

        using var dir2 = new TempDir();
        string json2 = WriteCoco(dir2, new[] { new CocoImage(1, "a.png", 40, 30) }, new[] { Ann(6, 1, 1, 1, 5, 5), Ann(6, 1, 2, 2, 5, 5) });
        Single(Check(json2), DataProblemKind.DuplicateId, json2, "annotation id 6", "id");
    }

    [Fact]
    public void Annotation_of_an_unknown_image_is_reported()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 30) }, new[] { Ann(3, 99, 1, 1, 5, 5) });
        var p = Single(Check(json), DataProblemKind.UnknownImage, json, "annotation id 3", "image_id");
        Assert.Equal("99", p.Value);
    }

    [Fact]
    public void Repair_clips_drops_and_renumbers_and_lists_every_change()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 30), new CocoImage(2, "gone.png", 40, 30) },
            new[] { Ann(1, 1, -5, 10, 15, 5), Ann(2, 1, 5, 5, 0, 4), Ann(3, 1, 50, 5, 4, 4), Ann(1, 1, 2, 2, 3, 3), Ann(4, 1, 2, 2, 3, 3, cat: 8), Ann(5, 2, 1, 1, 3, 3) });
        File.Delete(dir["gone.png"]);
        var ds = DetectionDataset.Load(json);
        Assert.Equal(6, DatasetCheck.Check(ds).Count); // outside, degenerate, outside, duplicate id, unknown category, missing image
        var r = DatasetCheck.Repair(ds);
        Assert.Empty(DatasetCheck.Check(r.Dataset));
        var im = Assert.Single(r.Dataset.Images);
        Assert.Equal(new[] { new DetectionBox(1, 0, 10, 10, 15, 1), new DetectionBox(6, 2, 2, 5, 5, 1) }, im.Boxes);
        Assert.Equal(6, r.Changes.Count);
        Assert.Contains(r.Changes, c => c.Contains("duplicate annotation id 1 renumbered to 6"));
        Assert.Contains(r.Changes, c => c.Contains("annotation id 1") && c.Contains("clipped"));
        Assert.Contains(r.Changes, c => c.Contains("annotation id 2") && c.Contains("degenerate"));
        Assert.Contains(r.Changes, c => c.Contains("annotation id 3") && c.Contains("nothing of it lies inside"));
        Assert.Contains(r.Changes, c => c.Contains("annotation id 4") && c.Contains("unknown category"));
        Assert.Contains(r.Changes, c => c.Contains("image id 2") && c.Contains("gone.png"));
    }

    [Fact]
    public void Empty_or_truncated_json_is_a_clear_error()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["empty.json"], System.Array.Empty<byte>());
        var e = Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir["empty.json"]));
        Assert.Contains("empty.json", e.Message);
        Assert.Contains("0 bytes", e.Message);
        File.WriteAllText(dir["cut.json"], "{\"images\": [{\"id\": 1, \"file_na");
        e = Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir["cut.json"]));
        Assert.Contains("cut.json", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Missing_image_folder_is_a_clear_error()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "pics/a.png", 40, 30) }, new CocoAnnotation[0], writeImages: false);
        var e = Assert.Throws<DataFormatException>(() => DetectionDataset.Load(json));
        Assert.Equal(json, e.File);
        Assert.Equal("file_name", e.Field);
        Assert.Contains("image folder not found", e.Message);

        using var voc = new TempDir();
        Directory.CreateDirectory(voc["Annotations"]);
        Assert.Contains("JPEGImages", Assert.Throws<DataFormatException>(() => DetectionDataset.Load(voc.Path)).Message);

        File.WriteAllLines(dir["d.csv"], new[] { "nowhere/a.png,1,2,3,4,a" });
        e = Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir["d.csv"]));
        Assert.Equal(("line 1", "path"), (e.Record, e.Field));
    }

    [Theory]
    [InlineData("a.png,1,2,3,4", "expected 6 columns", null)]
    [InlineData("a.png,1,2,3,4,a,extra", "expected 6 columns", null)]
    [InlineData("a.png,1,two,3,4,a", "expected a number, found 'two'", "y1")]
    [InlineData("a.png,1,,3,4,a", "empty", "y1")]
    public void Bad_csv_rows_name_the_line_and_column(string row, string problem, string? field)
    {
        using var dir = new TempDir();
        ImageIO.SavePng(TinyDatasets.Solid(20, 20, 1, 1, 1), dir["a.png"]);
        File.WriteAllLines(dir["d.csv"], new[] { "a.png,1,2,3,4,a", row });
        var e = Assert.Throws<DataFormatException>(() => DetectionDataset.Load(dir["d.csv"]));
        Assert.Equal(dir["d.csv"], e.File);
        Assert.Equal("line 2", e.Record);
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Message);
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(DataCommand.Create());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Invoke(root, args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Cli_check_lists_problems_and_exits_2_then_repair_writes_a_clean_dataset()
    {
        using var dir = new TempDir();
        string json = WriteCoco(dir, new[] { new CocoImage(1, "a.png", 40, 30) }, new[] { Ann(1, 1, -5, 10, 15, 5), Ann(2, 1, 5, 5, 0, 4) });
        var (code, output, _) = Run("data", "check", json);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains($"{json}: annotation id 1: field 'bbox'", output);
        Assert.Contains($"{json}: annotation id 2: field 'bbox'", output);
        Assert.Contains("2 problems", output);

        string fixedJson = dir["fixed/fixed.json"];
        (code, output, _) = Run("data", "check", json, "--repair", "--out", fixedJson);
        Assert.Equal(CliApp.Ok, code);
        Assert.Contains("repair: ", output);
        Assert.Contains("clipped", output);
        var repaired = DetectionDataset.Load(fixedJson);
        Assert.Equal(dir["a.png"], repaired.Images[0].FilePath); // written relative to the new json's folder
        Assert.Equal(new DetectionBox(1, 0, 10, 10, 15, 1), Assert.Single(repaired.Images[0].Boxes));
        (code, output, _) = Run("data", "check", fixedJson);
        Assert.Equal(CliApp.Ok, code);
        Assert.Contains("no problems", output);
    }

    [Fact]
    public void Cli_bad_json_and_bad_csv_exit_2_with_one_message_and_no_stack_trace()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["empty.json"], System.Array.Empty<byte>());
        var (code, _, err) = Run("data", "check", dir["empty.json"]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.StartsWith($"error: {dir["empty.json"]}: file is empty", err);
        Assert.DoesNotContain("   at ", err); // no stack trace

        File.WriteAllLines(dir["d.csv"], new[] { "a.png,1,2,3" });
        (code, _, err) = Run("data", "check", dir["d.csv"]);
        Assert.Equal(CliApp.BadInput, code);
        Assert.Contains("line 1", err);
        Assert.Contains("expected 6 columns", err);
        Assert.DoesNotContain("   at ", err); // no stack trace
    }
}
