// `retina eval`: COCO AP of a results file against a ground-truth file, as pycocotools' COCOeval prints it
// (the everyday use of pycocotools, with no python). `--data/--weights` (run a model first) is not available yet.
using System.CommandLine;
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina eval --gt instances.json --dt results.json [--out DIR] [--per-category]`.</summary>
public static class EvalCommand
{
    /// <summary>File name of the metrics report written under <c>--out</c>.</summary>
    public const string MetricsFileName = "metrics.json";

    /// <summary>File name of the precision-recall plot written under <c>--out</c>.</summary>
    public const string CurvesFileName = "pr_curves.png";

    /// <summary>Builds the `eval` command.</summary>
    public static Command Create()
    {
        var gt = new Option<string?>("--gt") { HelpName = "instances.json", Description = "COCO instances JSON with the ground truth (images, annotations, categories)" };
        var dt = new Option<string?>("--dt") { HelpName = "results.json", Description = "COCO results JSON: [{image_id, category_id, bbox: [x, y, w, h], score}, ...]" };
        var outDir = new Option<string?>("--out") { HelpName = "dir", Description = $"Folder for {MetricsFileName} (12 stats, per-category AP, PR curves) and {CurvesFileName}" };
        var perCategory = new Option<bool>("--per-category") { Description = "Also print the AP of every category" };
        var data = new Option<string?>("--data") { HelpName = "dataset", Description = "Dataset to run a model on, then evaluate (not available yet)" };
        var weights = new Option<string?>("--weights") { HelpName = "checkpoint", Description = "Checkpoint or torchvision .pth for --data (not available yet)" };
        var command = new Command("eval", "COCO box AP (the 12 numbers of pycocotools) of a results file against ground truth");
        command.Options.Add(gt);
        command.Options.Add(dt);
        command.Options.Add(outDir);
        command.Options.Add(perCategory);
        command.Options.Add(data);
        command.Options.Add(weights);
        command.SetAction(parseResult =>
        {
            var config = parseResult.InvocationConfiguration;
            var output = config.Output;
            var error = config.Error;
            if (parseResult.GetValue(data) != null || parseResult.GetValue(weights) != null)
            {
                error.WriteLine("retina eval --data/--weights: not available yet (the model has not landed); " +
                                "run the model yourself, write a COCO results file and use --gt/--dt");
                return CliApp.Failed;
            }
            return Run(parseResult.GetValue(gt), parseResult.GetValue(dt), parseResult.GetValue(outDir), parseResult.GetValue(perCategory), output);
        });
        return command;
    }

    /// <summary>Evaluates <paramref name="dtPath"/> against <paramref name="gtPath"/>, prints the summary, writes the report.</summary>
    /// <returns><see cref="CliApp.Ok"/>.</returns>
    /// <exception cref="ArgumentException">--gt or --dt is missing.</exception>
    /// <exception cref="RetinaSharp.IO.DataFormatException">A file is missing or malformed, or a result names an unknown image or category.</exception>
    public static int Run(string? gtPath, string? dtPath, string? outDir, bool perCategory, TextWriter output)
    {
        if (string.IsNullOrEmpty(gtPath))
            throw new ArgumentException("retina eval: --gt <instances.json> is required (with --dt <results.json>)");
        if (string.IsNullOrEmpty(dtPath))
            throw new ArgumentException("retina eval: --dt <results.json> is required (with --gt <instances.json>)");
        var groundTruth = CocoJson.ReadInstances(gtPath);
        var detections = CocoJson.ReadResults(dtPath);
        var result = CocoEvaluator.Evaluate(groundTruth, detections, dtPath);
        output.WriteLine($"{result.ImageIds.Count} images, {groundTruth.Annotations.Count} ground-truth boxes, {detections.Count} detections, {result.CategoryIds.Count} categories");
        output.Write(result.Summary());
        if (perCategory)
        {
            output.WriteLine();
            output.WriteLine($"{"id",8}  {"category",-24} {"objects",8} {"AP",7} {"AP50",7} {"AP75",7}");
            foreach (var c in result.PerCategory)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{c.CategoryId,8}  {Truncate(c.Name, 24),-24} {c.GroundTruthCount,8} {c.Ap,7:0.000} {c.Ap50,7:0.000} {c.Ap75,7:0.000}"));
        }
        if (!string.IsNullOrEmpty(outDir))
        {
            string metrics = Path.Combine(outDir, MetricsFileName), curves = Path.Combine(outDir, CurvesFileName);
            result.WriteJson(metrics);
            PrCurvePlot.Save(result, curves);
            output.WriteLine($"wrote {metrics}");
            output.WriteLine($"wrote {curves}");
        }
        return CliApp.Ok;
    }

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
