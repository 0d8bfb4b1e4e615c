using System.CommandLine;
using System.Diagnostics;
using RetinaSharp.Data;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.IO;

namespace RetinaSharp.Cli.Commands;

/// <summary>
/// `retina data`: dataset tools. `data check` validates a COCO/VOC/CSV dataset (and repairs it with
/// `--repair --out fixed.json`); `data fashion-scenes` builds the Fashion-MNIST detection scenes of `retina demo`.
/// </summary>
public static class DataCommand
{
    /// <summary>Builds the `data` command with its sub-commands.</summary>
    public static Command Create()
    {
        var command = new Command("data", "Dataset tools: check and repair datasets, build the Fashion-MNIST detection scenes.");
        command.Subcommands.Add(CreateCheck());
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
