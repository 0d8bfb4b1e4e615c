// Model detections -> COCO results (XYWH, original ids) -> JSON -> evaluator; and -> VOC detections.
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.Modeling;
using TorchSharp;

namespace RetinaSharp.Tests.Evaluation;

public class EvaluationInputsTests
{
    private static readonly CategoryMap Map = new([new CocoCategory(9, "b"), new CocoCategory(5, "a")]);

    [Fact]
    public void DetectionsBecomeCocoResultsThatReloadThroughTheEvaluator()
    {
        using var scope = torch.NewDisposeScope();
        var dets = new Detections(
            torch.tensor(new float[] { 10, 20, 50, 80, 0, 0, 8, 8 }).reshape(2, 4),
            torch.tensor(new float[] { 0.9f, 0.25f }),
            torch.tensor(new long[] { 1, 0 }));
        var results = EvaluationInputs.ToCocoResults(7, dets, Map);
        Assert.Equal(new CocoResult(7, 9, 10, 20, 40, 60, 0.9f), results[0]);
        Assert.Equal(5, results[1].CategoryId); // index 0 = smallest id

        string path = Path.Combine(Path.GetTempPath(), $"retina-results-{Guid.NewGuid():N}.json");
        try
        {
            CocoJson.WriteResults(path, results);
            var reloaded = CocoJson.ReadResults(path);
            var gt = new CocoInstances([new CocoImage(7, "7.jpg", 100, 100)],
                [new CocoAnnotation(1, 7, 9, 10, 20, 40, 60, 2400, false), new CocoAnnotation(2, 7, 5, 0, 0, 8, 8, 64, false)],
                Map.Categories);
            var e = CocoEvaluator.Evaluate(gt, reloaded, path);
            Assert.Equal(1.0, e.Stats.Ap, 12);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void DetectionsBecomeVocDetections()
    {
        using var scope = torch.NewDisposeScope();
        var dets = new Detections(torch.tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 4), torch.tensor(new float[] { 0.5f }), torch.tensor(new long[] { 1 }));
        var v = Assert.Single(EvaluationInputs.ToVocDetections("42", dets, 2));
        Assert.Equal(new VocDetection("42", 1, 1, 2, 3, 4, 0.5), v);
        var none = new Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype: torch.int64));
        Assert.Empty(EvaluationInputs.ToVocDetections("42", none, 2));
        Assert.Empty(EvaluationInputs.ToCocoResults(1, none, Map));
        var bad = new Detections(torch.tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 4), torch.tensor(new float[] { 0.5f }), torch.tensor(new long[] { 2 }));
        Assert.Contains("label 2", Assert.Throws<ArgumentException>(() => EvaluationInputs.ToVocDetections("42", bad, 2)).Message);
    }
}
