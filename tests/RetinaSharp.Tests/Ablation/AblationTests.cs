using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.Ablation;
using RetinaSharp.Cli.Commands;
using RetinaSharp.Modeling;
using RetinaSharp.Tests.Training;

namespace RetinaSharp.Tests.Ablation;

/// <summary>The cells of `retina ablate` and their configurations (no training).</summary>
public class AblationCellTests
{
    private static readonly AblationOptions Full = AblationOptions.Defaults("/tmp/unused-ablation");

    private static JsonObject Config(string id) => Full.Configuration(PaperTable1.Cell(id), 400, numClasses: 10);

    private static IReadOnlyList<string> Diff(string a, string b) => AblationOptions.Differences(Config(a), Config(b));

    [Fact]
    public void Cells_differ_only_in_the_ablated_knob()
    {
        // (a): α only.
        Assert.Equal(["model.Alpha"], Diff("ce-a0.25", "ce-a0.5"));
        Assert.Equal(["model.Alpha"], Diff("ce-a0.5", "ce-a0.75"));
        // (b): γ, and α where the paper's α for that γ differs.
        Assert.Equal(["model.Alpha", "model.Gamma"], Diff("ce-a0.75", "fl-g0.5-a0.5"));
        Assert.Equal(["model.Alpha", "model.Gamma"], Diff("fl-g0.5-a0.5", "fl-g1-a0.25"));
        Assert.Equal(["model.Gamma"], Diff("fl-g1-a0.25", "fl-g2-a0.25"));
        Assert.Equal(["model.Gamma"], Diff("fl-g2-a0.25", "fl-g5-a0.25"));
        // (c): the prior only, for CE and for FL.
        Assert.Equal(["model.PriorProbability"], Diff("ce-a0.5", "ce-a0.5-zero-bias"));
        Assert.Equal(["model.PriorProbability"], Diff("fl-g2-a0.25", "fl-g2-a0.25-zero-bias"));
        // (d): the anchor sizes and ratios only.
        Assert.Equal(["model.AnchorSizes", "model.AnchorsPerLocation", "model.AspectRatios"], Diff("fl-g2-a0.25", "fl-g2-a0.25-anchors1x1"));   // A = 9 -> 1
        // The iterations are part of the configuration (every cell gets the same; a changed count is a changed cell).
        Assert.Equal(["training.CheckpointEvery", "training.Iterations", "training.LogEvery", "training.WarmupIterations"],
            AblationOptions.Differences(Config("ce-a0.25"), Full.Configuration(PaperTable1.Cell("ce-a0.25"), 500, numClasses: 10)));
    }

    [Fact]
    public void Configurations_hold_the_paper_values_of_each_cell_on_the_demo_recipe()
    {
        var alphaGamma = PaperTable1.Rows.Where(r => r.Table == AblationTable.B)
            .Select(r => Config(r.CellId)["model"]!).Select(m => (m["Gamma"]!.GetValue<double>(), m["Alpha"]!.GetValue<double>())).ToList();
        Assert.Equal([(0.0, 0.75), (0.5, 0.5), (1.0, 0.25), (2.0, 0.25), (5.0, 0.25)], alphaGamma);   // paper Table 1b
        Assert.All(PaperTable1.Rows.Where(r => r.Table == AblationTable.A), r => Assert.Equal(0, Config(r.CellId)["model"]!["Gamma"]!.GetValue<double>()));

        var baseline = Config("fl-g2-a0.25");
        Assert.Equal("imagenet", baseline["backbone_weights"]!.GetValue<string>());
        Assert.Equal("ResNet18Cntk", baseline["model"]!["Backbone"]!.GetValue<string>());
        Assert.Equal(128, baseline["model"]!["MinSize"]!.GetValue<int>());
        Assert.Equal(8, baseline["batch_size"]!.GetValue<int>());
        Assert.Equal(400, baseline["training"]!["Iterations"]!.GetValue<long>());
        Assert.Equal(0.01, baseline["model"]!["PriorProbability"]!.GetValue<double>());
        // The demo's anchors: 3 octave scales of 16, 32, ... 256 px and 3 ratios; the 1x1 cell keeps the first scale and ratio 1.
        Assert.Equal("[[16,20,25],[32,40,50],[64,80,101],[128,161,203],[256,322,406]]", baseline["model"]!["AnchorSizes"]!.ToJsonString());
        var oneByOne = Config("fl-g2-a0.25-anchors1x1")["model"]!;
        Assert.Equal("[[16],[32],[64],[128],[256]]", oneByOne["AnchorSizes"]!.ToJsonString());
        Assert.Equal("[1]", oneByOne["AspectRatios"]!.ToJsonString());
        Assert.Equal(9, PaperTable1.Baseline.Apply(Full.BaseRecipe).ModelOptions(10).AnchorsPerLocation);
        Assert.Equal(1, PaperTable1.Cell("fl-g2-a0.25-anchors1x1").Apply(Full.BaseRecipe).ModelOptions(10).AnchorsPerLocation);
    }

    [Fact]
    public void Zero_bias_cells_start_their_classification_bias_at_exactly_zero()
    {
        // -log((1 - π) / π): π = 0.01 gives -log 99 = -4.59512, π = 0.5 gives -log 1 = 0.
        var quick = AblationOptions.Defaults("/tmp/unused-ablation", quick: true);
        foreach (var (id, bias) in new[] { ("fl-g2-a0.25", -4.59512), ("fl-g2-a0.25-zero-bias", 0.0) })
        {
            using var model = new RetinaNet(PaperTable1.Cell(id).Apply(quick.BaseRecipe).ModelOptions(10));
            var b = model.named_parameters().Single(p => p.name == "head.classification_head.cls_logits.bias").parameter.data<float>().ToArray();
            Assert.Equal(9 * 10, b.Length);
            Assert.All(b, v => Assert.Equal(bias, v, 5));
        }
    }

    [Fact]
    public void Shared_cells_are_trained_once_and_sub_tables_select_their_cells()
    {
        Assert.Equal(14, PaperTable1.Rows.Count);
        Assert.Equal(10, PaperTable1.Cells.Count);   // 14 rows, 4 shared: ce-a0.75 (a, b), ce-a0.5 (a, c), fl-g2-a0.25 (b, c, d)
        Assert.Equal(PaperTable1.Cells.Count, PaperTable1.Cells.Select(c => c.Id).Distinct().Count());
        Assert.Equal(PaperTable1.Cells.Count, PaperTable1.Cells.Select(c => (c.Alpha, c.Gamma, c.PriorProbability, c.Anchors)).Distinct().Count());
        Assert.Equal(["fl-g2-a0.25", "fl-g2-a0.25-anchors1x1"], PaperTable1.CellsFor([AblationTable.D]).Select(c => c.Id));
        Assert.Equal(["ce-a0.5", "fl-g2-a0.25", "ce-a0.5-zero-bias", "fl-g2-a0.25-zero-bias"], PaperTable1.CellsFor([AblationTable.C]).Select(c => c.Id));
        Assert.Equal([AblationTable.B, AblationTable.D], PaperTable1.ParseTables("d, B,b"));
        Assert.Contains("--cells", Assert.Throws<ArgumentException>(() => PaperTable1.ParseTables("a,e")).Message);
        var both = AblationOptions.Defaults("/tmp/unused-ablation") with { Iterations = 10, MinutesPerCell = 2 };
        Assert.Contains("--minutes-per-cell", Assert.Throws<ArgumentException>(both.Validate).Message);
    }
}

/// <summary>`retina ablate --quick` end to end: every file, resume, and a changed configuration refused or redone.</summary>
[Collection(TorchRngCollection.Name)]
public class QuickAblationTests
{
    [Fact]
    public void Quick_ablation_writes_every_file_skips_finished_cells_and_refuses_changed_ones()
    {
        string dir = TempDir.Create();
        var options = AblationOptions.Defaults(dir, quick: true);
        Assert.Equal(0, AblateCommand.Run(options));

        foreach (var f in AblationRunner.OutputFiles)
            Assert.True(new FileInfo(Path.Combine(dir, f)).Length > 0, $"missing or empty {f}");
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(dir, "ablation.png"))[..4]);
        foreach (var c in PaperTable1.Cells)
        {
            var r = AblationCellResult.Read(Path.Combine(dir, "cells", c.Id, AblationCellResult.FileName));
            Assert.Equal(AblationOptions.QuickIterations, r.Iterations);
            Assert.False(File.Exists(Path.Combine(dir, "cells", c.Id, RetinaSharp.Training.TrainingCheckpoint.FileName)), c.Id); // dropped once the result is written
        }

        // table.json: the four sub-tables with their rows, the 10 cells, our AP beside the paper's (fractions).
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "table.json"))))
        {
            var tables = json.RootElement.GetProperty("tables").EnumerateArray().ToList();
            Assert.Equal(["a", "b", "c", "d"], tables.Select(t => t.GetProperty("id").GetString()));
            Assert.Equal([3, 5, 4, 2], tables.Select(t => t.GetProperty("rows").GetArrayLength()));
            Assert.Equal(10, json.RootElement.GetProperty("cells").GetArrayLength());
            var d1 = tables[3].GetProperty("rows")[0];
            Assert.Equal("fl-g2-a0.25-anchors1x1", d1.GetProperty("cell").GetString());
            Assert.Equal(0.303, d1.GetProperty("paper").GetProperty("ap").GetDouble());
            Assert.Equal(JsonValueKind.Null, tables[2].GetProperty("rows")[1].GetProperty("paper").GetProperty("ap").ValueKind); // CE without prior: diverged in the paper
        }

        // table.md: the paper's numbers on the row of the right cell.
        var md = File.ReadAllLines(Path.Combine(dir, "table.md"));
        string Row(string section, string cell) => md.SkipWhile(l => !l.StartsWith("## " + section, StringComparison.Ordinal)).Skip(1)
            .TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal)).Single(l => l.StartsWith("| ", StringComparison.Ordinal) && l.EndsWith($"| `{cell}` |", StringComparison.Ordinal));
        Assert.EndsWith("| 10.8 | 16.0 | 11.7 | `ce-a0.25` |", Row("(a)", "ce-a0.25"));
        Assert.EndsWith("| 31.1 | 49.4 | 33.0 | `ce-a0.75` |", Row("(b)", "ce-a0.75"));
        Assert.EndsWith("| 32.9 | 51.7 | 35.2 | `fl-g0.5-a0.5` |", Row("(b)", "fl-g0.5-a0.5"));
        Assert.EndsWith("| 32.2 | 49.6 | 34.8 | `fl-g5-a0.25` |", Row("(b)", "fl-g5-a0.25"));
        Assert.StartsWith("| 2 | .25 |", Row("(b)", "fl-g2-a0.25"));
        Assert.Contains("diverged", Row("(c)", "ce-a0.5-zero-bias"));
        Assert.EndsWith("| 30.3 | 49.0 | 31.8 | `fl-g2-a0.25-anchors1x1` |", Row("(d)", "fl-g2-a0.25-anchors1x1"));
        Assert.EndsWith("| 34.0 | 52.5 | 36.5 | `fl-g2-a0.25` |", Row("(d)", "fl-g2-a0.25"));
        Assert.Contains(md, l => l.Contains("COCO minival") && l.Contains("ResNet-50-FPN") && l.Contains("600 px"));

        // A re-run trains nothing and keeps every result byte for byte.
        string baselinePath = Path.Combine(dir, "cells", "fl-g2-a0.25", AblationCellResult.FileName);
        byte[] before = File.ReadAllBytes(baselinePath);
        var runner = new AblationRunner(options);
        var plan = runner.Prepare();
        Assert.All(plan.Cells, c => Assert.Equal(AblationCellState.Finished, c.State));
        var started = new List<string>();
        runner.CellStarted = (c, _, _) => started.Add(c.Cell.Id);
        Assert.True(runner.Run(plan).Completed);
        Assert.Empty(started);
        Assert.Equal(before, File.ReadAllBytes(baselinePath));

        // Another iteration count is a changed configuration for every cell: refused before any work, naming the field.
        var e = Assert.Throws<ArgumentException>(() => new AblationRunner(options with { Iterations = 4 }).Prepare());
        Assert.Contains("fl-g2-a0.25 (finished): ", e.Message);
        Assert.Contains("training.Iterations stored 3, now 4", e.Message);
        Assert.Contains("--redo-changed", e.Message);

        // A cell stored with another γ (as if the code or the table had changed): refused; with --redo-changed only it is trained again.
        string g5 = Path.Combine(dir, "cells", "fl-g5-a0.25", AblationCellResult.FileName);
        var stored = JsonNode.Parse(File.ReadAllText(g5))!;
        stored["configuration"]!["model"]!["Gamma"] = 4.0;
        File.WriteAllText(g5, stored.ToJsonString());
        e = Assert.Throws<ArgumentException>(() => new AblationRunner(options).Prepare());
        Assert.Contains("fl-g5-a0.25 (finished): model.Gamma stored 4, now 5", e.Message);
        Assert.DoesNotContain("fl-g2-a0.25 (", e.Message);

        var redo = new AblationRunner(options with { RedoChanged = true });
        var redoPlan = redo.Prepare();
        var changed = Assert.Single(redoPlan.Cells, c => c.State != AblationCellState.Finished);
        Assert.Equal(("fl-g5-a0.25", AblationCellState.Redo), (changed.Cell.Id, changed.State));
        Assert.Equal(["model.Gamma"], changed.ChangedFields);
        started.Clear();
        redo.CellStarted = (c, _, _) => started.Add(c.Cell.Id);
        Assert.True(redo.Run(redoPlan).Completed);
        Assert.Equal(["fl-g5-a0.25"], started);
        Assert.Equal(5.0, AblationCellResult.Read(g5).Configuration["model"]!["Gamma"]!.GetValue<double>());
        Assert.Equal(before, File.ReadAllBytes(baselinePath));
    }
}
