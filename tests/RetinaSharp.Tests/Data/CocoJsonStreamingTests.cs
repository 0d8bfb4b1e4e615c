// CocoJson.ReadResults / ReadInstances read files record by record (StreamingJsonFile): values, skipped fields, number
// formats, every error naming file, record, field and value, and the same answers whatever the buffer size (tiny
// buffers make every record cross a refill).
using System.Text;
using FsCheck.Xunit;
using RetinaSharp.Data;
using RetinaSharp.IO;
using RetinaSharp.Tests.BadInput;

namespace RetinaSharp.Tests.Data;

public sealed class CocoJsonStreamingTests : IDisposable
{
    private const string Good = """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}""";
    private readonly Scratch _s = new();

    public void Dispose() => _s.Dispose();

    private string Results(string text) => _s.Write("results.json", text);

    private DataFormatException Bad(string text)
    {
        string path = Results(text);
        var e = Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(path));
        Assert.Equal(path, e.File);
        // The same error through tiny buffers (every record crosses a refill).
        foreach (int size in new[] { 16, 33 })
            Assert.Equal(e.Message, Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(path, size)).Message);
        return e;
    }

    [Fact]
    public void Fields_in_any_order_unknown_fields_skipped_number_formats_accepted()
    {
        string path = Results("""
            [
              {"score": 1e-1, "bbox": [1.5, 2, 3e1, 4E0], "extra": {"nested": [1, {"b": "}]\"{"}], "s": null}, "category_id": 18, "image_id": 42, "segmentation": [[1, 2, 3]]},
              {"image_id": 1e2, "category_id": 3.0, "bbox": [-1, -2.25, 0, 0], "score": 1, "id": 5, "area": "big", "iscrowd": "x"},
              {"image_\u0069d": 7, "category_id": -9223372036854775808, "bbox": [0, 0, 1, 1], "score": -0.0}
            ]
            """);
        foreach (int size in new[] { StreamingJsonFile.DefaultBufferSize, 16, 17, 50 })
        {
            var r = CocoJson.ReadResults(path, size);
            Assert.Equal(3, r.Count);
            Assert.Equal(new CocoResult(42, 18, 1.5, 2, 30, 4, 0.1), r[0]);
            Assert.Equal(new CocoResult(100, 3, -1, -2.25, 0, 0, 1), r[1]);
            Assert.Equal(new CocoResult(7, long.MinValue, 0, 0, 1, 1, 0), r[2]);
        }
    }

    [Theory]
    [InlineData("[]")]
    [InlineData(" \n[ ] \n")]
    [InlineData("// no detections\n[ /* none */ ]")]
    [InlineData("\uFEFF[]")]
    public void Empty_array_with_whitespace_comments_or_bom_is_no_detections(string text) =>
        Assert.Empty(CocoJson.ReadResults(Results(text)));

    [Fact]
    public void Trailing_commas_are_accepted_as_before()
    {
        var r = CocoJson.ReadResults(Results("""[{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10,], "score": 0.5,},]"""));
        Assert.Equal(new CocoResult(4, 1, 0, 0, 10, 10, 0.5), Assert.Single(r));
    }

    public static TheoryData<string, string, string, string> WrongFields => new()
    {
        // record text, record, field, value in the message
        { """{"image_id": "4", "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1", "image_id", "expected an integer, found \"4\"" },
        { """{"image_id": 4.5, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1", "image_id", "expected an integer, found 4.5" },
        { """{"image_id": 1e400, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1", "image_id", "expected an integer, found 1e400" },
        { """{"image_id": [4], "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1", "image_id", "expected an integer, found [4]" },
        { """{"image_id": 4, "category_id": null, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1 (image_id 4)", "category_id", "expected an integer, found null" },
        { """{"image_id": 4, "category_id": 1, "bbox": "0 0 10 10", "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected [x, y, width, height], found \"0 0 10 10\"" },
        { """{"image_id": 4, "category_id": 1, "bbox": {"x": 0}, "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected [x, y, width, height], found {\"x\": 0}" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected [x, y, width, height], found [0, 0, 10]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10, 1], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected [x, y, width, height], found [0, 0, 10, 10, 1]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, "0", 10, 10], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected 4 finite numbers, found [0, \"0\", 10, 10]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, [10], 10], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected 4 finite numbers, found [0, 0, [10], 10]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 1e999, 10], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "expected 4 finite numbers, found [0, 0, 1e999, 10]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, -3, 10], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "negative width or height: [0, 0, -3, 10]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0.5, 0, 10, -1e-3], "score": 0.5}""", "result #1 (image_id 4)", "bbox", "negative width or height: [0.5, 0, 10, -0.001]" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10], "score": "high"}""", "result #1 (image_id 4)", "score", "not a finite number: \"high\"" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10], "score": true}""", "result #1 (image_id 4)", "score", "not a finite number: true" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10], "score": -1e309}""", "result #1 (image_id 4)", "score", "not a finite number: -1e309" },
        // missing fields
        { """{"category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1", "image_id", "missing" },
        { """{"image_id": 4, "bbox": [0, 0, 10, 10], "score": 0.5}""", "result #1 (image_id 4)", "category_id", "missing" },
        { """{"image_id": 4, "category_id": 1, "score": 0.5}""", "result #1 (image_id 4)", "bbox", "missing" },
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10]}""", "result #1 (image_id 4)", "score", "missing" },
        { """{}""", "result #1", "image_id", "missing" },
        // checked in a fixed order whatever the order in the file: image_id, category_id, bbox, score
        { """{"score": "high", "bbox": [0, 0, -3, 10], "category_id": 1, "image_id": 4}""", "result #1 (image_id 4)", "bbox", "negative width or height" },
        // a field given twice: the last one counts (as JsonElement.TryGetProperty did)
        { """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5, "score": "again"}""", "result #1 (image_id 4)", "score", "\"again\"" },
    };

    [Theory]
    [MemberData(nameof(WrongFields))]
    public void Wrong_or_missing_field_names_record_field_and_value(string record, string recordName, string field, string problem)
    {
        var e = Bad($"[{Good},\n {record}, {Good}]");
        Assert.Equal(recordName, e.Record);
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Problem);
        Assert.StartsWith($"{e.File}: {recordName}: field '{field}': ", e.Message);
    }

    [Theory]
    [InlineData("[{Good}, 3]", "Number")]
    [InlineData("[{Good}, [1, 2]]", "Array")]
    [InlineData("[{Good}, null]", "Null")]
    public void An_element_that_is_not_an_object_is_named(string text, string kind)
    {
        var e = Bad(text.Replace("{Good}", Good));
        Assert.Equal("result #1", e.Record);
        Assert.Null(e.Field);
        Assert.Equal($"expected an object, found {kind}", e.Problem);
    }

    [Theory]
    [InlineData("""{"image_id": 1}""", "Object")]
    [InlineData("\"results\"", "String")]
    [InlineData("17", "Number")]
    public void A_root_that_is_not_an_array_is_refused(string text, string kind) =>
        Assert.Equal($"expected a JSON array of detections, found {kind}", Bad(text).Problem);

    [Fact]
    public void NaN_and_Infinity_literals_are_not_json_and_name_the_line()
    {
        // Python's json.dump writes NaN and Infinity, which JSON does not allow.
        var e = Bad($"[{Good},\n{Good},\n" + """{"image_id": 4, "category_id": 1, "bbox": [0, 0, NaN, 10], "score": 0.5}]""");
        Assert.Equal("line 3", e.Record);
        Assert.Contains("not valid JSON", e.Problem);
        Assert.Equal("line 2", Bad($"[{Good},\n" + """{"image_id": 4, "category_id": 1, "bbox": [0, 0, 1, 10], "score": Infinity}]""").Record);
    }

    [Fact]
    public void Syntax_error_after_many_records_names_its_line_across_buffer_refills()
    {
        var text = new StringBuilder("[\n");
        for (int i = 0; i < 200; i++) text.Append(Good).Append(",\n");
        text.Append("""{"image_id": 4, "category_id": 1 "bbox": [0, 0, 1, 1], "score": 0.5}]""");
        var e = Bad(text.ToString());
        Assert.Equal("line 202", e.Record);
        Assert.Contains("not valid JSON", e.Problem);
    }

    [Theory]
    [InlineData("[] x")]
    [InlineData("[][]")]
    [InlineData("[] {}")]
    public void Anything_after_the_array_is_not_json(string text) =>
        Assert.Contains("not valid JSON", Bad(text).Problem);

    [Theory]
    [InlineData("", "file is empty (0 bytes)")]
    [InlineData(" \n ", "not valid JSON")]
    [InlineData("\uFEFF", "not valid JSON")]
    public void Empty_or_blank_file_is_refused(string text, string problem) =>
        Assert.Contains(problem, Bad(text).Problem);

    [Fact]
    public void Folder_and_missing_file_are_named()
    {
        Assert.Equal("is a folder, expected a JSON file", Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(_s.Dir)).Problem);
        Assert.Equal("file not found", Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(_s["none.json"])).Problem);
    }

    [Fact]
    public void Every_truncation_of_a_results_file_is_a_data_format_error()
    {
        string full = $"[{Good}, {Good.Replace("0.5", "0.25")}]";
        for (int cut = 1; cut < full.Length; cut++)
        {
            string path = Results(full[..cut]);
            foreach (int size in new[] { StreamingJsonFile.DefaultBufferSize, 16 })
            {
                var e = Assert.Throws<DataFormatException>(() => CocoJson.ReadResults(path, size));
                Assert.Contains("not valid JSON", e.Problem);
            }
        }
    }

    [Fact]
    public void A_record_larger_than_the_buffer_grows_it()
    {
        string big = new('x', 100_000);
        string path = Results($$"""[{{Good}}, {"note": "{{big}}", "image_id": 5, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.75}, {{Good}}]""");
        var r = CocoJson.ReadResults(path, 16);
        Assert.Equal(3, r.Count);
        Assert.Equal(new CocoResult(5, 2, 1, 2, 3, 4, 0.75), r[1]);
    }

    [Property(MaxTest = 30)]
    public bool Written_results_read_back_the_same_with_any_buffer_size(int seed)
    {
        var rng = new Random(seed);
        int bufferSize = rng.Next(16, 400);
        var written = Enumerable.Range(0, rng.Next(0, 60)).Select(_ => new CocoResult(rng.NextInt64(-1000, 1_000_000), rng.Next(1, 91),
            Math.Round(rng.NextDouble() * 600 - 10, 3), Math.Round(rng.NextDouble() * 400, 3), Math.Round(rng.NextDouble() * 300, 3),
            Math.Round(rng.NextDouble() * 200, 3), Math.Round(rng.NextDouble(), 5))).ToList();
        string path = _s[$"prop-{Guid.NewGuid():N}.json"];
        CocoJson.WriteResults(path, written);
        var read = CocoJson.ReadResults(path, bufferSize);
        File.Delete(path);
        return read.SequenceEqual(written);
    }

    // ---- instances ----

    [Fact]
    public void Instances_skip_unknown_top_level_and_record_fields_and_read_the_same_with_tiny_buffers()
    {
        string path = _s.Write("gt.json", """
            {
              "info": {"description": "test", "nested": [{"a": [1, 2, {"b": "]}"}]}]},
              "licenses": [{"id": 1, "name": "x"}],
              "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}, {"id": 1, "name": "person", "supercategory": 7}],
              "annotations": [
                {"segmentation": [[1, 2, 3, 4, 5, 6]], "area": 50.5, "iscrowd": 0, "image_id": 9, "bbox": [1, 2, 3, 4], "category_id": 18, "id": 3},
                {"id": 4, "image_id": 9, "category_id": 1, "bbox": [0, 0, 2e1, 5], "iscrowd": true, "segmentation": {"counts": [1, 2], "size": [2, 3]}},
                {"id": 5, "image_id": 9, "category_id": 1, "bbox": [0, 0, 4, 5], "area": null, "iscrowd": null}
              ],
              "images": [{"id": 9, "file_name": "a\/b\u00e9.jpg", "width": 640, "height": 4.8e2, "license": 1, "coco_url": "http://x"}]
            }
            """);
        foreach (int size in new[] { StreamingJsonFile.DefaultBufferSize, 16, 40 })
        {
            var gt = CocoJson.ReadInstances(path, size);
            Assert.Equal([new CocoImage(9, "a/bé.jpg", 640, 480)], gt.Images);
            Assert.Equal([new CocoCategory(18, "dog", "animal"), new CocoCategory(1, "person", "")], gt.Categories);
            Assert.Equal([new CocoAnnotation(3, 9, 18, 1, 2, 3, 4, 50.5, false), new CocoAnnotation(4, 9, 1, 0, 0, 20, 5, 100, true),
                new CocoAnnotation(5, 9, 1, 0, 0, 4, 5, 20, false)], gt.Annotations);
        }
    }

    [Fact]
    public void Instances_without_annotations_have_none_and_round_trip()
    {
        var written = new CocoInstances([new CocoImage(1, "x.png", 4, 3)], [], [new CocoCategory(2, "c", "s")]);
        string path = _s["rt.json"];
        CocoJson.WriteInstances(path, written);
        var read = CocoJson.ReadInstances(path, 16);
        Assert.Equal(written.Images, read.Images);
        Assert.Equal(written.Categories, read.Categories);
        Assert.Empty(CocoJson.ReadInstances(_s.Write("noann.json", """{"images": [], "categories": []}""")).Annotations);
    }

    [Theory]
    [InlineData("""{"categories": []}""", null, "images", "missing")]
    [InlineData("""{"images": []}""", null, "categories", "missing")]
    [InlineData("""{"images": {}, "categories": []}""", null, "images", "expected an array, found Object")]
    [InlineData("""{"images": [], "categories": [], "annotations": 3}""", null, "annotations", "expected an array, found Number")]
    [InlineData("""{"images": [7], "categories": []}""", "images[0]", null, "expected an object, found Number")]
    [InlineData("""{"images": [], "categories": [{"id": 1, "name": "a"}, "b"]}""", "categories[1]", null, "expected an object, found String")]
    [InlineData("""{"images": [{"file_name": "a.png", "width": 4, "height": 3}], "categories": []}""", "images[0]", "id", "missing")]
    [InlineData("""{"images": [{"id": 2, "width": 4, "height": 3}], "categories": []}""", "image id 2", "file_name", "missing")]
    [InlineData("""{"images": [{"id": 2, "file_name": 5, "width": 4, "height": 3}], "categories": []}""", "image id 2", "file_name", "expected a string, found 5")]
    [InlineData("""{"images": [{"id": 2, "file_name": "a", "width": 4.5, "height": 3}], "categories": []}""", "image id 2", "width", "expected an integer, found 4.5")]
    [InlineData("""{"images": [{"id": 2, "file_name": "a", "width": 4, "height": 0}], "categories": []}""", "image id 2", "height", "expected a positive number of pixels (1 to 2147483647), found 0")]
    [InlineData("""{"images": [], "categories": [{"id": 3}]}""", "category id 3", "name", "missing")]
    [InlineData("""{"images": [], "categories": [], "annotations": [{"id": 6, "image_id": 1, "category_id": 1}]}""", "annotation id 6", "bbox", "missing")]
    [InlineData("""{"images": [], "categories": [], "annotations": [{"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, NaN]}]}""", "line 1", null, "not valid JSON")]
    [InlineData("""{"images": [], "categories": [], "annotations": [{"id": 6, "category_id": 1, "bbox": [1, 2, 3, 4]}]}""", "annotation id 6", "image_id", "missing")]
    [InlineData("""{"images": [], "categories": [], "annotations": [{"id": 6, "image_id": 1, "bbox": [1, 2, 3, 4], "area": 1e999}]}""", "annotation id 6", "area", "expected a finite number, found 1e999")]
    [InlineData("""{"images": [], "categories": [], "annotations": [{"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}""", "line 1", null, "not valid JSON")]
    [InlineData("""[{"images": []}]""", null, null, "expected a JSON object with images, annotations and categories, found Array")]
    public void Bad_instances_name_record_field_and_value(string text, string? record, string? field, string problem)
    {
        string path = _s.Write("bad-gt.json", text);
        foreach (int size in new[] { StreamingJsonFile.DefaultBufferSize, 16 })
        {
            var e = Assert.Throws<DataFormatException>(() => CocoJson.ReadInstances(path, size));
            Assert.Equal(path, e.File);
            Assert.Equal(record, e.Record);
            Assert.Equal(field, e.Field);
            Assert.Contains(problem, e.Problem);
        }
    }

    [Fact]
    public void Every_truncation_of_an_instances_file_is_a_data_format_error()
    {
        string full = """{"images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 3}], "annotations": [{"id": 2, "image_id": 1, "category_id": 5, "bbox": [0, 0, 2, 2]}], "categories": [{"id": 5, "name": "c"}]}""";
        Assert.Single(CocoJson.ReadInstances(_s.Write("full.json", full)).Annotations);
        for (int cut = 1; cut < full.Length; cut++)
        {
            string path = _s.Write("cut.json", full[..cut]);
            foreach (int size in new[] { StreamingJsonFile.DefaultBufferSize, 16 })
                Assert.Contains("not valid JSON", Assert.Throws<DataFormatException>(() => CocoJson.ReadInstances(path, size)).Problem);
        }
    }

    [Fact]
    public void A_file_name_that_is_not_utf8_is_a_data_format_error()
    {
        string path = _s["latin1.json"];
        var bytes = new List<byte>(Encoding.UTF8.GetBytes("""{"images": [{"id": 1, "file_name": "caf"""));
        bytes.Add(0xE9); // "é" in Latin-1: not UTF-8
        bytes.AddRange(Encoding.UTF8.GetBytes(""".png", "width": 4, "height": 3}], "categories": []}"""));
        File.WriteAllBytes(path, bytes.ToArray());
        var e = Assert.Throws<DataFormatException>(() => CocoJson.ReadInstances(path));
        Assert.Equal(path, e.File);
        Assert.Contains("UTF-8", e.Problem);
    }

    [Fact]
    public void Negative_box_sizes_in_ground_truth_are_read_for_the_checks_downstream()
    {
        // ReadInstances keeps degenerate boxes and negative areas (`data check` reports them, `eval --gt` refuses them).
        var gt = CocoJson.ReadInstances(_s.Write("neg.json", """{"images": [], "categories": [], "annotations": [{"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, -3, 4], "area": -5}]}"""));
        Assert.Equal(new CocoAnnotation(6, 1, 1, 1, 2, -3, 4, -5, false), Assert.Single(gt.Annotations));
        Assert.Equal(-12.0, CocoJson.ReadInstances(_s.Write("neg2.json", """{"images": [], "categories": [], "annotations": [{"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, -3, 4]}]}""")).Annotations[0].Area);
    }
}
