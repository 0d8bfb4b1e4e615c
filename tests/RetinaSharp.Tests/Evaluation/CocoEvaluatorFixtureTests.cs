// Compares CocoEvaluator with pycocotools' COCOeval on random cases made by scripts/make_eval_fixtures.py.
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Tests.Evaluation;

public class CocoEvaluatorFixtureTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "eval", name);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void MatchesPycocotools(int caseNumber)
    {
        var gt = CocoJson.ReadInstances(Fixture($"case{caseNumber}_gt.json"));
        var dt = CocoJson.ReadResults(Fixture($"case{caseNumber}_dt.json"));
        using var expected = JsonDocument.Parse(File.ReadAllBytes(Fixture($"case{caseNumber}_expected.json")));
        var root = expected.RootElement;

        var result = CocoEvaluator.Evaluate(gt, dt);

        double[] stats = result.Stats.ToArray();
        double[] want = root.GetProperty("stats").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(12, want.Length);
        for (int i = 0; i < 12; i++)
            Assert.True(Math.Abs(stats[i] - want[i]) < 1e-6, $"{CocoStats.Names[i]}: ours {stats[i]}, pycocotools {want[i]}");
        Assert.Equal(root.GetProperty("summary").GetString(), result.Summary());
        Assert.Equal(root.GetProperty("category_ids").EnumerateArray().Select(e => e.GetInt64()), result.CategoryIds);

        // recall (T, K, A, M) and precision averaged over the recall points, (T, K, A, M)
        var recall = root.GetProperty("recall");
        var precision = root.GetProperty("precision_mean_over_recall");
        int T = result.IouThresholds.Count, K = result.CategoryIds.Count, A = result.AreaRanges.Count, M = result.MaxDetections.Count;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                for (int a = 0; a < A; a++)
                    for (int m = 0; m < M; m++)
                    {
                        double r = recall[t][k][a][m].GetDouble();
                        Assert.True(Math.Abs(result.Recall(t, k, a, m) - r) < 1e-9, $"recall t={t} k={k} a={a} m={m}: ours {result.Recall(t, k, a, m)}, pycocotools {r}");
                        double p = precision[t][k][a][m].GetDouble();
                        double ours = 0;
                        for (int ri = 0; ri < result.RecallThresholds.Count; ri++) ours += result.Precision(t, ri, k, a, m);
                        ours = p == -1 ? result.Precision(t, 0, k, a, m) : ours / result.RecallThresholds.Count;
                        Assert.True(Math.Abs(ours - p) < 1e-9, $"precision t={t} k={k} a={a} m={m}: ours {ours}, pycocotools {p}");
                    }
    }

    [Fact]
    public void ThresholdsAreNumpyLinspaceBitForBit()
    {
        // np.linspace(.5, 0.95, 10)[5] == 0.75 and np.linspace(0, 1, 101)[7] == 0.07 (checked with numpy 1.24).
        Assert.Equal(0.75, CocoEvaluator.IouThresholds[5]);
        Assert.Equal(0.5, CocoEvaluator.IouThresholds[0]);
        Assert.Equal(0.95, CocoEvaluator.IouThresholds[9]);
        Assert.Equal(101, CocoEvaluator.RecallThresholds.Count);
        Assert.Equal(1.0, CocoEvaluator.RecallThresholds[100]);
        Assert.Equal(7 * 0.01, CocoEvaluator.RecallThresholds[7]);
    }
}
