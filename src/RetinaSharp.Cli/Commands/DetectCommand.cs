// `retina detect`: batched RetinaNet inference on image files, folders or globs (torchvision's
// RetinaNet.forward in eval mode, as in its detection reference's inference), writing COCO results JSON and
// a copy of each image with the boxes, class names and scores drawn.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RetinaSharp.Data;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Visualization;
using RetinaSharp.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Cli.Commands;

/// <summary>`retina detect`.</summary>
public static class DetectCommand
{
    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"];

    /// <summary>The suffix of the drawn copies detect writes; a folder input skips such files (earlier outputs).</summary>
    internal const string DrawnSuffix = ".detections.png";

    /// <summary>Builds the `detect` command.</summary>
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "Model: model.rsnet from retina train (not checkpoint.rstrain), a torchvision .pth, or with --engine onnxruntime an .onnx file from retina export", Required = true };
        var inputs = new Argument<string[]>("images") { Description = "Image files, folders or globs (*.jpg)", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "Output folder: detections.json and the drawn images", Required = true };
        var numClasses = new Option<int?>("--num-classes") { Description = "Classes of a .pth checkpoint [default: inferred from its weights]" };
        var score = new Option<double>("--score-threshold") { Description = "Keep detections scoring at least this in detections.json", DefaultValueFactory = _ => 0.05 };
        var draw = new Option<double>("--draw-threshold") { Description = "Draw detections scoring at least this", DefaultValueFactory = _ => 0.5 };
        var maxDets = new Option<int?>("--max-detections") { Description = "Detections kept per image [default: the model's, 100]" };
        var minSize = new Option<int?>("--min-size") { Description = "Shorter side after resize [default: the model's]" };
        var maxSize = new Option<int?>("--max-size") { Description = "Longer side limit [default: the model's]" };
        var classes = new Option<string?>("--classes") { Description = "A COCO instances .json whose categories name the classes (and give their ids) and whose images give the image ids in detections.json [default: the names stored in model.rsnet; image ids 1..N in input order]" };
        var batch = new Option<int>("--batch-size") { Description = "Images read per step; those of the same padded size share a forward pass (results never depend on the batch)", DefaultValueFactory = _ => 4 };
        var bf16 = new Option<bool>("--bf16") { Description = "Run the network in bfloat16 (about 1.7x faster on CPUs with AVX512-BF16; COCO AP within 0.03 points of float32 on the demo)" };
        var device = CliApp.DeviceOption();
        var engine = InferenceEngine.CreateOption();
        var command = new Command("detect", "Detect objects in images with a trained RetinaNet.");
        command.Arguments.Add(inputs);
        foreach (var o in new Option[] { weights, outDir, numClasses, score, draw, maxDets, minSize, maxSize, classes, batch, bf16, engine, device }) command.Options.Add(o);
        command.SetAction(p =>
        {
            var console = ConsoleFor(p.InvocationConfiguration.Output);
            var dev = CliApp.ResolveDevice(p.GetValue(device));
            int bs = p.GetValue(batch);
            if (bs <= 0) throw new ArgumentException($"--batch-size {bs}: must be at least 1.");
            ValidateOptions(p.GetValue(score), p.GetValue(draw), p.GetValue(maxDets), p.GetValue(minSize), p.GetValue(maxSize));
            string o = Path.GetFullPath(p.GetValue(outDir)!);
            var files = ExpandInputs(p.GetValue(inputs)!);
            if (files.Count == 0) throw new ArgumentException("No image files found in the given paths.");
            bool created = CliApp.EnsureOutFolder(o);
            try
            {
                // The architecture comes from the checkpoint; --num-classes only states what the user expects of it.
                double st = p.GetValue(score);
                using var model = InferenceEngine.Open(p.GetValue(engine)!, Path.GetFullPath(p.GetValue(weights)!), mo => mo with
                {
                    ScoreThreshold = Math.Min(st, Math.Min(p.GetValue(draw), mo.ScoreThreshold)),
                    DetectionsPerImage = p.GetValue(maxDets) ?? mo.DetectionsPerImage, MinSize = p.GetValue(minSize) ?? mo.MinSize,
                    MaxSize = p.GetValue(maxSize) ?? Math.Max(mo.MaxSize, p.GetValue(minSize) ?? mo.MinSize),
                }, p.GetValue(bf16), w => RetinaNetCheckpoint.Load(w), dev);
                if (p.GetValue(numClasses) is int k && k != model.Options.NumClasses)
                    throw new ArgumentException(
                        $"--num-classes {k}: the weights in '{p.GetValue(weights)}' have {Plural.Of(model.Options.NumClasses, "class")}.");
                var mo = model.Options;
                console.MarkupLineInterpolated($"[grey]Engine: {model.Description}.[/]");
                string? classesPath = p.GetValue(classes) is string cj ? Path.GetFullPath(cj) : null;
                var instances = classesPath != null ? CocoJson.ReadInstances(classesPath) : null;
                // Class names: --classes, else the names stored in model.rsnet by retina train, else "class i" with id i.
                var stored = model.StoredCategories;
                if (stored != null && stored.Count != mo.NumClasses) stored = null;
                CategoryMap categories = instances != null ? new CategoryMap(instances.Categories)
                    : stored != null ? new CategoryMap(stored)
                    : new CategoryMap(Enumerable.Range(0, mo.NumClasses).Select(i => new CocoCategory(i, $"class {i}")));
                if (categories.Count != mo.NumClasses)
                    throw new ArgumentException($"--classes: {Plural.Of(categories.Count, "category")} but the model has {Plural.Of(mo.NumClasses, "class")}.");
                if (instances != null && stored != null)
                {
                    var byName = CategoryMatch.LabelsByName(stored, categories, p.GetValue(weights)!);
                    if (byName.Where((id, label) => id != categories.ToCategoryId(label)).Any())
                        throw new ArgumentException($"--classes: the categories of {classesPath} have the model's class names but in another id order; " +
                                                    "give a json whose category ids follow the model's class order, or leave --classes out (the model file has the names).");
                }
                var (ids, note) = ImageIds(files, instances, classesPath);
                if (classesPath != null) console.MarkupLineInterpolated($"[grey]{note}[/]"); // without --classes the rule is in --help
                // What the detections in --out depend on: a re-run continues detections.jsonl only with the same values.
                var runOptions = new SortedDictionary<string, string>(StringComparer.Ordinal)
                {
                    ["--weights"] = Path.GetFullPath(p.GetValue(weights)!), ["--engine"] = p.GetValue(engine)!, ["--bf16"] = p.GetValue(bf16) ? "true" : "false",
                    ["--score-threshold"] = Show(st), ["--draw-threshold"] = Show(p.GetValue(draw)), ["--max-detections"] = mo.DetectionsPerImage.ToString(CultureInfo.InvariantCulture),
                    ["--min-size"] = mo.MinSize.ToString(CultureInfo.InvariantCulture), ["--max-size"] = mo.MaxSize.ToString(CultureInfo.InvariantCulture),
                    ["--classes"] = classesPath ?? "",
                };
                return Detect(console, model, categories, files, ids, o, st, p.GetValue(draw), bs, runOptions);
            }
            catch
            {
                CliApp.RemoveIfEmpty(o, created); // nothing written (bad weights, no readable image): no empty --out left behind
                throw;
            }
        });
        return command;
    }

    /// <summary>Checks the numeric options before any file is read or written; each message names the option as typed.</summary>
    /// <exception cref="ArgumentException">A value is out of range (thresholds outside [0, 1] or not a number, counts and sizes below 1).</exception>
    internal static void ValidateOptions(double score, double draw, int? maxDetections, int? minSize, int? maxSize)
    {
        static string Show(double v) => v.ToString(CultureInfo.InvariantCulture);
        if (!(score >= 0 && score <= 1)) throw new ArgumentException($"--score-threshold {Show(score)}: must be a score in [0, 1].");
        if (!(draw >= 0 && draw <= 1)) throw new ArgumentException($"--draw-threshold {Show(draw)}: must be a score in [0, 1].");
        if (maxDetections is < 1) throw new ArgumentException($"--max-detections {maxDetections}: must be at least 1.");
        if (minSize is < 1) throw new ArgumentException($"--min-size {minSize}: must be at least 1 pixel.");
        if (maxSize is < 1) throw new ArgumentException($"--max-size {maxSize}: must be at least 1 pixel.");
        if (minSize is int mn && maxSize is int mx && mx < mn) throw new ArgumentException($"--max-size {mx}: must be at least --min-size ({mn}).");
    }

    /// <summary>
    /// The image id of each input file in detections.json: the id of the image of <paramref name="instances"/> (the
    /// <c>--classes</c> json) with the same file, when every input file has one, so that <c>retina eval --gt</c> with that
    /// json scores the right images. A file matches an image whose <c>file_name</c>, relative to the json's folder or its
    /// <c>images/</c> subfolder (where the dataset loader looks), is that file; else whose bare file name is the file's, when
    /// only one image has that name. Otherwise (no json, a file without a match, two files on one image) the ids are
    /// 1..N in input order. The note says which rule was used.
    /// </summary>
    internal static (long[] Ids, string Note) ImageIds(IReadOnlyList<string> files, CocoInstances? instances, string? jsonPath)
    {
        long[] sequential = Enumerable.Range(1, files.Count).Select(i => (long)i).ToArray();
        if (instances == null || jsonPath == null)
            return (sequential, $"Image ids in detections.json are 1..{files.Count} in input order (give --classes instances.json to use its image ids).");
        string dir = Path.GetDirectoryName(Path.GetFullPath(jsonPath))!;
        var byPath = new Dictionary<string, long>(StringComparer.Ordinal);
        var byName = new Dictionary<string, long?>(StringComparer.Ordinal);
        foreach (var im in instances.Images)
        {
            byPath.TryAdd(Path.GetFullPath(Path.Combine(dir, im.FileName)), im.Id);
            byPath.TryAdd(Path.GetFullPath(Path.Combine(dir, "images", im.FileName)), im.Id);
            string bare = Path.GetFileName(im.FileName);
            byName[bare] = byName.ContainsKey(bare) ? null : im.Id; // an ambiguous bare name matches nothing
        }
        var ids = new long[files.Count];
        var missing = new List<string>();
        for (int i = 0; i < files.Count; i++)
        {
            string f = Path.GetFullPath(files[i]);
            if (byPath.TryGetValue(f, out long id)) ids[i] = id;
            else if (byName.TryGetValue(Path.GetFileName(f), out var bare) && bare is long b) ids[i] = b;
            else missing.Add(files[i]);
        }
        if (missing.Count == 0 && ids.Distinct().Count() == ids.Length)
            return (ids, $"Image ids in detections.json are those of {jsonPath} (matched by file name).");
        string why = missing.Count > 0
            ? $"{missing.Count} of {files.Count} input files are not among its images, e.g. {missing[0]}"
            : "two input files match the same image";
        return (sequential, $"Image ids in detections.json are 1..{files.Count} in input order, not those of {jsonPath}: {why}.");
    }

    /// <summary>Files, folders (their images, sorted, without earlier <c>*.detections.png</c> outputs) and globs (in the file name part) to a sorted list of image files.</summary>
    /// <exception cref="FileNotFoundException">A path that is neither a file, a folder nor a glob matching something.</exception>
    internal static List<string> ExpandInputs(IEnumerable<string> inputs)
    {
        var files = new List<string>();
        foreach (var raw in inputs)
        {
            string path = Path.GetFullPath(raw);
            if (File.Exists(path)) files.Add(path);
            else if (Directory.Exists(path))
                files.AddRange(Directory.EnumerateFiles(path).Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())
                    && !f.EndsWith(DrawnSuffix, StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal));
            else if (raw.IndexOfAny(['*', '?']) >= 0 && Directory.Exists(Path.GetDirectoryName(path)))
                files.AddRange(Directory.EnumerateFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path)).Order(StringComparer.Ordinal));
            else throw new FileNotFoundException($"'{raw}' is not an image file, a folder or a glob that matches files.", raw);
        }
        return files.Distinct().ToList();
    }

    /// <summary>
    /// The drawn image's path under --out for each input file, unique: <c>stem.detections.png</c> when the stems are unique;
    /// else the path relative to the inputs' common folder (<c>a/scene.detections.png</c>, <c>b/scene.detections.png</c>);
    /// else that path with the extension kept (<c>a/scene.jpg.detections.png</c> beside <c>a/scene.png.detections.png</c>).
    /// </summary>
    internal static List<string> DrawnNames(IReadOnlyList<string> files)
    {
        var full = files.Select(Path.GetFullPath).ToList();
        string root = full.Count == 0 ? "" : Path.GetDirectoryName(full[0])!;
        foreach (var f in full)
            while (!IsUnder(f, root)) root = Path.GetDirectoryName(root) ?? "";
        string Relative(string f) => root.Length == 0 ? f.TrimStart(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar, ':') : Path.GetRelativePath(root, f);
        Func<string, string>[] levels =
        [
            f => Path.GetFileNameWithoutExtension(f),
            f => Path.ChangeExtension(Relative(f), null),
            f => Relative(f),
        ];
        List<string> names = [];
        foreach (var level in levels)
        {
            names = full.Select(f => level(f) + ".detections.png").ToList();
            if (names.Distinct(StringComparer.OrdinalIgnoreCase).Count() == names.Count) break;
        }
        return names;
    }

    private static bool IsUnder(string file, string folder) =>
        folder.Length == 0 || file.StartsWith(Path.EndsInDirectorySeparator(folder) ? folder : folder + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>The terminal when <paramref name="output"/> is the process's standard output (progress bar and colours
    /// where it is one), else a plain console writing to <paramref name="output"/> (tests, in-process callers).</summary>
    private static IAnsiConsole ConsoleFor(TextWriter output)
    {
        if (ReferenceEquals(output, Console.Out)) return AnsiConsole.Console;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 4096;   // a file or a test's writer: one line per message, not wrapped at 80 columns
        return console;
    }

    private static string Show(double v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>The streamed detections: one JSON line per image, appended as each image finishes.</summary>
    internal const string JsonLinesFileName = "detections.jsonl";
    /// <summary>The options detections.jsonl was made with, checked when a re-run continues it.</summary>
    internal const string RunOptionsFileName = "detect-options.json";

    /// <summary>
    /// Files already in detections.jsonl of an earlier run into <paramref name="outDir"/> (full path -> image id), after
    /// removing a line cut short by a killed run. Empty when there is no detections.jsonl.
    /// </summary>
    /// <exception cref="ArgumentException">The earlier run used other options, or its image ids do not fit this run's (the inputs changed).</exception>
    private static Dictionary<string, long> EarlierResults(string outDir, IReadOnlyList<string> files, long[] imageIds, IReadOnlyDictionary<string, string> runOptions)
    {
        string jsonl = Path.Combine(outDir, JsonLinesFileName), optionsPath = Path.Combine(outDir, RunOptionsFileName);
        var done = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!File.Exists(jsonl)) return done;
        if (!File.Exists(optionsPath))
            throw new ArgumentException($"--out {outDir}: has {JsonLinesFileName} but not {RunOptionsFileName} (the options it was made with); give another --out, or delete {JsonLinesFileName} to start again.");
        Dictionary<string, string>? earlier;
        try { earlier = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(optionsPath)); }
        catch (JsonException e) { throw new DataFormatException(optionsPath, null, null, $"not a JSON object of option values: {e.Message}", e); }
        foreach (var (option, value) in runOptions)
        {
            string before = earlier != null && earlier.TryGetValue(option, out var b) ? b : "";
            if (before != value)
                throw new ArgumentException($"{option} {(value.Length == 0 ? "(not given)" : value)}: the detections in {jsonl} were made with {(before.Length == 0 ? "it not given" : before)}; " +
                                            "run with the same options to continue them, or give another --out.");
        }
        DetectionsJsonLines.RemoveIncompleteLastLine(jsonl);
        var idOf = files.Select((f, i) => (f, i)).ToDictionary(x => x.f, x => imageIds[x.i], StringComparer.Ordinal);
        var fileOf = idOf.ToDictionary(kv => kv.Value, kv => kv.Key);
        foreach (var line in DetectionsJsonLines.Read(jsonl))
        {
            bool sameId = idOf.TryGetValue(line.FileName, out long now) ? now == line.ImageId : !fileOf.ContainsKey(line.ImageId);
            if (!sameId)
                throw new ArgumentException($"images: {line.FileName} has image id {line.ImageId} in {jsonl}, but the inputs now give " +
                                            (idOf.ContainsKey(line.FileName) ? $"it id {idOf[line.FileName]}" : $"id {line.ImageId} to {fileOf[line.ImageId]}") +
                                            " (files were added or removed before it); give another --out, or --classes instances.json for ids that do not depend on the file list.");
            done[line.FileName] = line.ImageId;
        }
        return done;
    }

    private static int Detect(IAnsiConsole console, InferenceEngine model, CategoryMap categories, List<string> files, long[] imageIds, string outDir, double scoreThreshold, double drawThreshold, int batchSize,
        IReadOnlyDictionary<string, string> runOptions)
    {
        Directory.CreateDirectory(outDir);
        string jsonl = Path.Combine(outDir, JsonLinesFileName);
        var done = EarlierResults(outDir, files, imageIds, runOptions);
        var todo = Enumerable.Range(0, files.Count).Where(i => !done.ContainsKey(files[i])).ToList();
        int alreadyDone = files.Count - todo.Count;
        if (alreadyDone > 0)
            console.MarkupLineInterpolated($"Skipping {Plural.Of(alreadyDone, "image")} already in {jsonl}; {todo.Count} to go.");
        var skipped = new List<string>();
        var drawnNames = DrawnNames(files);
        DetectionsJsonLinesWriter? writer = null;   // created with the first finished image: nothing is written when no image can be read
        try
        {
            console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn()).Start(ctx =>
            {
                var task = ctx.AddTask($"Detecting in {Plural.Of(files.Count, "image")}", maxValue: files.Count);
                task.Value = alreadyDone;
                for (int start = 0; start < todo.Count; start += batchSize)
                {
                    using var scope = NewDisposeScope();
                    var loaded = new List<(string File, int Index, RgbImage Image)>();
                    foreach (int k in todo.Skip(start).Take(batchSize))
                    {
                        try { loaded.Add((files[k], k, ImageIO.Load(files[k]))); }
                        catch (DataFormatException e) { skipped.Add($"{files[k]}: {e.Problem}"); }
                    }
                    if (loaded.Count > 0)
                    {
                        var dets = model.Detect(loaded.Select(l => ImageIO.ToTensor(l.Image)).ToList());
                        for (int i = 0; i < loaded.Count; i++)
                        {
                            var (file, index, image) = loaded[i];
                            long id = imageIds[index];
                            var mine = DetectionValidation.ToCoco(dets[i], id, categories).Where(r => r.Score >= scoreThreshold).ToList();
                            var boxes = mine.Where(r => r.Score >= drawThreshold).Select(r =>
                            {
                                int k = categories.ToIndex(r.CategoryId);
                                return new DrawnBox((float)r.X, (float)r.Y, (float)(r.X + r.Width), (float)(r.Y + r.Height), k,
                                    $"{categories.Name(k)} {r.Score.ToString("0.00", CultureInfo.InvariantCulture)}");
                            }).ToList();
                            using (var drawn = DetectionDrawing.Render(image, boxes, 1))
                            {
                                string drawnPath = Path.Combine(outDir, drawnNames[index]);
                                Directory.CreateDirectory(Path.GetDirectoryName(drawnPath)!);
                                AtomicFile.WriteAllBytes(drawnPath, DetectionDrawing.EncodePng(drawn));
                            }
                            // The line goes last: a line in detections.jsonl means the image and its drawing are finished.
                            if (writer == null)
                            {
                                if (done.Count == 0) AtomicFile.WriteAllText(Path.Combine(outDir, RunOptionsFileName), JsonSerializer.Serialize(runOptions, IndentedJson));
                                writer = new DetectionsJsonLinesWriter(jsonl);
                            }
                            writer.Append(new ImageDetections(id, file, image.Width, image.Height, drawnNames[index], mine));
                        }
                    }
                    task.Increment(Math.Min(batchSize, todo.Count - start));
                }
            });
        }
        finally
        {
            writer?.Dispose();
        }
        if (skipped.Count > 0)
        {
            console.MarkupLineInterpolated($"[yellow]warning:[/] skipped {Plural.Of(skipped.Count, "unreadable image")}:");
            foreach (var s in skipped) console.MarkupLineInterpolated($"  {s}");
        }
        if (alreadyDone == 0 && skipped.Count == files.Count)
            throw new ArgumentException(files.Count == 1
                ? $"images: the input file could not be read (see the warning above); nothing was written to {outDir}."
                : $"images: none of the {files.Count} input files could be read (see the warnings above); nothing was written to {outDir}.");
        // detections.json and images.json are built from detections.jsonl, reading it line by line.
        var (imageCount, detectionCount) = DetectionsJsonLines.WriteCocoResults(jsonl, Path.Combine(outDir, "detections.json"));
        AtomicFile.Write(Path.Combine(outDir, "images.json"), stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartArray();
            foreach (var line in DetectionsJsonLines.Read(jsonl))
            {
                w.WriteStartObject();
                w.WriteNumber("id", line.ImageId);
                w.WriteString("file_name", line.FileName);
                w.WriteNumber("width", line.Width);
                w.WriteNumber("height", line.Height);
                if (line.Drawn != null) w.WriteString("drawn", line.Drawn);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
        console.MarkupLineInterpolated($"{Plural.Of(detectionCount, "detection")} in {Plural.Of(imageCount, "image")}{(alreadyDone > 0 ? $" ({alreadyDone} from the earlier run)" : "")} -> [bold]{outDir}[/] (detections.json, {JsonLinesFileName}, images.json, {(drawnNames.Any(n => n.Contains(Path.DirectorySeparatorChar)) ? "<folder>/" : "")}*.detections.png)");
        return skipped.Count == 0 ? CliApp.Ok : CliApp.Failed;
    }

    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };
}
