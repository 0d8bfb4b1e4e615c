using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RetinaSharp.Analysis;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Visualization;

namespace RetinaSharp.Cli.Commands;

/// <summary>
/// `retina data`: dataset tools. `data check` validates a COCO/VOC/CSV dataset (and repairs it with
/// `--repair --out fixed.json`); `data anchors` reports (and with `--fit` improves) how the anchors cover the boxes;
/// `data fashion-scenes` builds the Fashion-MNIST detection scenes of `retina demo`.
/// </summary>
public static class DataCommand
{
    /// <summary>Builds the `data` command with its sub-commands.</summary>
    public static Command Create()
    {
        var command = new Command("data", "Dataset tools: check and repair datasets, build the Fashion-MNIST detection scenes.");
        command.Subcommands.Add(CreateCheck());
        command.Subcommands.Add(CreateAnchors());
        command.Subcommands.Add(CreateFashionScenes());
        return command;
    }

    private static Command CreateCheck()
    {
        var dataset = new Argument<string>("dataset") { Description = "A COCO instances .json, a Pascal VOC folder (with Annotations/) or a .csv file (path,x1,y1,x2,y2,class)" };
        var split = new Option<string?>("--split") { Description = "Pascal VOC: the split (ImageSets/Main/<split>.txt) [default: trainval if present, else all annotations]" };
        var classes = new Option<string?>("--classes") { Description = "VOC/CSV: a class,id mapping file [default: classes.csv beside a .csv dataset]" };
        var repair = new Option<bool>("--repair") { Description = "Clip boxes to the image, drop degenerate boxes, unusable images and unknown categories; print every change" };
        var output = new Option<string?>("--out") { HelpName = "fixed.json", Description = "With --repair: where to write the repaired dataset as COCO json" };
        var headersOnly = new Option<bool>("--headers-only") { Description = "Read only image headers (faster; does not find truncated image data)" };
        var check = new Command("check", "Validate a dataset: list every problem with file, record, field and value; exit code 2 when there are problems.")
        {
            dataset, split, classes, repair, output, headersOnly,
        };
        check.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            string path = parse.GetRequiredValue(dataset);
            bool doRepair = parse.GetValue(repair);
            string? outPath = parse.GetValue(output);
            if (outPath != null && !doRepair)
                throw new ArgumentException("--out is only used with --repair", "--out");
            if (doRepair && outPath is null)
                throw new ArgumentException("--repair needs --out <fixed.json> (where to write the repaired dataset)", "--out");
            bool decode = !parse.GetValue(headersOnly);
            if (outPath != null)
            {
                if (Directory.Exists(outPath))
                    throw new ArgumentException($"--out '{Path.GetFullPath(outPath)}' is a folder; give the file to write, e.g. {Path.Combine(outPath, "fixed.json")}", "--out");
                CliApp.EnsureOutFolder(Path.GetDirectoryName(Path.GetFullPath(outPath))!, "--out (its folder)");
            }

            var ds = DetectionDataset.Load(path, parse.GetValue(split), parse.GetValue(classes));
            var problems = DatasetCheck.Check(ds, decode);
            foreach (var p in problems) stdout.WriteLine(p.ToString());
            stdout.WriteLine($"{ds.Source}: {ds.Format}, {Plural.Of(ds.Images.Count, "image")}, {Plural.Of(ds.BoxCount, "box")}, {Plural.Of(ds.Categories.Count, "category")}: "
                + (problems.Count == 0 ? "no problems" : Plural.Of(problems.Count, "problem")));
            if (problems.Count > 0)
                stdout.WriteLine("  by kind: " + string.Join(", ", problems.GroupBy(p => p.Kind).Select(g => $"{g.Key} {g.Count()}")));
            if (!doRepair)
                return problems.Count == 0 ? CliApp.Ok : CliApp.BadInput;

            var fixedSet = DatasetCheck.Repair(ds, decode);
            foreach (var c in fixedSet.Changes) stdout.WriteLine($"repair: {c}");
            string full = Path.GetFullPath(outPath!);
            CocoJson.WriteInstances(full, fixedSet.Dataset.ToCoco(relativeTo: Path.GetDirectoryName(full)));
            var left = DatasetCheck.Check(fixedSet.Dataset, decodeImages: false);
            stdout.WriteLine($"repaired dataset written to {full}: {Plural.Of(fixedSet.Dataset.Images.Count, "image")}, {Plural.Of(fixedSet.Dataset.BoxCount, "box")}, "
                + $"{Plural.Of(fixedSet.Changes.Count, "change")}, {Plural.Of(left.Count, "problem")} left");
            foreach (var p in left) stdout.WriteLine(p.ToString());
            return left.Count == 0 ? CliApp.Ok : CliApp.BadInput;
        });
        return check;
    }

    private static Command CreateAnchors()
    {
        var dataset = new Argument<string>("dataset") { Description = "A COCO instances .json, a Pascal VOC folder (with Annotations/) or a .csv file (path,x1,y1,x2,y2,class)" };
        var split = new Option<string?>("--split") { Description = "Pascal VOC: the split (ImageSets/Main/<split>.txt) [default: trainval if present, else all annotations]" };
        var classes = new Option<string?>("--classes") { Description = "VOC/CSV: a class,id mapping file [default: classes.csv beside a .csv dataset]" };
        var weights = new Option<string?>("--weights") { HelpName = "model", Description = "A model.rsnet: take anchors, resize and IoU thresholds from this model (instead of the options below)" };
        var anchorsFile = new Option<string?>("--anchors") { HelpName = "anchors.json", Description = "Take anchor sizes and ratios from an anchors file (written by --fit)" };
        var minSize = new Option<int>("--min-size") { Description = "Shorter image side after resize, pixels (as retina train)", DefaultValueFactory = _ => 800 };
        var maxSize = new Option<int>("--max-size") { Description = "Longer image side limit, pixels (as retina train)", DefaultValueFactory = _ => 1333 };
        var sizes = new Option<string?>("--anchor-sizes") { Description = "Anchor sizes per level P3..P7: levels separated by ';', sizes by ',' (or 5 sizes, one per level) [default: torchvision's 32,40,50;64,80,101;...]" };
        var ratios = new Option<string?>("--aspect-ratios") { Description = "Anchor aspect ratios height/width, comma-separated [default: 0.5,1,2]" };
        var fg = new Option<double>("--fg-iou") { Description = "Foreground IoU threshold of the matcher", DefaultValueFactory = _ => 0.5 };
        var bg = new Option<double>("--bg-iou") { Description = "Background IoU threshold of the matcher (between the two: ignored)", DefaultValueFactory = _ => 0.4 };
        var fit = new Option<bool>("--fit") { Description = "Search anchor sizes and ratios with the same anchor count that give more boxes a positive anchor; writes anchors.json for retina train --anchors" };
        var output = new Option<string?>("--out") { HelpName = "dir", Description = "Folder for anchor_coverage.json, anchor_coverage.png (and anchors.json with --fit) [default: print only]" };
        var command = new Command("anchors", "How the anchors cover the ground-truth boxes at the training resize: per box its best anchor IoU; the fraction with a positive anchor (IoU >= fg), only ignored ones, or none; by size and aspect ratio.")
        {
            dataset, split, classes, weights, anchorsFile, minSize, maxSize, sizes, ratios, fg, bg, fit, output,
        };
        command.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            string? weightsPath = parse.GetValue(weights);
            AnchorSettings settings;
            if (weightsPath != null)
            {
                foreach (var o in new Option[] { sizes, ratios, minSize, maxSize, fg, bg, anchorsFile })
                    if (parse.GetResult(o) is { Implicit: false }) throw new ArgumentException($"--weights sets the anchors, resize and thresholds; drop {o.Name}", o.Name);
                using var model = RetinaNetCheckpoint.Load(weightsPath);
                settings = AnchorSettings.From(model.Options);
            }
            else
            {
                var options = new RetinaNetOptions(1) { MinSize = parse.GetValue(minSize), MaxSize = parse.GetValue(maxSize), FgIouThreshold = parse.GetValue(fg), BgIouThreshold = parse.GetValue(bg) };
                if (parse.GetValue(anchorsFile) is { } af)
                {
                    if (parse.GetResult(sizes) is { Implicit: false } || parse.GetResult(ratios) is { Implicit: false })
                        throw new ArgumentException("--anchors sets the anchor sizes and ratios; drop --anchor-sizes/--aspect-ratios", "--anchors");
                    options = AnchorFile.ApplyTo(af, options);
                }
                if (parse.GetValue(sizes) is { } st) options = options with { AnchorSizes = AnchorSettings.ParseSizes(st) };
                if (parse.GetValue(ratios) is { } rt) options = options with { AspectRatios = AnchorSettings.ParseAspectRatios(rt) };
                settings = AnchorSettings.From(options);
                settings.Validate();
            }
            string? outDir = parse.GetValue(output);
            if (outDir != null) CliApp.EnsureOutFolder(Path.GetFullPath(outDir));

            var ds = DetectionDataset.Load(parse.GetRequiredValue(dataset), parse.GetValue(split), parse.GetValue(classes));
            var boxes = AnchorBoxSet.FromDataset(ds, out int skipped);
            if (skipped > 0) stdout.WriteLine($"note: {Plural.Of(skipped, "image")} without a known size left out (run retina data check)");
            var sw = Stopwatch.StartNew();
            var configured = AnchorCoverageAnalysis.Analyze(settings, boxes);
            stdout.WriteLine($"{ds.Source}: {Plural.Of(configured.ImageCount, "image")} ({configured.EmptyImageCount} empty), {Plural.Of(configured.BoxCount, "box")}; "
                + $"analysed in {sw.Elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s");
            Print(stdout, "configured", configured);
            AnchorCoverageResult? fitted = null;
            if (parse.GetValue(fit))
            {
                if (configured.BoxCount == 0) throw new ArgumentException($"{ds.Source}: no boxes to fit anchors to", "--fit");
                sw.Restart();
                var result = AnchorFit.Fit(settings, boxes, progress: (done, total) => { if (done % 100 == 0) stdout.WriteLine($"  fit: {done}/{total} anchor sets tried"); });
                fitted = result.After;
                stdout.WriteLine($"fit: {result.Evaluations} anchor sets tried in {sw.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s, same {settings.AnchorsPerLocation} anchors per location");
                Print(stdout, "fitted", fitted);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"positive: {result.Before.Overall.PositiveFraction:P2} -> {fitted.Overall.PositiveFraction:P2}; none: {result.Before.Overall.NoneFraction:P2} -> {fitted.Overall.NoneFraction:P2}"));
            }
            if (outDir != null)
            {
                string json = Path.Combine(Path.GetFullPath(outDir), "anchor_coverage.json"), png = Path.Combine(Path.GetFullPath(outDir), "anchor_coverage.png");
                configured.WriteJson(json, ds.Source, fitted);
                AnchorCoveragePlot.Write(configured, png, fitted);
                stdout.WriteLine($"wrote {json}");
                stdout.WriteLine($"wrote {png}");
                if (fitted != null)
                {
                    string anchors = Path.Combine(Path.GetFullPath(outDir), "anchors.json");
                    AnchorFile.Write(anchors, fitted.Settings, configured.Overall, fitted.Overall, ds.Source);
                    stdout.WriteLine($"wrote {anchors} (use: retina train --anchors {anchors} ...)");
                }
            }
            else if (fitted != null) stdout.WriteLine("(give --out DIR to write anchors.json for retina train --anchors)");
            return CliApp.Ok;
        });
        return command;
    }

    private static void Print(TextWriter w, string label, AnchorCoverageResult r)
    {
        var s = r.Settings;
        w.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label} anchors: sizes {string.Join(";", s.Sizes.Select(l => string.Join(",", l)))}, ratios {string.Join(",", s.AspectRatios)}; resize {s.MinSize}/{s.MaxSize}; IoU fg {s.FgIouThreshold} bg {s.BgIouThreshold}"));
        w.WriteLine($"  {"group",-14} {"boxes",9} {"positive",9} {"ignored",9} {"none",9} {"pos/box",8} {"mean IoU",8}");
        void Row(AnchorCoverageBin b) => w.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {b.Name,-14} {b.Boxes,9} {b.PositiveFraction,9:P1} {b.IgnoredOnlyFraction,9:P1} {b.NoneFraction,9:P1} {b.MeanPositives,8:F2} {b.MeanBestIou,8:F3}"));
        Row(r.Overall);
        w.WriteLine("  by COCO size (original area):");
        foreach (var b in r.BySize) Row(b);
        w.WriteLine("  by box side in the training frame (px):");
        foreach (var b in r.ByTrainingSize.Where(b => b.Boxes > 0)) Row(b);
        w.WriteLine("  by aspect ratio:");
        foreach (var b in r.ByAspectRatio.Where(b => b.Boxes > 0)) Row(b);
        var h = r.PositivesHistogram();
        w.WriteLine("  positive anchors per box: " + string.Join(", ", h.Select((c, k) => $"{(k == h.Length - 1 ? $">={k}" : k.ToString(CultureInfo.InvariantCulture))}: {c}")));
    }

    private static Command CreateFashionScenes()
    {
        var output = new Option<string>("--out") { Description = "The dataset folder to write (train/, val/, instances_train.json, instances_val.json)", Required = true };
        var train = new Option<int>("--train") { Description = "Number of training scenes", DefaultValueFactory = _ => 2000 };
        var val = new Option<int>("--val") { Description = "Number of validation scenes", DefaultValueFactory = _ => 300 };
        var size = new Option<int>("--size") { Description = $"Scene side in pixels (at least {FashionScenesOptions.MinSize}).", DefaultValueFactory = _ => 128 };
        var seed = new Option<int>("--seed") { Description = "Random seed: the same seed gives the same files", DefaultValueFactory = _ => 0 };
        var data = new Option<string?>("--fashion-mnist") { Description = "Folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz [default: data/fashion-mnist of the checkout]" };
        var command = new Command("fashion-scenes", "Compose a COCO-format detection dataset of Fashion-MNIST glyphs on varied backgrounds (train and val use disjoint glyphs).")
        {
            output, train, val, size, seed, data,
        };
        command.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var options = new FashionScenesOptions(parse.GetRequiredValue(output), parse.GetValue(train), parse.GetValue(val),
                parse.GetValue(size), parse.GetValue(seed), parse.GetValue(data));
            options.Validate();
            CliApp.EnsureOutFolder(options.OutputFolder);
            var sw = Stopwatch.StartNew();
            var r = FashionScenes.Build(options);
            stdout.WriteLine($"wrote {r.TrainImages} training scenes ({r.TrainBoxes} boxes) and {r.ValImages} validation scenes ({r.ValBoxes} boxes) "
                + $"of {options.Size}x{options.Size} to {r.OutputFolder} in {sw.Elapsed.TotalSeconds:F1} s");
            stdout.WriteLine($"  {r.TrainJson}");
            stdout.WriteLine($"  {r.ValJson}");
            return CliApp.Ok;
        });
        return command;
    }
}
