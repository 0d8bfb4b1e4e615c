// `retina eval --gt` and CocoJson.ReadInstances on wrong-typed or inconsistent ground truth: every case used to give a
// silently wrong AP (or a message without file/record/field); now exit code 2 naming file, record, field and value.
using RetinaSharp.Data;
using RetinaSharp.IO;

namespace RetinaSharp.Tests.BadInput;

public sealed class CocoGroundTruthBadInputTests : IDisposable
{
    private const string Image = """{"id": 1, "file_name": "a.png", "width": 40, "height": 30}""";
    private const string Ann = """{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}""";
    private const string Cat = """{"id": 1, "name": "cat"}""";
    private readonly Scratch _s = new();
    private readonly string _dt;

    public CocoGroundTruthBadInputTests() =>
        _dt = _s.Write("results.json", """[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.9}]""");

    public void Dispose() => _s.Dispose();

    private string Gt(string images, string annotations, string categories) =>
        _s.Write("gt.json", $$"""{"images": [{{images}}], "annotations": [{{annotations}}], "categories": [{{categories}}]}""");

    public static TheoryData<string, string, string, string, string> WrongTypes => new()
    {
        // images, annotations, record, field, offending value
        { """{"id": 1, "file_name": "a.png", "width": 1e12, "height": 30}""", Ann, "image id 1", "'width'", "1e12" },
        { """{"id": 1, "file_name": "a.png", "width": -40, "height": 30}""", Ann, "image id 1", "'width'", "-40" },
        { Image, """{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": 1.5}""", "annotation id 5", "'iscrowd'", "1.5" },
        { Image, """{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "iscrowd": "yes"}""", "annotation id 5", "'iscrowd'", "\"yes\"" },
        { Image, """{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": "big"}""", "annotation id 5", "'area'", "\"big\"" },
    };

    [Theory]
    [MemberData(nameof(WrongTypes))]
    public void Wrong_field_type_names_file_record_field_and_value(string images, string annotations, string record, string field, string value)
    {
        string gt = Gt(images, annotations, Cat);
        var e = Assert.Throws<DataFormatException>(() => CocoJson.ReadInstances(gt));
        Assert.Equal(gt, e.File);
        Assert.Equal(record, e.Record);
        Assert.Equal(field.Trim('\''), e.Field);
        Assert.Contains(value, e.Problem);
        Retina.AssertBadInput(Retina.Run("eval", "--gt", gt, "--dt", _dt), gt, record, $"field {field}", value);
    }

    public static TheoryData<string, string, string, string, string, string> Inconsistent => new()
    {
        // images, annotations, categories, record, field, value
        { $"{Image}, {Image}", Ann, Cat, "image id 1", "'id'", "duplicate image id 1" },
        { Image, Ann, $"{Cat}, {Cat}", "category id 1", "'id'", "duplicate category id 1" },
        { Image, """{"id": 5, "image_id": 9, "category_id": 1, "bbox": [1, 1, 10, 10]}""", Cat, "annotation id 5", "'image_id'", "image id 9" },
        { Image, """{"id": 5, "image_id": 1, "category_id": 4, "bbox": [1, 1, 10, 10]}""", Cat, "annotation id 5", "'category_id'", "category id 4" },
        { Image, """{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, -10, 10]}""", Cat, "annotation id 5", "'bbox'", "[1, 1, -10, 10]" },
        { Image, """{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": -5}""", Cat, "annotation id 5", "'area'", "-5" },
    };

    [Theory]
    [MemberData(nameof(Inconsistent))]
    public void Inconsistent_ground_truth_is_refused_by_eval(string images, string annotations, string categories, string record, string field, string value)
    {
        string gt = Gt(images, annotations, categories);
        Retina.AssertBadInput(Retina.Run("eval", "--gt", gt, "--dt", _dt), gt, record, $"field {field}", value);
    }

    [Fact]
    public void Eval_out_that_is_a_file_fails_before_evaluating()
    {
        string gt = Gt(Image, Ann, Cat);
        string file = _s.Write("taken", "x");
        var r = Retina.Run("eval", "--gt", gt, "--dt", _dt, "--out", file);
        Retina.AssertBadInput(r, file, "is a file");
        Assert.DoesNotContain("Average Precision", r.Out);
        Assert.Equal("x", File.ReadAllText(file));
    }

    [Fact]
    public void Eval_out_under_proc_is_bad_input_naming_the_folder()
    {
        if (!Directory.Exists("/proc/self")) return; // Linux only
        string gt = Gt(Image, Ann, Cat);
        Retina.AssertBadInput(Retina.Run("eval", "--gt", gt, "--dt", _dt, "--out", "/proc/retina-out"), "/proc/retina-out");
    }
}
