// The miniature Table 1 as people read it (table.md, AP in percent beside the paper's numbers for the same setting)
// and as programs read it (table.json, fractions in [0, 1] like every other metrics file of RetinaSharp).
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RetinaSharp.IO;

namespace RetinaSharp.Ablation;

/// <summary>Writes table.md and table.json of a finished ablation.</summary>
public static class AblationTableWriter
{
    /// <summary>DIR/table.md.</summary>
    public const string MarkdownFileName = "table.md";

    /// <summary>DIR/table.json.</summary>
    public const string JsonFileName = "table.json";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// Writes the Markdown table (atomically): one section per sub-table with its setting columns, our AP, AP50 and AP75 (percent,
    /// on the validation scenes) and the paper's for the same setting (COCO minival, ResNet-50-FPN, 600 px), then every cell's
    /// iterations, status, skipped steps, final loss and times.
    /// </summary>
    /// <returns><paramref name="path"/>.</returns>
    /// <exception cref="KeyNotFoundException">A row's cell has no result.</exception>
    public static string WriteMarkdown(string path, AblationOptions options, AblationPlan plan, IReadOnlyList<AblationTableDefinition> tables,
        IReadOnlyList<AblationRow> rows, IReadOnlyDictionary<string, AblationCellResult> results)
    {
        AtomicFile.WriteAllText(path, Markdown(options, plan, tables, rows, results));
        return path;
    }

    /// <summary>The text of <see cref="WriteMarkdown"/>.</summary>
    public static string Markdown(AblationOptions options, AblationPlan plan, IReadOnlyList<AblationTableDefinition> tables,
        IReadOnlyList<AblationRow> rows, IReadOnlyDictionary<string, AblationCellResult> results)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(plan);
        var recipe = options.BaseRecipe;
        var sb = new StringBuilder();
        sb.AppendLine($"# The paper's Table 1 in miniature{(options.Quick ? " (quick smoke run: the numbers mean nothing)" : "")}");
        sb.AppendLine();
        sb.AppendLine(string.Create(Inv,
            $"Ours: RetinaNet from ML.NET's ImageNet ResNet-18 (`retina demo`'s recipe: frozen BN, all stages trained, GroupNorm heads, FPN width {recipe.Model.FpnChannels}, AdamW) on " +
            $"{plan.Train.Images.Count} Fashion-MNIST training scenes of {options.Size}x{options.Size} px, **{plan.Iterations} iterations of {recipe.BatchSize} images per cell**, seed {options.Seed}, " +
            $"the same for every cell; COCO AP (pycocotools-exact) on {plan.Val.Images.Count} validation scenes, in percent."));
        sb.AppendLine();
        sb.AppendLine($"Paper: Lin et al. 2017, *Focal Loss for Dense Object Detection*, Table 1, on {PaperTable1.PaperSetting}: another dataset, backbone and scale, so compare the shape (which setting wins, by how much), not the level.");
        sb.AppendLine("Cells with the same configuration are trained once and shown in every sub-table that has them (FL γ = 2, α = .25, π = .01, 3 x 3 anchors is in b, c and d).");
        foreach (var t in tables)
        {
            sb.AppendLine();
            sb.AppendLine($"## {t.Title}");
            sb.AppendLine();
            sb.AppendLine($"Paper: {t.PaperSource}.");
            sb.AppendLine();
            sb.AppendLine("| " + string.Join(" | ", t.SettingColumns) + " | AP | AP50 | AP75 | paper AP | paper AP50 | paper AP75 | cell |");
            sb.AppendLine("| " + string.Join(" | ", t.SettingColumns.Select(_ => "---")) + " | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
            foreach (var r in rows.Where(r => r.Table == t.Table))
            {
                var res = results[r.CellId];
                string paper = r.Paper.Ap is null
                    ? $"{r.Paper.Source} | | "
                    : $"{P(r.Paper.Ap)} | {P(r.Paper.Ap50)} | {P(r.Paper.Ap75)}";
                string status = res.Status == AblationCellStatus.Diverged ? $" (diverged at {res.Iterations})" : "";
                sb.AppendLine("| " + string.Join(" | ", r.Settings) + $" | {Ours(res.Stats.Ap)}{status} | {Ours(res.Stats.Ap50)} | {Ours(res.Stats.Ap75)} | {paper} | `{r.CellId}` |");
            }
            if (t.Table == AblationTable.C)
            {
                sb.AppendLine();
                sb.AppendLine("Loss at the start and at the end (mean of the last tenth of the logged steps), and steps skipped for a non-finite loss or gradient:");
                sb.AppendLine();
                sb.AppendLine("| cell | first loss | final loss | skipped steps |");
                sb.AppendLine("| --- | ---: | ---: | ---: |");
                foreach (var id in rows.Where(r => r.Table == t.Table).Select(r => r.CellId).Distinct())
                {
                    var res = results[id];
                    double first = res.Log.Steps.FirstOrDefault()?.Loss ?? double.NaN;
                    sb.AppendLine(string.Create(Inv, $"| `{id}` | {L(first)} | {L(res.FinalLoss)} | {res.SkippedSteps} |"));
                }
            }
        }
        sb.AppendLine();
        sb.AppendLine("## Cells");
        sb.AppendLine();
        sb.AppendLine("| cell | setting | iterations | status | skipped steps | final loss | training | evaluation |");
        sb.AppendLine("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (var c in plan.Cells)
        {
            var res = results[c.Cell.Id];
            sb.AppendLine(string.Create(Inv,
                $"| `{c.Cell.Id}` | {c.Cell.Label} | {res.Iterations} | {res.Status.ToString().ToLowerInvariant()} | {res.SkippedSteps} | {L(res.FinalLoss)} | {res.TrainingSeconds:0} s | {res.EvaluationSeconds:0} s |"));
        }
        sb.AppendLine();
        sb.AppendLine("![AP per cell and the loss curves of (c)](ablation.png)");
        sb.AppendLine();
        sb.AppendLine("Each cell's folder `cells/<cell>/` keeps `result.json` (its resolved configuration, the 12 COCO numbers and the training log), `log.csv` and `loss_curve.png`.");
        return sb.ToString();
    }

    /// <summary>
    /// Writes table.json (atomically): <c>iterations</c>, <c>paper_setting</c>, <c>tables</c> (each with <c>id</c> a..d, <c>title</c>,
    /// <c>setting_columns</c> and <c>rows</c>: <c>settings</c>, <c>cell</c>, <c>ours</c> {ap, ap50, ap75} and <c>paper</c> {ap, ap50, ap75, source},
    /// all AP as fractions in [0, 1], null where the paper gives none) and <c>cells</c> (each cell's result without its log).
    /// </summary>
    /// <returns><paramref name="path"/>.</returns>
    public static string WriteJson(string path, AblationOptions options, AblationPlan plan, IReadOnlyList<AblationTableDefinition> tables,
        IReadOnlyList<AblationRow> rows, IReadOnlyDictionary<string, AblationCellResult> results)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(plan);
        static JsonNode? Fraction(double? percent) => percent is double p ? Math.Round(p / 100, 4) : null;
        var tablesJson = new JsonArray();
        foreach (var t in tables)
        {
            var rowsJson = new JsonArray();
            foreach (var r in rows.Where(r => r.Table == t.Table))
            {
                var s = results[r.CellId].Stats;
                var settings = new JsonObject();
                for (int i = 0; i < t.SettingColumns.Count; i++) settings[t.SettingColumns[i]] = r.Settings[i];
                rowsJson.Add(new JsonObject
                {
                    ["settings"] = settings,
                    ["cell"] = r.CellId,
                    ["ours"] = new JsonObject { ["ap"] = s.Ap, ["ap50"] = s.Ap50, ["ap75"] = s.Ap75 },
                    ["paper"] = new JsonObject { ["ap"] = Fraction(r.Paper.Ap), ["ap50"] = Fraction(r.Paper.Ap50), ["ap75"] = Fraction(r.Paper.Ap75), ["source"] = r.Paper.Source },
                });
            }
            tablesJson.Add(new JsonObject
            {
                ["id"] = t.Table.ToString().ToLowerInvariant(), ["title"] = t.Title,
                ["setting_columns"] = new JsonArray([.. t.SettingColumns.Select(c => (JsonNode?)c)]), ["paper_source"] = t.PaperSource, ["rows"] = rowsJson,
            });
        }
        var cells = new JsonArray();
        foreach (var c in plan.Cells)
        {
            var o = results[c.Cell.Id].ToJson();
            o.Remove("log");
            o["label"] = c.Cell.Label;
            cells.Add(o);
        }
        var root = new JsonObject
        {
            ["command"] = "ablate",
            ["quick"] = options.Quick,
            ["iterations"] = plan.Iterations,
            ["seed"] = options.Seed,
            ["train_images"] = plan.Train.Images.Count,
            ["val_images"] = plan.Val.Images.Count,
            ["scene_size"] = options.Size,
            ["paper_setting"] = PaperTable1.PaperSetting,
            ["tables"] = tablesJson,
            ["cells"] = cells,
        };
        AtomicFile.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    private static string P(double? percent) => percent is double p ? p.ToString("0.0", Inv) : "";

    private static string Ours(double fraction) => fraction < 0 ? "n/a" : (100 * fraction).ToString("0.0", Inv);

    private static string L(double v) => double.IsFinite(v) ? v.ToString(v >= 100 ? "0" : "0.000", Inv) : "n/a";
}
