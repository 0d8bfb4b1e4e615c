// `retina eval`: COCO AP of a results file against a ground-truth file, as pycocotools' COCOeval prints it
// (the everyday use of pycocotools, with no python), or of a RetinaNet checkpoint run on a dataset first
// (torchvision's detection reference `train.py --test-only`: model in eval mode, score threshold 0.05,
// 100 detections per image, COCO results, COCOeval).
using System.CommandLine;
using System.Globalization;
using RetinaSharp.Data;
using RetinaSharp.Evaluation;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Reporting;
using RetinaSharp.Visualization;
using TorchSharp;

namespace RetinaSharp.Cli.Commands;

/// <summary>
/// `retina eval --gt instances.json --dt results.json [--out DIR] [--per-category]`, or
/// `retina eval --data DATASET --weights CHECKPOINT [--split S] [--classes F] [--batch-size N] [--score-threshold T] [--min-size/--max-size] [--limit N] [--out DIR]`.
/// </summary>
public static class EvalCommand
{
    /// <summary>File name of the metrics report written under <c>--out</c>.</summary>
    public const string MetricsFileName = CocoEvaluation.MetricsFileName;

    /// <summary>File name of the precision-recall plot written under <c>--out</c>.</summary>
    public const string CurvesFileName = "pr_curves.png";

    /// <summary>File name of the HTML report (metrics, PR curves, every image with its errors) written under <c>--out</c>.</summary>
    public const string ReportFileName = EvaluationReport.FileName;

    /// <summary>File name of the model's detections (COCO results format) written under <c>--out</c> by the --data form.</summary>
    public const string DetectionsFileName = "detections.json";

    /// <summary>Builds the `eval` command.</summary>
    public static Command Create()
    {
        var gt = new Option<string?>("--gt") { HelpName = "instances.json", Description = "COCO instances JSON with the ground truth (images, annotations, categories)" };
        var dt = new Option<string?>("--dt") { HelpName = "results.json", Description = "COCO results JSON: [{image_id, category_id, bbox: [x, y, w, h], score}, ...]" };
        var outDir = new Option<string?>("--out") { HelpName = "dir", Description = $"Folder for {MetricsFileName} (12 stats, per-category AP, PR curves), {CurvesFileName} and {ReportFileName} (open it in a browser: every image with its errors)" };
        var perCategory = new Option<bool>("--per-category") { Description = "Also print the AP of every category" };
        var data = new Option<string?>("--data") { HelpName = "dataset", Description = "Dataset to run the model on (COCO .json, Pascal VOC folder or .csv), then evaluate against its boxes" };
        var weights = new Option<string?>("--weights") { HelpName = "model", Description = "Model for --data: model.rsnet from retina train (not checkpoint.rstrain), a torchvision .pth, or with --engine onnxruntime an .onnx file from retina export" };
        var split = new Option<string?>("--split") { Description = "VOC split for --data (ImageSets/Main/<split>.txt)" };
        var classes = new Option<string?>("--classes") { HelpName = "classes.csv", Description = "VOC/CSV class,id mapping file for --data" };
        var batchSize = new Option<int>("--batch-size") { Description = "Images read per step for --data; those of the same padded size share a forward pass (results never depend on the batch)", DefaultValueFactory = _ => 2 };
        var scoreThreshold = new Option<double?>("--score-threshold") { Description = "Detection score threshold for --data [default: the checkpoint's, 0.05 as in the paper's evaluation]" };
        var minSize = new Option<int?>("--min-size") { Description = "Resize: shorter side for --data [default: the checkpoint's, 800]" };
        var maxSize = new Option<int?>("--max-size") { Description = "Resize: longest side cap for --data [default: the checkpoint's, 1333]" };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N images of --data (a quick check) [default: all]" };
        var bf16 = new Option<bool>("--bf16") { Description = "Run the network in bfloat16 for --data (about 1.7x faster on CPUs with AVX512-BF16; COCO AP within 0.03 points of float32 on the demo)" };
        var device = CliApp.DeviceOption();
        var engine = InferenceEngine.CreateOption();
        var command = new Command("eval", "COCO box AP (the 12 numbers of pycocotools) of a results file against ground truth, or of a model on a dataset");
        foreach (var o in new Option[] { gt, dt, outDir, perCategory, data, weights, split, classes, batchSize, scoreThreshold, minSize, maxSize, limit, bf16, device, engine })
            command.Options.Add(o);
        command.SetAction(parseResult =>
        {
            var config = parseResult.InvocationConfiguration;
            string? dataPath = parseResult.GetValue(data), weightsPath = parseResult.GetValue(weights);
            if (dataPath != null || weightsPath != null)
            {
                if (parseResult.GetValue(gt) != null || parseResult.GetValue(dt) != null)
                    throw new ArgumentException("retina eval: use either --gt/--dt (a results file) or --data/--weights (run a model), not both");
                var settings = new ModelRunSettings(parseResult.GetValue(split), parseResult.GetValue(batchSize), parseResult.GetValue(scoreThreshold),
                    parseResult.GetValue(minSize), parseResult.GetValue(maxSize), parseResult.GetValue(limit), parseResult.GetValue(classes), parseResult.GetValue(bf16),
                    parseResult.GetValue(device)!, parseResult.GetValue(engine)!);
                return RunModel(dataPath, weightsPath, settings, parseResult.GetValue(outDir), parseResult.GetValue(perCategory), config.Output, config.Error);
            }
            return Run(parseResult.GetValue(gt), parseResult.GetValue(dt), parseResult.GetValue(outDir), parseResult.GetValue(perCategory), config.Output, config.Error);
        });
        return command;
    }

    /// <summary>Evaluates <paramref name="dtPath"/> against <paramref name="gtPath"/>, prints the summary, writes the report.</summary>
    /// <returns><see cref="CliApp.Ok"/>.</returns>
    /// <exception cref="ArgumentException">--gt or --dt is missing.</exception>
    /// <exception cref="RetinaSharp.IO.DataFormatException">A file is missing or malformed, the ground truth has duplicate ids,
    /// annotations of unlisted images or categories or negative box sizes, or a result names an unknown image or category.</exception>
    public static int Run(string? gtPath, string? dtPath, string? outDir, bool perCategory, TextWriter output, TextWriter? error = null)
    {
        if (string.IsNullOrEmpty(gtPath) && string.IsNullOrEmpty(dtPath))
            throw new ArgumentException("retina eval: give --gt <instances.json> --dt <results.json> (score a results file), or --data <dataset> --weights <model.rsnet> (run a model on a dataset, then score it)");
        if (string.IsNullOrEmpty(gtPath))
            throw new ArgumentException("retina eval: --gt <instances.json> is required (with --dt <results.json>)");
        if (string.IsNullOrEmpty(dtPath))
            throw new ArgumentException("retina eval: --dt <results.json> is required (with --gt <instances.json>)");
        bool created = !string.IsNullOrEmpty(outDir) && CliApp.EnsureOutFolder(outDir);
        CocoInstances groundTruth;
        IReadOnlyList<CocoResult> detections;
        EvaluationReport report;
        try
        {
            groundTruth = CocoJson.ReadInstances(gtPath);
            CocoGroundTruthValidation.Validate(groundTruth, gtPath);
            detections = CocoJson.ReadResults(dtPath);
            report = EvaluationReport.Evaluate(groundTruth, detections, dtPath);
        }
        catch
        {
            CliApp.RemoveIfEmpty(outDir!, created); // bad input found before any output: no empty --out folder left behind
            throw;
        }
        Report(report.Evaluation, groundTruth.Annotations.Count, detections.Count, outDir, perCategory, output);
        if (!string.IsNullOrEmpty(outDir))
            WriteHtmlReport(report, outDir, EvaluationReport.ImageFilesBeside(gtPath), anchors: null, $"{Path.GetFileName(dtPath)} against {Path.GetFileName(gtPath)}", output, error ?? TextWriter.Null);
        return CliApp.Ok;
    }

    /// <summary>Settings of the --data/--weights form.</summary>
    /// <param name="Split">VOC split, or null.</param>
    /// <param name="BatchSize">Images per forward pass (&gt;= 1).</param>
    /// <param name="ScoreThreshold">Overrides the checkpoint's score threshold, or null.</param>
    /// <param name="MinSize">Overrides the resize's shorter side, or null.</param>
    /// <param name="MaxSize">Overrides the resize's longest-side cap, or null.</param>
    /// <param name="Limit">Only the first N images, or null for all.</param>
    /// <param name="Classes">VOC/CSV <c>class,id</c> mapping file, or null.</param>
    /// <param name="BFloat16">Run the network in bfloat16 (<see cref="RetinaNet.PrepareForInference"/>); float32 (with batch norm folded) otherwise.</param>
    /// <param name="Engine"><c>torchsharp</c> or <c>onnxruntime</c> (an .onnx file from retina export, or the checkpoint exported in memory).</param>
    /// <param name="Device">Where the network runs: cpu, cuda or cuda:N (<see cref="ComputeDevice.Resolve"/>).</param>
    public sealed record ModelRunSettings(string? Split = null, int BatchSize = 2, double? ScoreThreshold = null, int? MinSize = null, int? MaxSize = null, int? Limit = null, string? Classes = null,
        bool BFloat16 = false, string Device = "cpu", string Engine = InferenceEngine.TorchSharp);

    /// <summary>
    /// Runs the checkpoint on every image of the dataset, evaluates the detections against the dataset's boxes (crowd and
    /// VOC-difficult boxes are ignored), prints the summary and writes the report plus <see cref="DetectionsFileName"/>.
    /// Unreadable images are skipped with a warning; they make the exit code <see cref="CliApp.Failed"/>.
    /// </summary>
    /// <returns><see cref="CliApp.Ok"/>, or <see cref="CliApp.Failed"/> when images were skipped.</returns>
    /// <exception cref="ArgumentException">An option is missing or out of range, or the model's classes do not fit the dataset's categories.</exception>
    /// <exception cref="DataFormatException">The dataset or the checkpoint is malformed.</exception>
    public static int RunModel(string? dataPath, string? weightsPath, ModelRunSettings settings, string? outDir, bool perCategory, TextWriter output, TextWriter error)
    {
        if (string.IsNullOrEmpty(dataPath)) throw new ArgumentException("retina eval: --data <dataset> is required with --weights");
        if (string.IsNullOrEmpty(weightsPath)) throw new ArgumentException("retina eval: --weights <checkpoint> is required with --data");
        if (settings.BatchSize < 1) throw new ArgumentException($"retina eval: --batch-size must be >= 1, found {settings.BatchSize}");
        if (settings.Limit is < 1) throw new ArgumentException($"retina eval: --limit must be >= 1, found {settings.Limit}");
        if (settings.ScoreThreshold is double t && !(t >= 0 && t < 1))
            throw new ArgumentException($"--score-threshold {t.ToString(CultureInfo.InvariantCulture)}: must be a score in [0, 1).");
        if (settings.MinSize is < 1) throw new ArgumentException($"--min-size {settings.MinSize}: must be at least 1 pixel.");
        if (settings.MaxSize is < 1) throw new ArgumentException($"--max-size {settings.MaxSize}: must be at least 1 pixel.");
        var device = CliApp.ResolveDevice(settings.Device, error);

        bool created = !string.IsNullOrEmpty(outDir) && CliApp.EnsureOutFolder(outDir);
        DetectionDataset dataset;
        InferenceEngine loaded;
        Func<int, long?> labelToCategory;
        try
        {
            dataset = DetectionDataset.Load(dataPath, settings.Split, settings.Classes);
            loaded = InferenceEngine.Open(settings.Engine, weightsPath, options =>
            {
                if (settings.ScoreThreshold is double st) options = options with { ScoreThreshold = st };
                if (settings.MinSize is int mn) options = options with { MinSize = mn };
                if (settings.MaxSize is int mx) options = options with { MaxSize = mx };
                return options;
            }, settings.BFloat16, LoadCheckpoint, device);
            try
            {
                labelToCategory = LabelMap(loaded.Options.NumClasses, dataset.Categories, weightsPath, loaded.StoredCategories);
            }
            catch
            {
                loaded.Dispose();
                throw;
            }
        }
        catch
        {
            CliApp.RemoveIfEmpty(outDir!, created); // bad input found before any output: no empty --out folder left behind
            throw;
        }
        using var model = loaded;
        error.WriteLine($"retina eval: {model.Description}");

        var images = dataset.Images.Take(settings.Limit ?? int.MaxValue).ToList();
        var detections = new List<CocoResult>();
        var skipped = new List<string>();
        var progress = new CountProgress(error, "retina eval", images.Count, "images");
        for (int start = 0; start < images.Count; start += settings.BatchSize)
        {
            using var scope = torch.NewDisposeScope();
            var batch = new List<(DetectionImage Image, torch.Tensor Tensor)>();
            foreach (var im in images.Skip(start).Take(settings.BatchSize))
            {
                try { batch.Add((im, ImageIO.ToTensor(ImageIO.Load(im.FilePath)))); }
                catch (DataFormatException e) { skipped.Add(e.Message); }
            }
            if (batch.Count > 0)
            {
                foreach (var (image, found) in DetectOrSkip(model, batch, skipped))
                    detections.AddRange(EvaluationInputs.ToCocoResults(image.Id, found, model.Options.NumClasses, labelToCategory));
            }
            progress.Report(Math.Min(start + settings.BatchSize, images.Count));
        }
        progress.Finish();

        var kept = images.Select(i => i.Id).ToHashSet();
        var full = dataset.ToCoco();
        var groundTruth = settings.Limit is null ? full
            : new CocoInstances(full.Images.Where(i => kept.Contains(i.Id)).ToList(), full.Annotations.Where(a => kept.Contains(a.ImageId)).ToList(), full.Categories);
        var report = EvaluationReport.Evaluate(groundTruth, detections, weightsPath);
        if (!string.IsNullOrEmpty(outDir))
        {
            string path = Path.Combine(outDir, DetectionsFileName);
            CocoJson.WriteResults(path, detections);
            output.WriteLine($"wrote {path}");
        }
        Report(report.Evaluation, groundTruth.Annotations.Count, detections.Count, outDir, perCategory, output);
        if (!string.IsNullOrEmpty(outDir))
            WriteHtmlReport(report, outDir, imageFile: null, AnchorCoverage.Compute(model.Options, groundTruth), $"{Path.GetFileName(weightsPath)} on {Path.GetFileName(dataPath)}", output, error);
        if (dataset.Format == DatasetFormat.Voc)
            ReportVoc(dataset, kept, detections, output);
        if (skipped.Count == 0) return CliApp.Ok;
        error.WriteLine($"retina eval: skipped {Plural.Of(skipped.Count, "unreadable image")} (their objects count as missed):");
        foreach (var m in skipped) error.WriteLine($"  {m}");
        return CliApp.Failed;
    }

    /// <summary>Loads the checkpoint; a truncated file or a libtorch failure becomes a <see cref="DataFormatException"/> naming it.</summary>
    private static RetinaNet LoadCheckpoint(string weightsPath)
    {
        if (Directory.Exists(weightsPath))
            throw new DataFormatException(weightsPath, null, null, "is a folder, expected a checkpoint file (--weights)" +
                (File.Exists(Path.Combine(weightsPath, "model.rsnet")) ? $"; did you mean {Path.Combine(Path.GetFullPath(weightsPath), "model.rsnet")}?" : ""));
        try { return RetinaNetCheckpoint.Load(weightsPath); }
        catch (EndOfStreamException e)
        {
            throw new DataFormatException(weightsPath, null, null, $"checkpoint is truncated or corrupt: {e.Message}", e);
        }
        catch (System.Runtime.InteropServices.ExternalException e)
        {
            throw new DataFormatException(weightsPath, null, null, $"libtorch cannot read the checkpoint: {FirstLine(e.Message)}", e);
        }
    }

    /// <summary>
    /// Runs the model on a batch. When libtorch refuses the batch (for example an image of extreme aspect ratio that the
    /// resize shrinks to 0 pixels on one side), each image runs alone and the ones it still refuses are skipped with a
    /// message naming the file and its size, as unreadable images are.
    /// </summary>
    private static IEnumerable<(DetectionImage Image, Detections Found)> DetectOrSkip(InferenceEngine model,
        List<(DetectionImage Image, torch.Tensor Tensor)> batch, List<string> skipped)
    {
        IReadOnlyList<Detections>? found = null;
        try { found = model.Detect(batch.Select(b => b.Tensor).ToList()); }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or ArgumentException && batch.Count > 1) { }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or ArgumentException)
        {
            skipped.Add(SkipMessage(batch[0], e));
            return [];
        }
        if (found != null) return batch.Select((b, i) => (b.Image, found[i])).ToList();
        var results = new List<(DetectionImage, Detections)>();
        foreach (var b in batch)
        {
            try { results.Add((b.Image, model.Detect([b.Tensor])[0])); }
            catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or ArgumentException)
            {
                skipped.Add(SkipMessage(b, e));
            }
        }
        return results;
    }

    private static string SkipMessage((DetectionImage Image, torch.Tensor Tensor) b, Exception e) =>
        $"{b.Image.FilePath}: image id {b.Image.Id}: the model cannot process this {b.Tensor.shape[2]}x{b.Tensor.shape[1]} image: {FirstLine(e.Message)}";

    private static string FirstLine(string message)
    {
        int n = message.IndexOf('\n');
        return n < 0 ? message : message[..n];
    }

    /// <summary>
    /// Model label -> original category id: by name when the model file stores its class names (model.rsnet from
    /// retina train); else contiguous indices when the model has one class per dataset category;
    /// torchvision's COCO convention (91 outputs, label = COCO id) when the model has 91 classes and the ids are 1..90.
    /// </summary>
    /// <exception cref="ArgumentException">The stored names differ from the dataset's, or the counts do not fit.</exception>
    internal static Func<int, long?> LabelMap(int numClasses, CategoryMap categories, string weightsPath, IReadOnlyList<CocoCategory>? modelCategories = null)
    {
        if (modelCategories != null && modelCategories.Count == numClasses)
        {
            var ids = CategoryMatch.LabelsByName(modelCategories, categories, weightsPath);
            return label => label >= 0 && label < ids.Length ? ids[label] : null;
        }
        if (numClasses == categories.Count) return label => categories.ToCategoryId(label);
        if (numClasses == 91 && categories.Categories.All(c => c.Id is >= 1 and <= 90))
            return label => categories.Contains(label) ? label : null;
        throw new ArgumentException($"retina eval: the model in '{weightsPath}' has {Plural.Of(numClasses, "class")} but the dataset has {Plural.Of(categories.Count, "category")} " +
                                    "(expected one class per category, or torchvision's 91 COCO outputs)");
    }

    /// <summary>Pascal VOC mAP at IoU 0.5 (difficult objects ignored) of the same detections, both AP methods.</summary>
    private static void ReportVoc(DetectionDataset dataset, HashSet<long> imageIds, List<CocoResult> detections, TextWriter output)
    {
        var gt = EvaluationInputs.ToVocGroundTruth(dataset).Where(g => imageIds.Contains(long.Parse(g.ImageId, CultureInfo.InvariantCulture))).ToList();
        var dets = detections.Select(r => new VocDetection(r.ImageId.ToString(CultureInfo.InvariantCulture), dataset.Categories.ToIndex(r.CategoryId),
            r.X, r.Y, r.X + r.Width, r.Y + r.Height, r.Score)).ToList();
        var allPoint = VocEvaluator.Evaluate(gt, dets, VocApMethod.AllPoint);
        var elevenPoint = VocEvaluator.Evaluate(gt, dets, VocApMethod.ElevenPoint);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Pascal VOC mAP@0.5: {allPoint.MeanAp:0.0000} (all-point, VOC2010+), {elevenPoint.MeanAp:0.0000} (11-point, VOC2007)"));
    }

    private static void Report(CocoEvaluation result, int groundTruthCount, int detectionCount, string? outDir, bool perCategory, TextWriter output)
    {
        output.WriteLine($"{Plural.Of(result.ImageIds.Count, "image")}, {Plural.Of(groundTruthCount, "ground-truth box")}, {Plural.Of(detectionCount, "detection")}, {Plural.Of(result.CategoryIds.Count, "category")}");
        output.Write(result.Summary());
        if (result.Stats.ToArray().Any(v => v == -1))
            output.WriteLine("(-1.000: no ground-truth box in that size range (small < 32², medium < 96², large above, in pixels²), so the number is undefined; pycocotools prints the same)");
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
    }

    /// <summary>Writes <see cref="ReportFileName"/> into <paramref name="outDir"/>, with progress while the thumbnails are made.</summary>
    internal static void WriteHtmlReport(EvaluationReport report, string outDir, Func<CocoImage, string?>? imageFile, AnchorCoverage? anchors, string source,
        TextWriter output, TextWriter error)
    {
        string path = Path.Combine(outDir, ReportFileName);
        var progress = new CountProgress(error, "report thumbnails", report.Evaluation.ImageIds.Count, "images");
        var summary = report.Write(path, imageFile, anchors, new EvaluationReportOptions { Title = "Evaluation report", Source = source }, (done, _) => progress.Report(done));
        progress.Finish();
        output.WriteLine($"wrote {path}");
        if (summary.Unreadable > 0 || summary.LeftOut > 0)
            output.WriteLine($"  ({Plural.Of(summary.Unreadable + summary.LeftOut, "image")} without a picture in the report: {summary.Unreadable} not found or unreadable, {summary.LeftOut} over the size budget)");
    }

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
